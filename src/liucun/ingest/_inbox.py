"""The inbox: records accepted over HTTP, durable in state, loaded into the warehouse later.

``POST /v1/events`` (and ``/v1/users``) must answer in milliseconds, and what it accepted
must survive a crash; the warehouse takes one writer at a time and loads best in bulk.
So a request validates its records (:mod:`liucun.ingest._records`), commits them to the
state table ``event_inbox`` in one transaction, and answers 202; :func:`load_inbox`
later moves the unloaded rows into the warehouse through the normal ingest path
(:func:`liucun.ingest.ingest_tables`: identities, quarantine and deduplication apply)
and marks them loaded with the load's id.

Exactly one copy reaches the warehouse:

- an ``event_id`` is unique in the inbox: a retry of an accepted event is counted as a
  duplicate and not stored again; the same id with other fields is refused
  (:class:`ConflictingRecords`), and nothing of that request is stored;
- a crash between the warehouse load and the marking leaves the rows unmarked; the next
  load reads them again and ingest counts them as duplicates (events by ``event_id``,
  derived from the content when the event has none; an identical users row is a
  duplicate too).

A user record is stored with ``"_target": "users"`` in its payload and no ``event_id``
(a later record of the same user must not be dropped as a repeat). Contact data in a
user's aliases (``email``, ``phone``) is hashed under the workspace key before it is
stored: the inbox never holds it in clear.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, cast

import orjson
import pyarrow as pa
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql

from liucun.core import InvalidInput, NothingLoaded
from liucun.ingest._load import IngestOptions, IngestResult, ingest_tables
from liucun.ingest._records import (
    EventBatch,
    EventRecord,
    RecordProblem,
    UserBatch,
    UserRecord,
    iso_utc,
    record_context,
    record_problems,
)
from liucun.ingest._rules import IDENTITY_COLUMNS
from liucun.schema import column_names
from liucun.state import InboxEvent
from liucun.workspace import Workspace

#: The payload key that marks a user record (events carry only canonical fields).
TARGET_KEY = "_target"
_EVENT_COLUMNS = tuple(c for c in column_names("events") if c not in ("ingested_at", "load_id"))
_USER_COLUMNS = tuple(c for c in column_names("users") if c not in ("ingested_at", "load_id"))
_FLOATS = {"revenue", "acquisition_cost"}
#: ids per ``IN (...)`` when marking rows (SQLite's variable limit is far above it).
_CHUNK = 5_000


class InvalidRecords(InvalidInput):
    """Records that break a rule; ``problems`` names each bad field. Nothing was stored."""

    def __init__(self, message: str, problems: Sequence[RecordProblem]) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class ConflictingRecords(InvalidRecords):
    """An ``event_id`` already accepted (or earlier in the request) with other fields."""


class Accepted(NamedTuple):
    """What :func:`accept_events` stored: new events, and retries of accepted ones."""

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class InboxLoad:
    """What one :func:`load_inbox` did; ``user_ids``: the (sorted, distinct) user ids
    the round's records named — whose figures a freshness refresh re-derives."""

    rows: int
    users: IngestResult | None = None
    events: IngestResult | None = None
    seconds: float = 0.0
    results: tuple[IngestResult, ...] = field(default=(), repr=False)
    user_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def one(r: IngestResult | None) -> dict[str, Any] | None:
            if r is None:
                return None
            return {
                "load_id": r.load_id,
                "rows_read": r.rows_read,
                "accepted": r.accepted,
                "updated": r.updated,
                "duplicates": r.duplicates,
                "quarantined": r.quarantined,
            }

        return {
            "rows": self.rows,
            "users": one(self.users),
            "events": one(self.events),
            "seconds": round(self.seconds, 3),
        }


