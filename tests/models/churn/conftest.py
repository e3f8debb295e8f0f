"""Fixtures of the churn tests: a hand-made workspace and a small simulated shop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ibis
import pytest
from churn_shop import TEST_CUTOFF, Shop, events_frame, load

from liucun.ingest import ingest_events, ingest_users
from liucun.models.churn import ChurnModel, build_training_set
from liucun.simulate import simulate_shop
from liucun.warehouse import resolved_events
from liucun.workspace import Workspace, init_workspace


@pytest.fixture
def tiny(workspace: Workspace, tmp_path: Path) -> tuple[ibis.Table, ibis.Table]:
    """The hand-made shop: resolved events and users."""
    events = load(workspace, tmp_path / "csv", events_frame())
    return events, workspace.warehouse.table("users")


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """4,000 b2c users over 540 days (seed 3), a model trained on data before TEST_CUTOFF."""
    root = tmp_path_factory.mktemp("churn-shop")
    sim = simulate_shop(root / "sim", preset="b2c", users=4000, days=540, seed=3)
    ws = init_workspace(root / "ws")
    ingest_users(ws.warehouse, [sim.users_path])
    ingest_events(ws.warehouse, [sim.events_dir])
    wh = ws.warehouse
    events = resolved_events(wh.table("events"), wh.table("identities"))
    data = build_training_set(
        events, wh.table("users"), data_end=TEST_CUTOFF, n_cutoffs=4, step_days=30
    )
    model = ChurnModel(num_threads=1, random_state=0).fit(data)
    yield Shop(events, wh.table("users"), data, model, TEST_CUTOFF)
    ws.close()
