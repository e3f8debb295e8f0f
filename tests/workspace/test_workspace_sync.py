"""Exposures written to state reach the warehouse by ``ws.sync()`` / ``liucun sync``:
incremental, idempotent, a no-op when nothing changed, on SQLite and PostgreSQL state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge
from typer.testing import CliRunner

from liucun.cli import app
from liucun.experiments import Experiment, assign, log_exposures
from liucun.workspace import init_workspace, open_workspace

T0 = datetime(2026, 7, 2, 9, tzinfo=UTC)
UNITS = pa.array([f"u{i:04d}" for i in range(1_000)])


def _cursor(ws_path: Path) -> tuple[int, int, datetime]:
    with open_workspace(ws_path) as ws:
        rows = ws.table("sync_cursors").to_pyarrow().to_pylist()
    assert len(rows) == 1 and rows[0]["table_name"] == "exposures"
    return rows[0]["last_id"], rows[0]["state_rows"], rows[0]["synced_at"]


def test_sync_copies_new_exposures_once(tmp_path: Path, state_url: str) -> None:
    path = tmp_path / "ws"
    rows = assign(Experiment("winback", coverage=0.5), UNITS)
    with init_workspace(path, state_url=state_url) as ws:
        logged = log_exposures(ws.state, rows, ts=T0, clock=ws.clock).logged
        assert 400 < logged < 600
        assert ws.sync().copied == {"exposures": logged}
    first = _cursor(path)
    assert first[1] == logged

    with open_workspace(path) as ws:
        assert ws.sync().copied == {"exposures": 0}  # nothing new: no write at all
        assert ws.warehouse.count("exposures") == logged
    assert _cursor(path) == first

    with open_workspace(path) as ws:
        later = log_exposures(ws.state, rows.slice(0, 40), ts=T0 + timedelta(days=1)).logged
        assert ws.sync().total == later
        assert ws.warehouse.count("exposures") == logged + later
        ids = ws.table("exposures").exposure_id.to_pyarrow().to_pylist()
        assert len(ids) == len(set(ids))


def test_a_row_that_committed_late_is_still_copied(tmp_path: Path, state_url: str) -> None:
    """On PostgreSQL a lower id can commit after a sync has passed it; the next copy
    re-reads the ids just below its cursor and adds what the warehouse lacks."""
    path = tmp_path / "ws"
    rows = assign(Experiment("winback"), UNITS[:50])
    with init_workspace(path, state_url=state_url) as ws:
        log_exposures(ws.state, rows, ts=T0)
        ws.sync()
        # Make the warehouse miss one row below the cursor, as a late commit would.
        with ws.writing() as wh, wh.transaction():
            delete = sge.Delete(
                this=sg.table("exposures", quoted=True),
                where=sge.Where(this=sg.column("unit_id", quoted=True).eq(sge.convert("u0007"))),
            )
            wh.engine.raw_sql(delete)
        log_exposures(ws.state, rows.slice(0, 1), ts=T0 + timedelta(hours=1))
        assert ws.sync().total == 2
        assert ws.warehouse.count("exposures") == 51


def test_the_cli_syncs_and_reports_state(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    with open_workspace(path) as ws:
        log_exposures(ws.state, assign(Experiment("c"), UNITS[:20]), ts=T0)
    done = runner.invoke(app, ["-w", str(path), "sync"])
    assert done.exit_code == 0 and "Copied 20 exposures" in done.output
    again = runner.invoke(app, ["-w", str(path), "sync"])
    assert again.exit_code == 0 and "up to date" in again.output
    status = runner.invoke(app, ["-w", str(path), "state", "status"])
    assert status.exit_code == 0
    assert "sqlite" in status.output and "0008" in status.output
    assert "rows: exposures" in status.output and "20" in status.output


def test_init_puts_state_on_postgresql_when_asked(tmp_path: Path) -> None:
    from state_backends import postgres_schema_url

    runner = CliRunner()
    with postgres_schema_url() as url:
        done = runner.invoke(app, ["init", str(tmp_path / "ws"), "--state-url", url])
        assert done.exit_code == 0, done.output
        assert "state: postgresql" in done.output
        assert f'url = "{url}"' in (tmp_path / "ws" / "liucun.toml").read_text()
        status = runner.invoke(app, ["-w", str(tmp_path / "ws"), "state", "status"])
        assert status.exit_code == 0 and "postgresql" in status.output
        assert not (tmp_path / "ws" / "state.sqlite").exists()


def test_migrations_and_syncs_are_in_the_audit_log(tmp_path: Path, state_url: str) -> None:
    import json

    from sqlalchemy import select

    from liucun.core import SimulatedClock
    from liucun.state import AuditEntry

    clock = SimulatedClock(T0)
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as ws:
        log_exposures(ws.state, assign(Experiment("c"), UNITS[:30]), ts=T0, clock=clock)
        clock.advance(timedelta(hours=2))
        ws.sync()
        ws.sync()  # a no-op leaves no entry
        with ws.state.read() as session:
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["state.migrate", "sync"]
    migrate, synced = entries
    ran = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
    assert json.loads(migrate.details) == {"from": None, "ran": ran, "adopted_exposures": 0}
    assert migrate.at == T0 and synced.at == T0 + timedelta(hours=2)
    assert synced.target == "exposures" and json.loads(synced.details)["copied"] == 30
    assert synced.actor == migrate.actor != ""
