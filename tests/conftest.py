"""Shared fixtures. Tests that need Spark or PostgreSQL fail (not skip) when CI is set."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import ibis
import pytest

from helpers import need
from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import simulate_shop
from liucun.workspace import Workspace, init_workspace, open_workspace
from state_backends import STATE_BACKENDS, postgres_schema_url


@pytest.fixture
def liucun_engine() -> Iterator[None]:
    """Run memtables on liucun's DuckDB engine (it defines the time-zone conversion):
    ``pytestmark = pytest.mark.usefixtures("liucun_engine")``."""
    from liucun.warehouse import new_engine

    before = ibis.get_backend()
    ibis.set_backend(new_engine())
    yield
    ibis.set_backend(before)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh DuckDB workspace."""
    ws = init_workspace(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state database URL: SQLite in tmp_path, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    with postgres_schema_url() as url:
        yield url


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write text to a file in tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        need(False, "pyspark is not installed (pip install 'liucun[spark]')")
    need(shutil.which("java") is not None, "Java is not on PATH (Spark needs Java 17)")
    return True


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's Chromium for browser tests (``.ci/run`` installs it)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    need(Path(path).exists(), "Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def shop_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4,000-user simulated b2c shop (one year) ingested into a DuckDB workspace, built
    once per test session. Tests that write to it must work on a copy."""
    root = tmp_path_factory.mktemp("shop")
    sim = simulate_shop(root / "sim", preset="b2c", users=4_000, days=365, seed=11)
    with init_workspace(root / "ws") as ws:
        ingest_users(ws.warehouse, [sim.users_path])
        ingest_events(ws.warehouse, [sim.events_dir])
    return root / "ws"


@pytest.fixture
def shop(shop_workspace: Path) -> Iterator[Workspace]:
    """The shared simulated shop, opened (read it; do not write to it)."""
    ws = open_workspace(shop_workspace)
    yield ws
    ws.close()


@pytest.fixture
def shop_copy(shop_workspace: Path, tmp_path: Path) -> Path:
    """A private copy of the simulated shop's workspace, for tests that write."""
    target = tmp_path / "shop"
    shutil.copytree(shop_workspace, target)
    return target
