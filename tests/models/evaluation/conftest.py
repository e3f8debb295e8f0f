"""A small simulated shop, loaded into a workspace once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from evaluation_shop import LoadedShop

from liucun.ingest import ingest_events, ingest_users
from liucun.models.evaluation import simulated_truth
from liucun.simulate import simulate_shop
from liucun.warehouse import resolved_events
from liucun.workspace import init_workspace


@pytest.fixture(scope="session")
def loaded_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedShop]:
    """4,000 b2c users over two years (seed 3): about 2,000 buyers."""
    root = tmp_path_factory.mktemp("evaluation-shop")
    sim = simulate_shop(root / "sim", preset="b2c", users=4000, days=730, seed=3)
    ws = init_workspace(root / "ws")
    ingest_users(ws.warehouse, [sim.users_path])
    ingest_events(ws.warehouse, [sim.events_dir])
    wh = ws.warehouse
    truth = simulated_truth(pq.read_table(sim.truth_path), wh.table("identities"))
    yield LoadedShop(sim, resolved_events(wh.table("events"), wh.table("identities")), truth)
    ws.close()
