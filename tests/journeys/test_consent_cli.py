"""``liucun consent …``, ``suppress …`` and ``tasks …`` on SQLite and PostgreSQL: JSON
output, the consent in force after grant and revoke, bad input as one sentence, the
opt-in import from the simulated shop (counts equal to its users' attributes, a second
import writing nothing), the suppression list, and the SLA job by --now."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.journeys._tasks import open_task
from liucun.workspace import init_workspace, open_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    with init_workspace(tmp_path / "ws", state_url=state_url):
        pass
    return str(tmp_path / "ws")


def test_grant_revoke_show(ws: str) -> None:
    now = ("--now", "2026-03-01T10:00:00Z")
    code, out, err = run("-w", ws, *now, "consent", "grant", "u1", "--purpose", "marketing",
                         "--channel", "*", "--proof", "terms-v3", "--format", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["status"] == "granted" and json.loads(out)["proof"] == "terms-v3"
    code, _, err = run("-w", ws, "--now", "2026-03-02T10:00:00Z", "consent", "revoke", "u1",
                       "--purpose", "marketing", "--channel", "sms", "--source", "app")  # fmt: skip
    assert code == 0, err
    code, out, _ = run("-w", ws, "consent", "show", "u1", "--format", "json")
    shown = json.loads(out)
    assert sorted((c["channel"], c["status"]) for c in shown["in_force"]) == [
        ("*", "granted"),
        ("sms", "revoked"),
    ]
    assert len(shown["history"]) == 2
    code, out, _ = run("-w", ws, "consent", "show", "u1")
    assert code == 0 and "revoked" in out and "terms-v3" in out
    code, _, err = run("-w", ws, "consent", "grant", "u1", "--purpose", "ads", "--channel", "email")
    assert code == 1 and "purpose must be one of marketing, service, transactional" in err
    code, _, err = run(
        "-w", ws, "consent", "deny", "u1", "--purpose", "service", "--channel", "fax"
    )
    assert code == 1 and "channel must be '*'" in err


def test_suppress_add_list_remove(ws: str) -> None:
    code, out, _ = run("-w", ws, "suppress", "add", "u1", "--kind", "bounced", "--channel", "email")
    assert code == 0 and "Suppressed u1 on email (bounced)" in out
    code, out, _ = run("-w", ws, "suppress", "add", "u1", "--kind", "bounced", "--channel", "email")
    assert "already suppressed" in out
    run("-w", ws, "suppress", "add", "u2")
    code, out, _ = run("-w", ws, "suppress", "list", "--format", "json")
    assert [(r["subject"], r["channel"], r["kind"]) for r in json.loads(out)] == [
        ("u1", "email", "bounced"),
        ("u2", "*", "manual"),
    ]
    code, out, _ = run("-w", ws, "suppress", "remove", "u1")
    assert "Removed 1 suppression" in out
    code, _, err = run("-w", ws, "suppress", "add", "u3", "--kind", "angry")
    assert code == 1 and "kind must be one of erased" in err


def test_tasks_commands(ws: str) -> None:
    with open_workspace(Path(ws)) as w, w.state.write() as s:
        for key, hours in (("a", 2), ("b", 24)):
            open_task(s, key=key, user_id="u1", queue="vip", summary="call", sla_hours=hours,
                      now=datetime(2026, 3, 1, 8, tzinfo=UTC))  # fmt: skip
    code, out, _ = run("-w", ws, "tasks", "list", "--status", "open", "--format", "json")
    assert [t["key"] for t in json.loads(out)] == ["a", "b"]
    ids = {t["key"]: t["id"] for t in json.loads(out)}
    code, out, _ = run("-w", ws, "--now", "2026-03-01T09:00:00Z", "tasks", "respond", str(ids["b"]))
    assert code == 0 and "within its SLA" in out
    code, out, _ = run(
        "-w", ws, "--now", "2026-03-01T11:00:00Z", "tasks", "breaches", "--format", "json"
    )
    assert [(t["key"], t["status"]) for t in json.loads(out)] == [("a", "breached")]
    code, out, _ = run("-w", ws, "--now", "2026-03-01T12:00:00Z", "tasks", "breaches")
    assert "No task breached" in out
    code, out, _ = run("-w", ws, "--now", "2026-03-01T12:00:00Z", "tasks", "close", str(ids["a"]))
    assert code == 0 and "closed at 2026-03-01 12:00" in out
    code, _, err = run("-w", ws, "tasks", "respond", "999")
    assert code == 1 and "no service task 999" in err


def test_import_opt_in_from_the_simulated_shop(shop_workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "shop"
    shutil.copytree(shop_workspace, target)
    with open_workspace(target) as w:
        attrs = w.customers().select("attributes").to_pandas().attributes
    opt = [str(json.loads(a).get("marketing_opt_in")).lower() for a in attrs]
    yes, no = opt.count("true"), opt.count("false")
    assert yes > 0 and no > 0
    code, out, err = run("-w", str(target), "--now", "2027-01-01T00:00:00Z", "consent", "import",
                         "--from-users", "--format", "json")  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    assert (got["granted"], got["denied"], got["unchanged"]) == (yes, no, 0)
    code, out, _ = run("-w", str(target), "--now", "2027-01-01T00:00:00Z", "consent", "import",
                       "--format", "json")  # fmt: skip
    again = json.loads(out)
    assert (again["granted"], again["denied"], again["unchanged"]) == (0, 0, yes + no)


@pytest.mark.parametrize(
    "command",
    [
        ["consent"],
        ["consent", "grant"],
        ["consent", "deny"],
        ["consent", "revoke"],
        ["consent", "show"],
        ["consent", "import"],
        ["suppress"],
        ["suppress", "add"],
        ["suppress", "remove"],
        ["suppress", "list"],
        ["tasks"],
        ["tasks", "list"],
        ["tasks", "respond"],
        ["tasks", "close"],
        ["tasks", "breaches"],
    ],
    ids=" ".join,
)
def test_help_has_an_example(command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    example = " ".join(out[out.index("Example") :].split())
    assert example.startswith("Example: liucun -w shop ") and f" {command[0]} " in example


def test_suppress_an_address_by_its_keyed_hash(ws: str) -> None:
    from liucun.core._hashing import keyed_hash

    code, out, err = run("-w", ws, "suppress", "add", " Ann@Example.COM ", "--address",
                         "--channel", "email", "--kind", "complaint")  # fmt: skip
    assert code == 0, err
    with open_workspace(Path(ws)) as w:
        digest = keyed_hash(w.hash_key, "ann@example.com")
    code, out, _ = run("-w", ws, "suppress", "list", "--format", "json")
    assert [(r["subject"], r["channel"]) for r in json.loads(out)] == [(digest, "email")]
    assert "example.com" not in out.lower()
    code, _, err = run("-w", ws, "suppress", "add", "+86 138-0000", "--address")
    assert code == 1 and "give --channel" in err
