"""The inbox: records accepted over HTTP, loaded into the warehouse through ingest —
idempotently, also across a crash between the load and the marking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select

from liucun.ingest import (
    ConflictingRecords,
    InvalidRecords,
    accept_events,
    accept_users,
    inbox_counts,
    ingest_tables,
    load_inbox,
)
from liucun.ingest import _inbox as inbox_module
from liucun.state import InboxEvent
from liucun.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    opened = init_workspace(tmp_path / "ws", state_url=state_url)
    yield opened
    opened.close()


def _order(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"o-{i}",
        "user_id": f"u-{i % 3}",
        "event_type": "order",
        "ts": "2025-05-01T12:00:00+08:00",
        "revenue": 10.0 * i,
        "currency": "CNY",
        **fields,
    }


def _events(ws: Workspace) -> list[dict[str, Any]]:
    table = ws.warehouse.engine_table("events")
    return table.order_by("event_id").to_pyarrow().to_pylist()  # type: ignore[no-any-return]


def test_mappings_are_validated_and_a_bad_batch_stores_nothing(ws: Workspace) -> None:
    with pytest.raises(InvalidRecords, match=r"events\[1\]\.currency: 'EURO' is not an ISO") as err:
        accept_events(ws, [_order(0), _order(1, currency="EURO")])
    assert [p.path for p in err.value.problems] == ["events[1].currency"]
    assert inbox_counts(ws) == {"pending": 0, "loaded": 0}


def test_accepting_is_idempotent_by_event_id(ws: Workspace) -> None:
    assert accept_events(ws, [_order(i) for i in range(5)]) == (5, 0)
    assert accept_events(ws, [_order(i) for i in range(3, 8)]) == (3, 2)
    with pytest.raises(ConflictingRecords, match="already accepted with different fields"):
        accept_events(ws, [_order(8), _order(2, revenue=1.0)])
    assert inbox_counts(ws)["pending"] == 8


def test_load_moves_rows_once_with_times_in_utc(ws: Workspace) -> None:
    accept_events(ws, [_order(i) for i in range(4)], key_id="k1")
    first = load_inbox(ws, limit=3)
    assert first.rows == 3 and first.events is not None and first.events.accepted == 3
    assert inbox_counts(ws) == {"pending": 1, "loaded": 3}
    rest = load_inbox(ws)
    assert rest.rows == 1
    assert load_inbox(ws).rows == 0
    rows = _events(ws)
    assert [r["event_id"] for r in rows] == ["o-0", "o-1", "o-2", "o-3"]
    assert rows[1]["ts"] == datetime(2025, 5, 1, 4, 0, tzinfo=UTC)
    assert rows[1]["revenue"] == 10.0 and rows[1]["currency"] == "CNY"
    assert rows[0]["load_id"] == first.events.load_id


def test_a_crash_between_load_and_marking_does_not_duplicate(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_events(ws, [_order(i) for i in range(6)])

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("power cut after the warehouse commit")

    monkeypatch.setattr(inbox_module, "update", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        load_inbox(ws)
    assert len(_events(ws)) == 6  # the warehouse load committed …
    assert inbox_counts(ws) == {"pending": 6, "loaded": 0}  # … the marking did not
    monkeypatch.undo()
    again = load_inbox(ws)
    assert again.events is not None
    assert (again.events.accepted, again.events.duplicates) == (0, 6)
    assert len(_events(ws)) == 6
    assert inbox_counts(ws) == {"pending": 0, "loaded": 6}


def test_events_without_an_id_are_deduplicated_by_content_at_load(ws: Workspace) -> None:
    view = {"anonymous_id": "a-1", "event_type": "view", "ts": 1_746_000_000}
    assert accept_events(ws, [view, view]) == (2, 0)  # no id: the inbox cannot tell
    done = load_inbox(ws)
    assert done.events is not None and done.events.accepted == 1
    assert done.events.duplicates == 1
    assert len(_events(ws)) == 1


def test_a_row_ingest_refuses_goes_to_the_quarantine_and_is_not_retried(ws: Workspace) -> None:
    stored = pa.table(
        {
            "event_id": ["o-1"],
            "user_id": ["u-1"],
            "event_type": ["order"],
            "ts": ["2025-05-01T00:00:00Z"],
            "revenue": ["99"],
            "currency": ["CNY"],
        }
    )
    ingest_tables(ws.warehouse, events=stored, source="file.csv")
    accept_events(ws, [_order(1), _order(2)])  # o-1 differs from the stored event
    done = load_inbox(ws)
    assert done.events is not None
    assert (done.events.accepted, done.events.quarantined) == (1, 1)
    quarantined = ws.table("quarantine").to_pyarrow().to_pylist()
    assert quarantined[0]["reason_codes"] == ["conflicting_event_id"]
    assert quarantined[0]["source"].startswith("api inbox ")
    assert inbox_counts(ws) == {"pending": 0, "loaded": 2}


def test_users_merge_in_order_and_contact_data_is_hashed_before_storage(ws: Workspace) -> None:
    accept_users(
        ws,
        [
            {"user_id": "u-1", "country": "DE", "attributes": {"a": 1, "b": 2}},
            {"user_id": "u-1", "region": "Bavaria", "attributes": {"b": None}},
            {"user_id": "u-2", "aliases": {"phone": "+49 (170) 123-45", "device_id": "d-9"}},
        ],
    )
    with ws.state.read() as session:
        payloads = session.scalars(select(InboxEvent.payload)).all()
    assert len(payloads) == 3 and not any("170" in p for p in payloads)
    done = load_inbox(ws)
    assert done.users is not None and done.users.accepted == 2
    users = {u["user_id"]: u for u in ws.table("users").to_pyarrow().to_pylist()}
    assert users["u-1"]["country"] == "DE" and users["u-1"]["region"] == "Bavaria"
    assert users["u-1"]["attributes"] == '{"a": 1}'
    ids = ws.table("identities").to_pyarrow().to_pylist()
    aliases = {(r["alias_type"], r["alias"]) for r in ids if r["user_id"] == "u-2"}
    assert ("phone_hash", ws.keyed_hash("+4917012345")) in aliases
    assert ("device_id", "d-9") in aliases
