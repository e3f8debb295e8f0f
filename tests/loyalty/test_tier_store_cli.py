"""``liucun loyalty tiers …`` and the account's tier on SQLite and PostgreSQL through
Typer's runner: review (dry run, JSON, a re-run), history, the distribution, members of
one tier, and ``loyalty account USER --format json`` carrying the tier. The program is
examples/loyalty/program.yaml (基础 0 / 进阶 1000 / 尊享 5000 on 12 months of growth); the
commands run on the system clock, so growth is earned ten days before now."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun import loyalty
from liucun.cli import app
from liucun.workspace import init_workspace

EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    earned = datetime.now(UTC) - timedelta(days=10)
    with init_workspace(tmp_path / "ws", state_url=state_url) as w:
        loyalty.apply_program(w, EXAMPLE)
        loyalty.award(w, "u1", 100, key="o1", growth=1200, earned_at=earned)
        loyalty.add_growth(w, "u2", 6000, key="g2", earned_at=earned)
        loyalty.award(w, "u3", 5, key="o3")
    return str(tmp_path / "ws")


def test_review_history_list_and_the_account_tier(ws: str) -> None:
    code, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert code == 0 and json.loads(out)["tier"] is None  # before any review
    code, out, _ = run("-w", ws, "loyalty", "tiers", "review", "--dry-run", "--format", "json")
    assert code == 0
    dry = json.loads(out)
    assert (dry["dry_run"], dry["changed"], dry["stored"]) == (True, 3, 0)
    code, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert json.loads(out)["tier"] is None  # the dry run wrote nothing
    code, out, err = run("-w", ws, "loyalty", "tiers", "review", "--format", "json")
    assert code == 0, err
    review = json.loads(out)
    assert review["distribution"] == {"基础": 1, "进阶": 1, "尊享": 1}
    assert (review["changed"], review["events_written"]) == (3, 3)
    assert {c["user_id"]: (c["from"], c["to"], c["direction"]) for c in review["changes"]} == {
        "u1": (None, "进阶", "joined"),
        "u2": (None, "尊享", "joined"),
        "u3": (None, "基础", "joined"),
    }
    assert "evaluating 3 members" in err  # progress goes to stderr next to JSON
    code, out, _ = run("-w", ws, "loyalty", "tiers", "review")
    assert code == 0 and "0 changed tier" in out
    code, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    acct = json.loads(out)
    assert (acct["tier"], acct["balance"], acct["growth_value"]) == ("进阶", 100, 1200)
    code, out, _ = run("-w", ws, "loyalty", "tiers", "history", "u1", "--format", "json")
    (change,) = json.loads(out)["changes"]
    assert (change["to"], change["growth_in_window"]) == ("进阶", 1200)
    assert change["reason"] == (
        "joined: 1200 growth earned in the last 12 months reach 进阶 (threshold 1000)"
    )
    code, out, _ = run("-w", ws, "loyalty", "tiers", "list", "--format", "json")
    rows = json.loads(out)["tiers"]
    assert [(r["tier"], r["members"], round(r["share"], 4)) for r in rows] == [
        ("基础", 1, 0.3333),
        ("进阶", 1, 0.3333),
        ("尊享", 1, 0.3333),
    ]
    code, out, _ = run("-w", ws, "loyalty", "tiers", "list", "--tier", "尊享", "--format", "csv")
    lines = out.strip().splitlines()
    assert lines[0].startswith("user_id,tier,earned_tier") and len(lines) == 2
    assert lines[1].startswith("u2,尊享,尊享,")
    code, out, err = run("-w", ws, "loyalty", "tiers", "list", "--tier", "gold")
    assert code == 1 and "has no tier 'gold'; its tiers are 基础, 进阶, 尊享" in out + err


def test_every_tiers_command_has_help_with_an_example() -> None:
    for command in ("review", "history", "list"):
        code, out, _ = run("loyalty", "tiers", command, "--help")
        assert code == 0 and "Example:" in out and "liucun -w shop loyalty tiers" in out
