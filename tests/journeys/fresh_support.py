"""A simulated shop with a trained and scored model, shared by the freshness tests
(tests/journeys/test_refresh.py, tests/api/test_freshness.py): build it once per module
with :func:`trained_shop` (the module-scoped fixture ``trained``: import
:func:`trained_fixture` into the test module), copy it per test with :func:`shop_copy`,
and pick a lapsed repeat buyer with :func:`lapsed_customer`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_events, ingest_users
from liucun.models import score_customers, train_models
from liucun.simulate import simulate_shop
from liucun.workspace import Workspace, init_workspace, open_workspace

#: A loyalty program of one rule: 1 point (and 1 growth value) per CNY spent.
PROGRAM = """
name: shop
currency: CNY
earning:
  orders:
    - {name: spend, points_per_unit: 1, growth_per_unit: 1}
"""


def trained_shop(root: Path) -> Path:
    """A b2c shop of 1,500 customers over a year, its models trained and every customer
    scored; returns the workspace's path."""
    sim = simulate_shop(root / "sim", preset="b2c", users=1_500, days=365, seed=5)
    with init_workspace(root / "ws") as ws:
        ingest_users(ws.warehouse, [sim.users_path], options=IngestOptions(hash_key=ws.hash_key))
        ingest_events(ws.warehouse, [sim.events_dir], options=IngestOptions(hash_key=ws.hash_key))
        train_models(ws, n_cutoffs=2, num_threads=1, random_state=0)
        score_customers(ws)
    return root / "ws"


@pytest.fixture(scope="module", name="trained")
def trained_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained shop of :func:`trained_shop`, built once per test module."""
    return trained_shop(tmp_path_factory.mktemp("trained-shop"))


@contextmanager
def shop_copy(trained: Path, dest: Path) -> Iterator[Workspace]:
    """A copy of the trained shop at ``dest``, its clock two hours after the data's end."""
    shutil.copytree(trained, dest)
    with open_workspace(dest) as w:
        end = w.data_end()
        assert end is not None
        w.clock = SimulatedClock(end + timedelta(hours=2))
        yield w


def lapsed_customer(ws: Workspace) -> str:
    """A customer with several orders, the last long ago: high risk, declining or lost."""
    sc = ws.table("scores").to_pandas()
    sc = sc[(sc.stage.isin(["decline", "churned"])) & (sc.churn_risk > 0.6)]
    best = sc.sort_values(["churn_risk", "user_id"], ascending=[False, True])
    for u in best.user_id:
        ev = ws.events()
        n = ev.filter((ev.user_id == u) & (ev.event_type == "order")).count().to_pyarrow()
        if n.as_py() >= 2:
            return str(u)
    raise AssertionError("the simulated shop has no lapsed repeat buyer")
