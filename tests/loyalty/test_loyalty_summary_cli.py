"""``liucun loyalty summary``: the summary's figures as JSON and as a table (SQLite and
PostgreSQL state), for the hand-worked scenario of tests/loyalty_scenario.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import SimulatedClock
from liucun.workspace import init_workspace
from loyalty_scenario import START, build_scenario


@pytest.fixture
def ws_path(tmp_path: Path, state_url: str) -> Iterator[Path]:
    path = tmp_path / "ws"
    with init_workspace(path, state_url=state_url, clock=SimulatedClock(START)) as ws:
        build_scenario(ws, tmp_path)
    yield path


def test_summary_as_json_and_as_a_table(ws_path: Path) -> None:
    runner = CliRunner()
    args = ["-w", str(ws_path), "loyalty", "summary", "--as-of", "2026-03-25"]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["as_of"] == "2026-03-25T00:00:00+00:00"
    assert (got["outstanding"], got["pending"], got["lapsed"]) == (1750, 200, 250)
    assert (got["liability_available"], got["currency"]) == (77.5, "CNY")
    assert (got["coupons_redeemed"], got["coupons_settled"], got["coupon_cost"]) == (2, 4, 18.0)
    assert [t["members"] for t in got["tiers"]] == [1, 2, 1]  # u2 upgraded to 进阶 for now
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "77.50" in table.stdout and "29.8%" in table.stdout  # breakage, last 365 days


def test_summary_help_has_an_example() -> None:
    res = CliRunner().invoke(app, ["loyalty", "summary", "--help"])
    assert res.exit_code == 0 and "loyalty summary --format json" in res.stdout