def _problem_message(noun: str, problems: Sequence[RecordProblem]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{noun} rejected, nothing was stored: {first.path}: {first.message}{more}"


def _validated(
    ws: Workspace, items: Sequence[Any], model: type[EventRecord] | type[UserRecord]
) -> list[Any]:
    """``items`` as records: records pass, mappings are validated with the workspace's rules."""
    if all(isinstance(item, model) for item in items):
        return list(items)
    batch = EventBatch if model is EventRecord else UserBatch
    key = "events" if model is EventRecord else "users"
    plain = [item.model_dump() if isinstance(item, model) else item for item in items]
    try:
        done = batch.model_validate(
            {key: plain}, context=record_context(ws.settings, ws.clock.now())
        )
    except ValidationError as exc:
        problems = record_problems(exc)
        raise InvalidRecords(_problem_message(f"{key.capitalize()}", problems), problems) from None
    return list(getattr(done, key))


def _dump(payload: Mapping[str, Any]) -> str:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def accept_events(
    ws: Workspace,
    events: Sequence[EventRecord | Mapping[str, Any]],
    key_id: str | None = None,
) -> Accepted:
    """Commit ``events`` to the inbox in one transaction; return how many were new and
    how many repeat an event already accepted (same ``event_id`` and fields).

    Mappings are validated first (:class:`InvalidRecords` names every bad field). An
    ``event_id`` already accepted with different fields raises
    :class:`ConflictingRecords`. In both cases nothing is stored.
    """
    records = cast(list[EventRecord], _validated(ws, events, EventRecord))
    now = ws.clock.now()
    rows: list[dict[str, Any]] = []
    first_at: dict[str, int] = {}
    problems: list[RecordProblem] = []
    repeats = 0
    for i, rec in enumerate(records):
        payload = _dump(rec.model_dump(exclude_none=True))
        if rec.event_id is not None:
            j = first_at.get(rec.event_id)
            if j is not None:
                if rows[j]["payload"] != payload:
                    problems.append(
                        RecordProblem(
                            f"events[{i}].event_id",
                            f"{rec.event_id!r} is already used by events[{rows[j]['_index']}] "
                            "of this request with different fields; give every event its own "
                            "id",
                        )
                    )
                repeats += 1
                continue
            first_at[rec.event_id] = len(rows)
        rows.append(
            {
                "event_id": rec.event_id,
                "payload": payload,
                "key_id": key_id,
                "received_at": now,
                "_index": i,
            }
        )
    if problems:
        raise ConflictingRecords(_problem_message("Events", problems), problems)
    if not rows:
        return Accepted(0, repeats)
    store = ws.state
    with store.write() as session:
        # Already accepted: one indexed lookup, then the retries are checked to be exact
        # (on SQLite the write lock is held from BEGIN, so nothing slips in between; on
        # PostgreSQL ON CONFLICT DO NOTHING drops a row a concurrent request just added).
        stored = _stored_payloads(session, [r["event_id"] for r in rows if r["event_id"]])
        dupes = [r for r in rows if r["event_id"] in stored]
        if dupes:
            _check_same(dupes, stored)
        fresh = [
            {k: v for k, v in r.items() if k != "_index"}
            for r in rows
            if r["event_id"] not in stored
        ]
        inserted = _insert_rows(session, store.backend, fresh)
    late = len(fresh) - int(inserted)
    return Accepted(int(inserted), repeats + len(dupes) + late)


def _insert_rows(session: Any, backend: str, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (an id already present is skipped); return how many went in.

    SQLite: one ``executemany`` of the driver, whose row count is exact (the rows go
    straight to sqlite3, without SQLAlchemy's per-row parameter processing: the times
    are written as its UTC DATETIME text). PostgreSQL: SQLAlchemy sends the rows as
    multi-row INSERTs, which report no row count, so the ids come back (``RETURNING``)
    and are counted.
    """
    if not rows:
        return 0
    if backend == "postgresql":
        stmt = (
            postgresql.insert(InboxEvent.__table__)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(InboxEvent.__table__.c.id)
        )
        return len(session.execute(stmt, rows).all())
    params = [
        (r["event_id"], r["payload"], r["key_id"], _sqlite_time(r["received_at"])) for r in rows
    ]
    done = session.connection().exec_driver_sql(_SQLITE_INSERT, params)
    return int(done.rowcount)


_SQLITE_INSERT = (
    f"INSERT INTO {InboxEvent.__tablename__} (event_id, payload, key_id, received_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)


def _sqlite_time(at: datetime) -> str:
    """``at`` as SQLAlchemy's SQLite DATETIME text in UTC (what :class:`UTCDateTime` stores)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _stored_payloads(session: Any, ids: list[str]) -> dict[str, str]:
    stored: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(InboxEvent.event_id, InboxEvent.payload).where(
            InboxEvent.event_id.in_(ids[start : start + _CHUNK])
        )
        stored.update({eid: payload for eid, payload in session.execute(query)})
    return stored


def _check_same(dupes: list[dict[str, Any]], stored: Mapping[str, str]) -> None:
    """Refuse (rolling the request back) an ``event_id`` stored with other fields."""
    problems = [
        RecordProblem(
            f"events[{r['_index']}].event_id",
            f"{r['event_id']!r} was already accepted with different fields; give every event "
            "its own id (a retry must repeat the event exactly)",
        )
        for r in dupes
        if stored.get(r["event_id"]) != r["payload"]
    ]
    if problems:
        raise ConflictingRecords(_problem_message("Events", problems), problems)


_PHONE_JUNK = re.compile(r"[^0-9+]")


def _hashed_aliases(ws: Workspace, rec: UserRecord, index: int) -> dict[str, list[str]]:
    """The record's aliases with e-mail and phone replaced by their keyed hashes (the
    normalization of file ingest: e-mail trimmed and lower-cased, a phone's digits and +).
    An ``email_hash`` / ``phone_hash`` given as such wins over a raw value."""
    out: dict[str, list[str]] = {}
    given = rec.alias_lists()
    for kind in ("email", "phone"):
        values = given.pop(kind, [])
        hashes = []
        for k, value in enumerate(values):
            norm = value.strip().lower() if kind == "email" else _PHONE_JUNK.sub("", value)
            if not norm:
                path = f"users[{index}].aliases.{kind}" + (f"[{k}]" if len(values) > 1 else "")
                problem = RecordProblem(path, "holds no digits; send the phone number")
                raise InvalidRecords(_problem_message("Users", [problem]), [problem])
            hashes.append(ws.keyed_hash(norm))
        if hashes and f"{kind}_hash" not in given:
            out[f"{kind}_hash"] = hashes
    out.update(given)
    return out


def accept_users(
    ws: Workspace,
    users: Sequence[UserRecord | Mapping[str, Any]],
    key_id: str | None = None,
) -> int:
    """Commit user records (identify, attributes, aliases) to the inbox; return how many.

    A record sets only the fields it carries (``null`` clears one) and merges its
    ``attributes`` key by key into the stored ones when it is loaded.
    """
    records = cast(list[UserRecord], _validated(ws, users, UserRecord))
    now = ws.clock.now()
    rows = []
    for i, rec in enumerate(records):
        body = rec.model_dump(mode="json", exclude_unset=True, exclude={"aliases"})
        aliases = _hashed_aliases(ws, rec, i)
        if aliases:
            body["aliases"] = aliases
        body[TARGET_KEY] = "users"
        rows.append(
            {"event_id": None, "payload": _dump(body), "key_id": key_id, "received_at": now}
        )
    with ws.state.write() as session:
        session.execute(insert(InboxEvent), rows)
    return len(rows)


def inbox_counts(ws: Workspace) -> dict[str, int]:
    """Rows of the inbox waiting for the loader (``pending``) and already loaded."""
    with ws.state.read() as session:
        pending = session.scalar(
            select(func.count()).select_from(InboxEvent).where(InboxEvent.loaded_at.is_(None))
        )
        total = session.scalar(select(func.count()).select_from(InboxEvent))
    return {"pending": int(pending or 0), "loaded": int((total or 0) - (pending or 0))}


# -- the loader ----------------------------------------------------------------------------


def load_inbox(ws: Workspace, limit: int | None = None) -> InboxLoad:
    """Move up to ``limit`` unloaded inbox rows (oldest first; default ``[serve]
    loader_batch``) into the warehouse and mark them loaded with their load's id.

    Users go first, then events, through :func:`liucun.ingest.ingest_tables`; a row that
    breaks an ingest rule lands in the quarantine (source ``api inbox FIRST-LAST``, line
    = its place in the batch). Safe to run again after a crash at any point.
    """
    started = time.perf_counter()
    limit = limit or ws.settings.serve.loader_batch
    with ws.state.read() as session:
        rows = session.execute(
            select(InboxEvent.id, InboxEvent.payload)
            .where(InboxEvent.loaded_at.is_(None))
            .order_by(InboxEvent.id)
            .limit(limit)
        ).all()
    if not rows:
        return InboxLoad(0, seconds=time.perf_counter() - started)
    event_ids, user_ids = [], []
    events, users = [], []
    for row_id, payload in rows:
        body = orjson.loads(payload)
        if body.pop(TARGET_KEY, None) == "users":
            user_ids.append(row_id)
            users.append(body)
        else:
            event_ids.append(row_id)
            events.append(body)
    options = IngestOptions.from_settings(
        ws.settings, clock=ws.clock, hash_key=ws.hash_key, max_reject_rate=1.0
    )
    source = f"api inbox {rows[0][0]}-{rows[-1][0]}"
    results: dict[str, IngestResult] = {}
    with ws.writing() as wh:
        tables = {
            "users": _users_table(wh, users) if users else None,
            "events": _events_table(events) if events else None,
        }
        for target, table in tables.items():
            if table is None:
                continue
            try:
                (result,) = ingest_tables(wh, source=source, options=options, **{target: table})
            except NothingLoaded as exc:  # committed; its rows are in the quarantine
                result = exc.result  # type: ignore[attr-defined]
            results[target] = result
    loaded_at = ws.clock.now()
    with ws.state.write() as session:
        for target, ids in (("users", user_ids), ("events", event_ids)):
            if target not in results:
                continue
            for start in range(0, len(ids), _CHUNK):
                session.execute(
                    update(InboxEvent)
                    .where(InboxEvent.id.in_(ids[start : start + _CHUNK]))
                    .values(loaded_at=loaded_at, load_id=results[target].load_id)
                )
    return InboxLoad(
        len(rows),
        users=results.get("users"),
        events=results.get("events"),
        seconds=time.perf_counter() - started,
        results=tuple(results.values()),
        user_ids=tuple(sorted({str(r["user_id"]) for r in (*users, *events) if r.get("user_id")})),
    )


def _arrow(columns: Sequence[str], records: list[dict[str, Any]]) -> pa.Table:
    data = {}
    for col in columns:
        values = [r.get(col) for r in records]
        if col in _FLOATS:
            data[col] = pa.array(values, type=pa.float64())
        else:
            data[col] = pa.array(
                [_as_text(v) for v in values],
                type=pa.string(),
            )
    return pa.table(data)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _events_table(events: list[dict[str, Any]]) -> pa.Table:
    return _arrow(_EVENT_COLUMNS, events)


def _users_table(wh: Any, users: list[dict[str, Any]]) -> pa.Table:
    """One row per user record (more when a record links several aliases of a type),
    each merged over the user's stored row and the records before it in the batch."""
    ids = sorted({u["user_id"] for u in users})
    stored = wh.engine_table("users")
    current: dict[str, dict[str, Any]] = {
        r["user_id"]: r
        for r in stored.filter(stored.user_id.isin(ids))
        .select(*_USER_COLUMNS)
        .to_pyarrow()
        .to_pylist()
    }
    out: list[dict[str, Any]] = []
    for rec in users:
        uid = rec["user_id"]
        merged = dict(current.get(uid) or {"user_id": uid})
        attrs = _json_object(merged.get("attributes"))
        for col, value in rec.items():
            if col == "attributes":
                for k, v in (value or {}).items():
                    if v is None:
                        attrs.pop(k, None)
                    else:
                        attrs[k] = v
            elif col != "aliases":
                merged[col] = value
        merged["attributes"] = attrs or None
        current[uid] = merged
        aliases: dict[str, list[str]] = rec.get("aliases") or {}
        n = max((len(v) for v in aliases.values()), default=1)
        for k in range(n):
            row = dict(merged)
            for kind, values in aliases.items():
                row[kind] = values[k] if k < len(values) else None
            out.append(row)
    present = [c for c in IDENTITY_COLUMNS if any(r.get(c) is not None for r in out)]
    return _arrow((*_USER_COLUMNS, *present), out)


def _json_object(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return dict(text)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
