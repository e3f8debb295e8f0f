"""``liucun journeys …`` on SQLite and PostgreSQL: apply (problems one per line, exit 1),
approve, activate, pause, resume, archive, list and show, in table and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.workspace import init_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXAMPLE = str(Path(__file__).parents[2] / "examples" / "journeys" / "inactive_push_coupon.yaml")
PROGRAM = str(Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml")

BAD = """\
name: bad
trigger: {type: event, event: ordr}
nodes:
  - {id: a, type: sleep}
  - {id: b, type: branch, branches: [{when: "clv_356d > 1", next: c}]}
  - {id: c, type: message, channel: sms, template: {body: {en: "{{ nam }}"}}, next: b}
"""


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    init_workspace(tmp_path / "ws", state_url=state_url).close()
    return str(tmp_path / "ws")


def test_the_journey_commands(ws: str) -> None:
    assert run("-w", ws, "loyalty", "program", "apply", PROGRAM)[0] == 0
    code, out, _ = run("-w", ws, "journeys", "apply", EXAMPLE, "--dry-run")
    assert code == 0 and "Would apply journey 'inactive_push_coupon' as version 1" in out
    code, out, _ = run("-w", ws, "journeys", "list")
    assert code == 0 and "No journeys yet" in out
    code, out, _ = run("-w", ws, "journeys", "apply", EXAMPLE)
    assert code == 0, out
    assert "Applied journey 'inactive_push_coupon' as version 1 (draft" in out
    assert "journeys approve inactive_push_coupon --by WHO" in out
    code, out, _ = run("-w", ws, "journeys", "apply", EXAMPLE, "--format", "json")
    assert code == 0 and json.loads(out)["created"] is False
    code, _, err = run("-w", ws, "journeys", "activate", "inactive_push_coupon")
    assert code == 1
    assert "has no approval; approve it first: liucun journeys approve" in err
    code, out, _ = run(
        "-w", ws, "journeys", "approve", "inactive_push_coupon", "--by", "li.wei", "--note", "ok"
    )
    assert code == 0 and "Approved version 1 of journey 'inactive_push_coupon' by li.wei" in out
    code, out, _ = run("-w", ws, "journeys", "activate", "inactive_push_coupon")
    assert code == 0 and "is now active (version 1)" in out
    code, out, _ = run("-w", ws, "journeys", "list", "--format", "json")
    (row,) = json.loads(out)
    assert (row["name"], row["status"], row["active_version"]) == (
        "inactive_push_coupon",
        "active",
        1,
    )
    code, out, _ = run("-w", ws, "journeys", "list")
    assert code == 0 and "inactive_push_coupon" in out  # the trigger column may be cut
    code, _, err = run("-w", ws, "journeys", "archive", "inactive_push_coupon")
    assert code == 1 and "pause it first" in err
    assert run("-w", ws, "journeys", "pause", "inactive_push_coupon")[0] == 0
    code, out, _ = run("-w", ws, "journeys", "pause", "inactive_push_coupon")
    assert code == 0 and "already paused" in out
    code, out, _ = run("-w", ws, "journeys", "resume", "inactive_push_coupon", "--format", "json")
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out, _ = run("-w", ws, "journeys", "show", "inactive_push_coupon")
    assert code == 0
    assert "Journey inactive_push_coupon: active; latest version 1, active 1" in out
    assert "li.wei" in out and "wait_order" in out
    code, out, _ = run("-w", ws, "journeys", "show", "inactive_push_coupon", "--format", "json")
    shown = json.loads(out)
    assert shown["version"] == 1 and shown["definition"]["start"] == "push"
    assert shown["versions"][0]["approved_by"] == "li.wei"
    code, out, _ = run("-w", ws, "journeys", "show", "inactive_push_coupon", "--source")
    assert out == Path(EXAMPLE).read_text(encoding="utf-8")


def test_apply_prints_every_problem_on_its_own_line(ws: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    code, out, err = run("-w", ws, "journeys", "apply", str(bad))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0] == f"JourneyError: {bad}: 1 problem:"
    assert lines[1].startswith("  - nodes[0].type: 'sleep' is not a node type; use one of wait")
    bad.write_text(BAD.replace("{id: a, type: sleep}", "{id: a, type: tag, tag: x, next: b}"))
    code, _, err = run("-w", ws, "journeys", "apply", str(bad))
    lines = err.strip().splitlines()
    assert code == 1 and lines[0] == f"JourneyError: {bad}: 4 problems:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  - nodes",
        "  - nodes[1].branches[0].when",
        "  - nodes[2].template.body.en",
        "  - trigger.event",
    ]
    assert "b → c → b has no wait" in lines[1]
    assert "did you mean 'clv_365d'?" in lines[2]
    code, out, _ = run("-w", ws, "journeys", "list", "--format", "json")
    assert json.loads(out) == []


def test_help_has_examples() -> None:
    for command in ("apply", "approve", "activate", "pause", "resume", "archive", "list", "show"):
        code, out, _ = run("journeys", command, "--help")
        assert code == 0 and "Example: liucun -w shop journeys" in out, command
