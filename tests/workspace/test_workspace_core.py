"""The workspace as composition root: what init creates, the secret key, the resolved
views, the clock and "data end", state on SQLite or PostgreSQL, and pre-state workspaces."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

import liucun
from liucun.core import ConfigError, SimulatedClock, WorkspaceError
from liucun.core._hashing import keyed_hash
from liucun.schema import arrow_schema
from liucun.state import STATE_FILE, count_exposures, state_status
from liucun.warehouse import canonical_customers
from liucun.workspace import SECRET_ENV, SECRET_FILE, init_workspace, open_workspace


def test_init_creates_settings_warehouse_state_and_a_private_key(
    tmp_path: Path, state_url: str
) -> None:
    with init_workspace(tmp_path / "ws", state_url=state_url) as ws:
        files = {p.name for p in ws.path.iterdir()}
        assert {"liucun.toml", "warehouse.duckdb", SECRET_FILE, "models", "reports"} <= files
        # the SQLite fixture keeps its file outside the workspace; neither makes the default
        assert STATE_FILE not in files
        assert ws.state.url.startswith(state_url.split("?")[0].split("://")[0])
        assert stat.S_IMODE((ws.path / SECRET_FILE).stat().st_mode) == 0o600
        key = bytes.fromhex((ws.path / SECRET_FILE).read_text().strip())
        assert len(key) == 32
        assert ws.keyed_hash("ann@example.com") == keyed_hash(key, "ann@example.com")
        st = state_status(ws.state)
        assert st.up_to_date and st.rows["workspace_secrets"] == 1
        assert st.backend == ("sqlite" if state_url.startswith("sqlite") else "postgresql")
    # init again keeps the key and the settings
    again = init_workspace(tmp_path / "ws", state_url=state_url)
    assert again.hash_key == key
    again.close()


def test_a_wrong_or_exposed_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path / "ws").close()
    monkeypatch.setenv(SECRET_ENV, "ab" * 32)
    with (
        open_workspace(tmp_path / "ws") as ws,
        pytest.raises(WorkspaceError, match="not the one this workspace's hashes were made with"),
    ):
        ws.hash_key  # noqa: B018
    monkeypatch.delenv(SECRET_ENV)
    os.chmod(tmp_path / "ws" / SECRET_FILE, 0o644)
    with (
        open_workspace(tmp_path / "ws") as ws,
        pytest.raises(WorkspaceError, match=r"chmod 600"),
    ):
        ws.hash_key  # noqa: B018
    (tmp_path / "ws" / SECRET_FILE).unlink()
    with (
        open_workspace(tmp_path / "ws") as ws,
        pytest.raises(WorkspaceError, match=f"no secret key.*{SECRET_ENV}"),
    ):
        ws.hash_key  # noqa: B018


def test_the_key_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "cd" * 32)
    with init_workspace(tmp_path / "ws") as ws:
        assert ws.hash_key == bytes.fromhex("cd" * 32)


def test_table_names_every_table_for_an_unknown_name(workspace: liucun.Workspace) -> None:
    with pytest.raises(ConfigError, match=r"no table 'orders'; its tables are events, .*users"):
        workspace.table("orders")
    assert workspace.table("events").count().to_pyarrow().as_py() == 0


def test_the_clock_and_data_end(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2026, 1, 31, 9, tzinfo=UTC))
    with init_workspace(tmp_path / "ws", clock=clock) as ws:
        assert ws.clock is clock and ws.data_end() is None
        events = pa.table(
            {
                "event_id": ["e1", "e2"],
                "user_id": ["u1", "u1"],
                "event_type": ["order", "order"],
                "ts": pa.array(
                    [
                        datetime(2026, 1, 2, 8, tzinfo=UTC),
                        datetime(2026, 1, 30, 23, 59, tzinfo=UTC),
                    ],
                    pa.timestamp("us", tz="UTC"),
                ),
                "load_id": ["l", "l"],
                "ingested_at": pa.array([clock.now()] * 2, pa.timestamp("us", tz="UTC")),
            }
        )
        full = pa.table(
            {
                f.name: events[f.name] if f.name in events.column_names else pa.nulls(2, f.type)
                for f in arrow_schema("events")
            },
            schema=arrow_schema("events"),
        )
        with ws.writing() as wh, wh.transaction() as writer:
            writer.append("events", wh.materialize(ibis.memtable(full), name="_t_events"))
        assert ws.data_end() == datetime(2026, 1, 31, tzinfo=UTC)


def _identities(rows: list[tuple[str, str, str, datetime | None]]) -> ibis.Table:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return ibis.memtable(
        pa.table(
            {
                "alias": [r[0] for r in rows],
                "alias_type": [r[1] for r in rows],
                "user_id": [r[2] for r in rows],
                "valid_from": pa.array([t0] * len(rows), pa.timestamp("us", tz="UTC")),
                "valid_to": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
                "load_id": ["l"] * len(rows),
            }
        )
    )


def test_customers_are_one_row_per_canonical_user() -> None:
    """u2 was merged into u1 (its old mapping closed); u3 stands alone. The canonical
    user's own row wins over the newer row of the merged alias."""
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    users = ibis.memtable(
        pa.table(
            {
                "user_id": ["u1", "u2", "u3"],
                "country": ["CN", "DE", "FR"],
                "ingested_at": pa.array([t1, t2, t1], pa.timestamp("us", tz="UTC")),
            }
        )
    )
    identities = _identities(
        [
            ("u1", "user_id", "u1", None),
            ("u2", "user_id", "u2", t2),  # replaced by the merge
            ("u2", "user_id", "u1", None),
            ("u3", "user_id", "u3", None),
        ]
    )
    out = canonical_customers(users, identities).to_pandas().sort_values("user_id")
    assert out.user_id.tolist() == ["u1", "u3"]
    assert out.country.tolist() == ["CN", "FR"]
    assert out.raw_user_id.tolist() == ["u1", "u3"]


def test_a_workspace_made_before_state_gets_it_and_keeps_its_exposures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        rows = pa.table(
            {
                "exposure_id": ["x1", "x2", "x3"],
                "experiment": ["old"] * 3,
                "layer": pa.nulls(3, pa.string()),
                "unit_type": ["user"] * 3,
                "unit_id": ["u1", "u2", "u3"],
                "variant": ["control", "treatment", "control"],
                "probability": [0.5] * 3,
                "holdout": [False] * 3,
                "ts": pa.array(
                    [datetime(2026, 5, 1, tzinfo=UTC)] * 3, pa.timestamp("us", tz="UTC")
                ),
                "load_id": ["exp-old"] * 3,
            },
            schema=arrow_schema("exposures"),
        )
        with ws.writing() as wh, wh.transaction() as writer:
            writer.append("exposures", wh.materialize(ibis.memtable(rows), name="_t_exp"))
    for name in (STATE_FILE, f"{STATE_FILE}-wal", f"{STATE_FILE}-shm"):
        (tmp_path / "ws" / name).unlink(missing_ok=True)
    with (
        caplog.at_level(logging.WARNING, logger="liucun.workspace"),
        open_workspace(tmp_path / "ws") as ws,
    ):
        with ws.state.read() as session:
            assert count_exposures(session) == 3
        assert "predates it" in caplog.text and "moved 3 exposure(s)" in caplog.text
        assert ws.sync().copied == {"exposures": 0}  # already in the warehouse
        assert ws.warehouse.count("exposures") == 3
