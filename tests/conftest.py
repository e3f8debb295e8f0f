"""Shared fixtures. Tests that need Spark or PostgreSQL fail (not skip) when CI is set."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import need
from liucun.warehouse import Workspace, init_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh DuckDB workspace."""
    ws = init_workspace(tmp_path / "ws")
    yield ws
    ws.close()


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
