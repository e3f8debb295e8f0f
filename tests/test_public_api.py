"""Every package re-exports its public names in a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib

import pytest

import liucun

PACKAGES = [
    "liucun",
    "liucun.core",
    "liucun.schema",
    "liucun.warehouse",
    "liucun.state",
    "liucun.workspace",
    "liucun.ingest",
    "liucun.metrics",
    "liucun.models",
    "liucun.models.btyd",
    "liucun.models.churn",
    "liucun.models.drivers",
    "liucun.models.evaluation",
    "liucun.models.uplift",
    "liucun.reports",
    "liucun.segments",
    "liucun.simulate",
    "liucun.datasets",
    "liucun.experiments",
    "liucun.experiments.stats",
    "liucun.loyalty",
    "liucun.api",
]


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert list(exported) == sorted(exported, key=_isort_key), "sort it as `ruff --fix` (RUF022)"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ lists missing {item}"


def test_open_is_the_workspace_entry_point(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from liucun.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    with liucun.open(tmp_path / "ws") as ws:
        assert ws.warehouse.count("events") == 0
        assert ws.path == (tmp_path / "ws").resolve()
