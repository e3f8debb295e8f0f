"""Paid-membership purchases from the warehouse (``membership_purchase`` events) join and
renew, under merged identities, once; refusals are counted with their sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from test_membership import program_file
from typer.testing import CliRunner

from liucun import loyalty
from liucun.cli import app
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.workspace import Workspace, init_workspace

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(NOW)) as w:
        loyalty.apply_program(w, program_file(tmp_path))
        yield w


def purchases(ws: Workspace, rows: list[tuple[str, str, datetime, str | None]]) -> None:
    ingest_tables(
        ws.warehouse,
        users=pa.table({"user_id": ["a", "a-app", "b"], "email": ["a@x.cn", "A@x.cn", "b@x.cn"]}),
        events=pa.table(
            {
                "event_id": [r[0] for r in rows],
                "user_id": [r[1] for r in rows],
                "event_type": ["membership_purchase"] * len(rows),
                "ts": pa.array([r[2] for r in rows], type=pa.timestamp("us", tz="UTC")),
                "properties": [None if r[3] is None else json.dumps({"plan": r[3]}) for r in rows],
            }
        ),
        options=IngestOptions(hash_key=ws.hash_key, clock=ws.clock),
    )


def test_purchases_join_then_renew_once_under_the_merged_customer(
    ws: Workspace, tmp_path: Path
) -> None:
    purchases(
        ws,
        [
            ("p1", "a", datetime(2026, 1, 10, 4, tzinfo=UTC), "yearly"),
            # the same person on the app, before the term ends: a renewal from its end
            ("p2", "a-app", datetime(2026, 11, 20, 4, tzinfo=UTC), "yearly"),
            ("p3", "b", datetime(2026, 3, 1, 4, tzinfo=UTC), "platinum"),  # no such plan
            ("p4", "b", datetime(2026, 3, 2, 4, tzinfo=UTC), None),  # names no plan
        ],
    )
    done = loyalty.import_purchases(ws)
    assert (done.purchases, done.joined, done.renewed, done.replayed) == (4, 1, 1, 0)
    assert [e for e, _ in done.refused] == ["p3", "p4"]
    assert "platinum" in done.refused[0][1] and "names no plan" in done.refused[1][1]
    (m,) = loyalty.memberships(ws)
    canonical = m.user_id
    assert canonical in {"a", "a-app"}
    # joined 10 Jan 12:00 Shanghai; two yearly terms: to 10 Jan 2028 12:00 Shanghai
    assert (m.plan_id, m.renewals, m.term_end) == (
        "yearly",
        1,
        datetime(2028, 1, 10, 4, tzinfo=UTC),
    )
    again = loyalty.import_purchases(ws)
    assert (again.joined, again.renewed, again.replayed) == (0, 0, 2)
    assert len(loyalty.membership_events(ws)) == 2


def test_the_cli_imports_and_says_what_it_did(ws: Workspace) -> None:
    purchases(ws, [("p1", "b", datetime(2026, 5, 1, tzinfo=UTC), "yearly")])
    ws.close()
    out = CliRunner().invoke(
        app, ["-w", str(ws.path), "loyalty", "member", "import", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["joined"] == 1
    text = CliRunner().invoke(app, ["-w", str(ws.path), "loyalty", "member", "import"])
    assert "1 purchase(s): 0 joined, 0 renewed, 1 imported before" in text.stdout


def test_events_liucun_writes_do_not_move_the_data_end(ws: Workspace) -> None:
    """A tier review or a warning at the data end must not make the shop's history a day
    longer (the report would then read the ledger a day after the loyalty jobs ran)."""
    purchases(ws, [("p1", "b", datetime(2026, 5, 1, 10, tzinfo=UTC), "yearly")])
    assert ws.data_end() == datetime(2026, 5, 2, tzinfo=UTC)
    loyalty.import_purchases(ws)  # writes a membership_joined event at 1 May 10:00
    ingest_tables(
        ws.warehouse,
        events=pa.table(
            {
                "event_id": ["t1"],
                "user_id": ["b"],
                "event_type": ["tier_changed"],
                "ts": pa.array(
                    [datetime(2026, 5, 2, tzinfo=UTC)], type=pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        options=IngestOptions(clock=ws.clock),
    )
    assert ws.data_end() == datetime(2026, 5, 2, tzinfo=UTC)
