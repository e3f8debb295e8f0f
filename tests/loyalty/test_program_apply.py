"""``liucun loyalty program apply``: a program file versioned in state, on SQLite and
PostgreSQL — the same content adds nothing, a change is the next version with what
changed, a dry run writes nothing, the ledger policy follows the file, and a bad file
changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from liucun import loyalty
from liucun.cli import app
from liucun.core import ConfigError, SimulatedClock
from liucun.state import AuditEntry, LoyaltyProgramPolicy, LoyaltyProgramVersion
from liucun.workspace import Workspace, init_workspace

EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"
T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def _versions(ws: Workspace) -> int:
    with ws.state.read() as s:
        return int(s.scalar(select(func.count()).select_from(LoyaltyProgramVersion)) or 0)


def _policy(ws: Workspace) -> bool | None:
    with ws.state.read() as s:
        row = s.scalar(select(LoyaltyProgramPolicy).where(LoyaltyProgramPolicy.name == "default"))
        return None if row is None else row.allow_negative


def test_apply_versions_a_program_once_per_content(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no loyalty program 'default' has been applied"):
        loyalty.active_program(ws)
    dry = loyalty.apply_program(ws, EXAMPLE, dry_run=True)
    assert (dry.version, dry.created, dry.dry_run) == (1, True, True)
    assert _versions(ws) == 0 and _policy(ws) is None  # a dry run writes nothing
    first = loyalty.apply_program(ws, EXAMPLE)
    assert (first.version, first.created) == (1, True)
    assert "points" in first.changes and "tiers" in first.changes  # every section is new
    assert loyalty.active_program(ws).digest == first.digest == loyalty.load_program(EXAMPLE).digest
    assert _policy(ws) is False  # the example forbids negative balances
    # the same content in another layout (comments and key order differ): no new version
    shuffled = tmp_path / "same.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    shuffled.write_text(
        "# reordered\n"
        + text.replace("timezone: Asia/Shanghai\n", "").replace(
            "currency: CNY\n", "currency: CNY\ntimezone: Asia/Shanghai\n"
        ),
        encoding="utf-8",
    )
    again = loyalty.apply_program(ws, shuffled)
    assert (again.version, again.created, again.digest) == (1, False, first.digest)
    assert _versions(ws) == 1
    # a change: version 2, naming what changed; the policy follows the file
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        text.replace("negative_balance: forbid", "negative_balance: allow").replace(
            "return_policy: within_balance", "return_policy: unlimited"
        ),
        encoding="utf-8",
    )
    second = loyalty.apply_program(ws, changed)
    assert (second.version, second.created, second.changes) == (2, True, ("points",))
    assert _policy(ws) is True
    assert loyalty.active_program(ws).points.negative_balance == "allow"
    assert [v["version"] for v in loyalty.program_versions(ws)] == [1, 2]
    with ws.state.read() as s:
        audits = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "loyalty.program.apply")
        ).all()
        assert [json.loads(a.details)["version"] for a in audits] == [1, 2]


def test_a_bad_program_file_changes_nothing(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    bad.write_text(text.replace("threshold: 1000", "threshold: -5"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tiers\[1\]\.threshold"):
        loyalty.apply_program(ws, bad)
    assert _versions(ws) == 0


def test_program_apply_and_versions_from_the_cli(ws: Workspace) -> None:
    runner = CliRunner()
    base = ["-w", str(ws.path), "loyalty", "program"]
    res = runner.invoke(app, [*base, "apply", str(EXAMPLE), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "Would apply" in res.output and "Nothing was written" in res.output
    res = runner.invoke(app, [*base, "apply", str(EXAMPLE), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["version"], out["created"], out["program"]) == (1, True, "default")
    res = runner.invoke(app, [*base, "apply", str(EXAMPLE)])
    assert res.exit_code == 0 and "already at this content" in res.output
    res = runner.invoke(app, [*base, "versions", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [r["version"] for r in rows] == [1] and rows[0]["digest"] == out["digest"]
    res = runner.invoke(app, [*base, "apply", "--help"])
    assert res.exit_code == 0 and "Example" in res.output
