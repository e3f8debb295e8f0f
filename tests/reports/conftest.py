"""A small simulated shop in a DuckDB workspace, built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import simulate_shop
from liucun.warehouse import Workspace, init_workspace, open_workspace


@pytest.fixture(scope="session")
def shop_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-shop")
    sim = simulate_shop(root / "sim", preset="b2c", users=4_000, days=365, seed=11)
    with init_workspace(root / "ws") as ws:
        ingest_users(ws.warehouse, [sim.users_path])
        ingest_events(ws.warehouse, [sim.events_dir])
    return root / "ws"


@pytest.fixture
def shop(shop_workspace: Path) -> Iterator[Workspace]:
    ws = open_workspace(shop_workspace)
    yield ws
    ws.close()
