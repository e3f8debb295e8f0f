"""``liucun loyalty …`` on SQLite and PostgreSQL through Typer's runner: the Interface
commands' JSON shapes, exit codes (2 for insufficient points, 1 for a failed check) and
help with an example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from liucun.cli import app
from liucun.workspace import init_workspace, open_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    init_workspace(tmp_path / "ws", state_url=state_url).close()
    return str(tmp_path / "ws")


def test_award_redeem_account_reverse_and_check_in_json(ws: str) -> None:
    code, out, _ = run("-w", ws, "loyalty", "award", "u1", "100", "--key", "order-1",
                       "--reason", "order 1", "--format", "json")  # fmt: skip
    assert code == 0
    award = json.loads(out)
    assert {k: award[k] for k in ("key", "kind", "user_id", "points", "balance_after")} == {
        "key": "order-1",
        "kind": "addition",
        "user_id": "u1",
        "points": 100,
        "balance_after": 100,
    }
    assert award["replayed"] is False and award["reason"] == "order 1"
    code, out, _ = run("-w", ws, "loyalty", "award", "u1", "100", "--key", "order-1",
                       "--reason", "order 1", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["replayed"] is True
    code, out, _ = run(
        "-w", ws, "loyalty", "redeem", "u1", "40", "--key", "co-1", "--format", "json"
    )
    assert code == 0 and json.loads(out)["points"] == -40 and json.loads(out)["balance_after"] == 60
    code, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert code == 0
    acct = json.loads(out)
    assert {"user_id", "balance", "pending", "tier", "growth_value", "entries"} <= set(acct)
    assert (acct["user_id"], acct["balance"], acct["pending"], acct["tier"]) == ("u1", 60, 0, None)
    assert [(e["key"], e["kind"], e["points"]) for e in acct["entries"]] == [
        ("order-1", "addition", 100),
        ("co-1", "redemption", -40),
    ]
    code, out, _ = run("-w", ws, "loyalty", "reverse", "co-1", "--key", "refund-co-1")
    assert code == 0 and "Reversed (co-1) 40 points for u1" in out and "balance 100" in out
    code, out, _ = run("-w", ws, "loyalty", "check")
    assert code == 0 and "no violation" in out
    assert "The ledger holds: 1 account, 3 transactions," in " ".join(out.split())
    code, out, _ = run("-w", ws, "loyalty", "check", "--format", "json")
    assert code == 0 and json.loads(out) == {
        "ok": True,
        "accounts": 1,
        "transactions": 3,
        "entries": 6,
        "violations": [],
    }


def test_an_insufficient_redemption_exits_2_with_a_sentence_and_writes_nothing(ws: str) -> None:
    run("-w", ws, "loyalty", "award", "u1", "30", "--key", "a1")
    code, out, err = run("-w", ws, "loyalty", "redeem", "u1", "50", "--key", "r1")
    assert code == 2 and out == ""
    assert "InsufficientPoints: user 'u1' has 30 points available in program 'default', " \
        "fewer than the 50 to redeem" in " ".join(err.split())  # fmt: skip
    _, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert [e["key"] for e in json.loads(out)["entries"]] == ["a1"]


def test_a_conflicting_key_exits_1_naming_it(ws: str) -> None:
    run("-w", ws, "loyalty", "award", "u1", "30", "--key", "a1")
    code, _, err = run("-w", ws, "loyalty", "award", "u1", "31", "--key", "a1")
    assert code == 1
    assert "IdempotencyConflict: the idempotency key 'a1' was already used" in err
    assert "points (30 then, 31 now)" in " ".join(err.split())


def test_expire_as_of_a_day_and_again_expires_nothing(ws: str) -> None:
    from datetime import UTC, datetime

    from liucun import loyalty
    from liucun.core import SimulatedClock

    # awarded in the past (the CLI runs on the system clock, and expiry may not run ahead)
    with open_workspace(ws, clock=SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))) as past:
        loyalty.award(past, "u1", 30, key="a1", expires_at=datetime(2026, 1, 10, tzinfo=UTC))
    code, _, err = run(
        "-w", ws, "loyalty", "award", "u1", "5", "--key", "a2", "--expires", "2026-01-10"
    )
    assert code == 1 and "is not after the points become available" in " ".join(err.split())
    code, out, _ = run("-w", ws, "loyalty", "expire", "--as-of", "2026-01-10", "--format", "json")
    assert code == 0
    assert {k: json.loads(out)[k] for k in ("points", "accounts", "lots")} == {
        "points": 30,
        "accounts": 1,
        "lots": 1,
    }
    code, out, _ = run("-w", ws, "loyalty", "expire", "--as-of", "2026-01-10")
    assert code == 0 and "Nothing left to expire as of 2026-01-10" in out


def test_check_exits_1_and_lists_a_corrupted_balance(ws: str) -> None:
    run("-w", ws, "loyalty", "award", "u1", "30", "--key", "a1")
    with open_workspace(ws) as opened, opened.state.write() as s:
        s.execute(text("UPDATE loyalty_accounts SET balance = 31"))
    code, out, _ = run("-w", ws, "loyalty", "check")
    assert code == 1
    assert "account of 'u1' in 'default': balance 31 but its entries sum to 30" in out


def test_award_on_release_then_release(ws: str) -> None:
    code, out, _ = run("-w", ws, "loyalty", "award", "u1", "60", "--key", "o-1", "--on-release")
    assert code == 0
    _, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert (json.loads(out)["balance"], json.loads(out)["pending"]) == (0, 60)
    code, out, _ = run("-w", ws, "loyalty", "release", "o-1", "--key", "delivered-1")
    assert code == 0 and "Released the pending points for u1 under key delivered-1" in out
    _, out, _ = run("-w", ws, "loyalty", "account", "u1", "--format", "json")
    assert (json.loads(out)["balance"], json.loads(out)["pending"]) == (60, 0)


@pytest.mark.parametrize(
    "command", ["award", "redeem", "reverse", "release", "account", "expire", "check"]
)
def test_every_loyalty_command_has_help_with_an_example(command: str) -> None:
    code, out, _ = run("loyalty", command, "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert f"Usage: liucun loyalty {command}" in flat or f"loyalty {command}" in flat
    assert "Example" in out and f"liucun -w shop loyalty {command}" in flat


def test_the_group_has_help_with_an_example() -> None:
    code, out, _ = run("loyalty", "--help")
    assert code == 0 and "Example" in out
