"""``liucun loyalty member …`` and ``loyalty referral …`` on SQLite and PostgreSQL: JSON
output, refusals exiting 2 with their sentence, replays, settling and reminders by
``--as-of``, and a referral credited through the command line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_membership import program_file
from typer.testing import CliRunner

from liucun import loyalty
from liucun.cli import app
from liucun.workspace import init_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REFERRAL = {"referrer": {"points": 200, "growth": 50}, "referee": {"coupon": "welcome"}}


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    with init_workspace(tmp_path / "ws", state_url=state_url) as w:
        loyalty.apply_program(w, program_file(tmp_path, referral=REFERRAL))
    return str(tmp_path / "ws")


def test_member_join_renew_cancel_list_and_refusals(ws: str) -> None:
    # joined 2026-01-31 10:00 Shanghai (02:00 UTC): the monthly term ends 28 Feb 10:00
    code, out, err = run("-w", ws, "loyalty", "member", "join", "u1", "monthly", "--key", "j1",
                         "--at", "2026-01-31T10:00:00+08:00", "--format", "json")  # fmt: skip
    assert code == 0, err
    m = json.loads(out)
    assert (m["status"], m["term_end"], m["price"], m["currency"]) == (
        "active", "2026-02-28T02:00:00+00:00", 15.0, "CNY")  # fmt: skip
    code, out, _ = run("-w", ws, "loyalty", "member", "join", "u1", "monthly", "--key", "j1",
                       "--at", "2026-01-31T10:00:00+08:00", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["replayed"] is True
    code, _, err = run("-w", ws, "loyalty", "member", "join", "u2", "montly", "--key", "j2")
    assert code == 2 and "did you mean 'monthly'" in err
    code, out, _ = run("-w", ws, "loyalty", "member", "renew", "u1", "--key", "r1",
                       "--at", "2026-02-20T00:00:00+08:00", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["term_end"] == "2026-03-31T02:00:00+00:00"
    code, out, _ = run("-w", ws, "loyalty", "member", "cancel", "u1", "--key", "c1",
                       "--at", "2026-02-21T00:00:00+08:00")  # fmt: skip
    assert code == 0 and "Cancelled u1" in out
    code, _, err = run("-w", ws, "loyalty", "member", "renew", "u1", "--key", "r2",
                       "--at", "2026-02-22T00:00:00+08:00")  # fmt: skip
    assert code == 2 and "cancelled membership cannot be renewed" in " ".join(err.split())
    code, out, _ = run("-w", ws, "loyalty", "member", "list", "--format", "json")
    assert [(r["user_id"], r["status"], r["renewals"]) for r in json.loads(out)] == [
        ("u1", "cancelled", 1)
    ]


def test_member_due_and_remind_by_as_of(ws: str) -> None:
    run("-w", ws, "loyalty", "member", "join", "u1", "monthly", "--key", "j1",
        "--at", "2026-01-31T10:00:00+08:00")  # fmt: skip
    run("-w", ws, "loyalty", "member", "join", "u2", "yearly", "--key", "j2",
        "--at", "2026-01-31T10:00:00+08:00")  # fmt: skip
    # as of 26 Feb 00:00 UTC: u1's term ends 28 Feb 02:00 UTC, within 3 reminder days
    code, out, _ = run("-w", ws, "loyalty", "member", "remind", "--as-of", "2026-02-26",
                       "--format", "json")  # fmt: skip
    assert code == 0
    assert [e["user_id"] for e in json.loads(out)["reminders"]] == ["u1"]
    code, out, _ = run("-w", ws, "loyalty", "member", "remind", "--as-of", "2026-02-26",
                       "--format", "json")  # fmt: skip
    assert (json.loads(out)["reminders"], json.loads(out)["already"]) == ([], 1)
    # as of 1 March: u1 renewed automatically, u2 (to 31 Jan 2027) untouched
    code, out, _ = run("-w", ws, "loyalty", "member", "due", "--as-of", "2026-03-01",
                       "--format", "json")  # fmt: skip
    result = json.loads(out)
    assert [(e["user_id"], e["at"]) for e in result["renewed"]] == [
        ("u1", "2026-02-28T02:00:00+00:00")
    ]
    assert result["lapsed"] == []
    code, out, _ = run("-w", ws, "loyalty", "member", "due", "--as-of", "2026-03-01")
    assert code == 0 and "0 automatic renewal(s), 0 lapse(s)" in out


def test_referral_commands(ws: str, tmp_path: Path) -> None:
    code, out, _ = run("-w", ws, "loyalty", "referral", "code", "alice", "--format", "json")
    invite = json.loads(out)["code"]
    code, out, _ = run("-w", ws, "loyalty", "referral", "code", "alice")
    assert out.strip() == invite
    code, _, err = run("-w", ws, "loyalty", "referral", "use", invite, "alice", "--key", "k0")
    assert code == 2 and "own referral code" in err
    code, out, _ = run("-w", ws, "loyalty", "referral", "use", invite, "bob", "--key", "k1",
                       "--at", "2026-01-01T00:00:00Z", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "pending"
    events = tmp_path / "orders.csv"
    events.write_text(
        "event_id,user_id,event_type,ts,revenue,currency\no1,bob,order,2026-01-02T08:00:00Z,88,CNY\n",
        encoding="utf-8",
    )
    code, _, err = run("-w", ws, "ingest", "events", str(events))
    assert code == 0, err
    code, out, _ = run("-w", ws, "loyalty", "referral", "credit", "--format", "json")
    result = json.loads(out)
    assert [r["referee_id"] for r in result["credited"]] == ["bob"]
    code, out, _ = run("-w", ws, "loyalty", "referral", "list", "--format", "json")
    assert [(r["referee_id"], r["status"], r["first_order_event_id"]) for r in json.loads(out)] == [
        ("bob", "credited", "o1")
    ]
    code, out, _ = run("-w", ws, "loyalty", "account", "alice", "--format", "json")
    assert json.loads(out)["balance"] == 200
    assert datetime.fromisoformat(result["as_of"]) <= datetime.now(UTC)
