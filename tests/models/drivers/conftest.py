"""A simulated shop large enough to see service effects, loaded once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import ibis.expr.types as ir
import pytest

from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import simulate_shop
from liucun.warehouse import resolved_events
from liucun.workspace import init_workspace


@pytest.fixture(scope="session")
def driver_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ir.Table, ir.Table]]:
    """10,000 b2c users over two years (seed 5): resolved events and the users table."""
    root = tmp_path_factory.mktemp("driver-shop")
    sim = simulate_shop(root / "sim", preset="b2c", users=10_000, days=730, seed=5)
    ws = init_workspace(root / "ws")
    ingest_users(ws.warehouse, [sim.users_path])
    ingest_events(ws.warehouse, [sim.events_dir])
    wh = ws.warehouse
    yield resolved_events(wh.table("events"), wh.table("identities")), wh.table("users")
    ws.close()
