"""``liucun loyalty accrue`` on SQLite and PostgreSQL through Typer's runner: the JSON
result, --dry-run writing nothing, --since, the table's sentences, and help with an
example."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from accrual_setup import Shop, at
from typer.testing import CliRunner

from liucun.cli import app

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> tuple[int, str]:
    """Exit code and standard output (standard error after it when the command failed)."""
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    out = res.stdout if res.exit_code == 0 else res.stdout + res.stderr
    return res.exit_code, " ".join(_ANSI.sub("", out).split())


@pytest.fixture
def shop(tmp_path: Path, state_url: str) -> Iterator[str]:
    s = Shop(tmp_path, state_url, now=at(20))
    s.program(points={"return_policy": "within_balance"})
    s.events(
        """o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web
           o2,u2,order,2026-03-05T10:00:00Z,40,CNY,B,app
           r1,u1,refund,2026-03-06T10:00:00Z,30,CNY,A,web"""
    )
    s.close()
    yield str(tmp_path / "ws")


def test_accrue_json_dry_run_since_and_table(shop: str) -> None:
    code, out = run("-w", shop, "loyalty", "accrue", "--dry-run", "--format", "json")
    assert code == 0
    dry = json.loads(out)
    assert (dry["dry_run"], dry["written"], dry["points"], dry["growth"]) == (True, 3, 110, 110)
    code, out = run("-w", shop, "loyalty", "account", "u1", "--format", "json")
    assert json.loads(out)["entries"] == []  # the dry run wrote nothing
    code, out = run("-w", shop, "loyalty", "accrue", "--as-of", "2026-03-03", "--format", "json")
    first = json.loads(out)
    assert (code, first["written"], first["points"], first["until"]) == (
        0,
        1,
        100,
        "2026-03-03T00:00:00+00:00",
    )
    code, out = run("-w", shop, "loyalty", "accrue")  # the rest, as a table
    assert code == 0
    assert "Wrote 2 ledger transactions for program default (from 2026-03-03 00:00 to" in out
    assert "+10 points" in out  # 40 for o2, −30 for the refund
    code, out = run("-w", shop, "loyalty", "accrue", "--since", "2026-03-01", "--format", "json")
    again = json.loads(out)
    assert (again["written"], again["replayed"]) == (0, 3)
    code, out = run("-w", shop, "loyalty", "account", "u1", "--format", "json")
    assert json.loads(out)["balance"] == 70


def test_accrue_help_has_an_example_and_bad_dates_are_sentences(shop: str) -> None:
    code, out = run("loyalty", "accrue", "--help")
    assert code == 0 and "liucun -w shop loyalty accrue --dry-run" in out
    code, out = run("-w", shop, "loyalty", "accrue", "--since", "March")
    assert code == 1 and "--since 'March' is not a date; use YYYY-MM-DD" in out
