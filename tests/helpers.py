"""Small helpers shared by test modules (on the path via pytest's ``pythonpath``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liucun.workspace import init_workspace, open_workspace


def make_workspace(path: Path) -> Path:
    """Create a DuckDB workspace at ``path`` and return the path."""
    init_workspace(path).close()
    return path


def counts(ws: Path) -> dict[str, int]:
    """Rows in the tables a load writes: events, loads, quarantine."""
    with open_workspace(ws) as opened:
        wh = opened.warehouse
        return {t: wh.count(t) for t in ("events", "loads", "quarantine")}


def need(condition: bool, why: str) -> None:
    """Skip locally, fail in CI, when a service a test needs is missing."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: this test must run there)")
    pytest.skip(why)
