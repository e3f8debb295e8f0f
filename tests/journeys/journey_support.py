"""Shared set-up of the engine tests: a workspace on a state backend with a simulated
clock, hand-made users and events in its warehouse, journeys installed as the lifecycle
module will store them (``journeys`` + ``journey_versions`` rows), and readers of the
engine's tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.journeys import JourneySpec
from liucun.state import Journey, JourneyEnrolment, JourneyStep, JourneyVersion, OutboxMessage
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@contextmanager
def engine_workspace(path: Path, state_url: str, start: datetime = T0) -> Iterator[Workspace]:
    """A workspace at ``path`` on ``state_url`` with a simulated clock at ``start``."""
    with init_workspace(path, state_url=state_url, clock=SimulatedClock(start)) as ws:
        yield ws


def spec(**fields: Any) -> JourneySpec:
    """A JourneySpec from keyword fields (nodes default to one message then exit)."""
    body = {
        "name": "j1",
        "trigger": {"type": "event", "event": "signup"},
        "nodes": [
            {
                "id": "hello",
                "type": "message",
                "channel": "email",
                "next": "done",
                "template": {
                    "subject": {"en": "Hi"},
                    "body": {"en": "Hello {{ user_id }}", "zh-CN": "你好"},
                },
            },
            {"id": "done", "type": "exit"},
        ],
    }
    body.update(fields)
    return JourneySpec.model_validate(body)


def install_journey(ws: Workspace, journey: JourneySpec, *, at: datetime | None = None) -> int:
    """Store ``journey`` as the next version of its name and make it active (what
    apply + approve + activate will do); returns the version."""
    now = at or ws.clock.now()
    definition = journey.model_dump_json()
    digest = hashlib.sha256(definition.encode()).hexdigest()
    with ws.state.write() as s:
        row = s.scalars(select(Journey).where(Journey.name == journey.name)).first()
        version = 1 if row is None else row.latest_version + 1
        s.add(
            JourneyVersion(
                journey=journey.name,
                version=version,
                digest=digest,
                definition=definition,
                source=json.dumps(journey.model_dump(), default=str),
                migrate=journey.migrate,
                created_at=now,
                created_by="test",
            )
        )
        if row is None:
            s.add(
                Journey(
                    name=journey.name,
                    status="active",
                    latest_version=version,
                    active_version=version,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            row.latest_version = version
            row.active_version = version
            row.status = "active"
            row.updated_at = now
    return version


def users(ws: Workspace, rows: Sequence[dict[str, Any]]) -> None:
    """Ingest user rows (user_id plus any users columns)."""
    cols: dict[str, list[Any]] = {}
    names = sorted({k for r in rows for k in r})
    for n in names:
        cols[n] = [r.get(n) for r in rows]
    table = pa.table(
        {
            n: (
                pa.array(v, pa.date32())
                if n == "birthday"
                else pa.array(v, pa.timestamp("us", tz="UTC"))
                if n == "signup_ts"
                else pa.array(v)
            )
            for n, v in cols.items()
        }
    )
    ingest_tables(ws.warehouse, users=table, options=IngestOptions(clock=ws.clock))


_counter = {"n": 0}


def events(ws: Workspace, rows: Sequence[dict[str, Any]]) -> None:
    """Ingest event rows: ``user_id, event_type, ts`` and optionally ``revenue``,
    ``order_id``, ``account_id``, ``properties`` (a dict)."""
    base = int(ws.table("events").count().to_pyarrow().as_py())
    n = len(rows)
    table = pa.table(
        {
            "event_id": [r.get("event_id") or f"e{base + i}" for i, r in enumerate(rows)],
            "user_id": [r["user_id"] for r in rows],
            "event_type": [r["event_type"] for r in rows],
            "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC")),
            "revenue": pa.array([r.get("revenue") for r in rows], pa.float64()),
            "currency": [("CNY" if r.get("revenue") is not None else None) for r in rows],
            "order_id": pa.array([r.get("order_id") for r in rows], pa.string()),
            "account_id": pa.array([r.get("account_id") for r in rows], pa.string()),
            "properties": pa.array(
                [json.dumps(r["properties"]) if r.get("properties") else None for r in rows],
                pa.string(),
            ),
        }
    )
    assert table.num_rows == n
    ingest_tables(ws.warehouse, events=table, options=IngestOptions(clock=ws.clock))


def enrolments(ws: Workspace, journey: str | None = None) -> list[JourneyEnrolment]:
    with ws.state.read() as s:
        q = select(JourneyEnrolment).order_by(JourneyEnrolment.id)
        if journey:
            q = q.where(JourneyEnrolment.journey == journey)
        return list(s.scalars(q))


def steps(ws: Workspace, kind: str | None = None) -> list[JourneyStep]:
    with ws.state.read() as s:
        q = select(JourneyStep).order_by(JourneyStep.id)
        if kind:
            q = q.where(JourneyStep.kind == kind)
        return list(s.scalars(q))


def outbox(ws: Workspace) -> list[OutboxMessage]:
    with ws.state.read() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def day(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def dates(*values: str) -> list[date]:
    return [date.fromisoformat(v) for v in values]


def entries(
    rows: Sequence[tuple[str, str, datetime]], context: dict[str, Any] | None = None
) -> pa.Table:
    """Trigger entries ``(user_id, key, at)`` as the triggers return them."""
    from liucun.journeys._triggers import ENTRY_SCHEMA

    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "at": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "context": [json.dumps(context or {}) for _ in rows],
        },
        schema=ENTRY_SCHEMA,
    )


def enrol(ws: Workspace, journey: JourneySpec, rows: Sequence[tuple[str, str, datetime]]) -> Any:
    """Install ``journey`` if needed and enrol ``rows`` at the clock's now."""
    from liucun.journeys._engine import enrol as _enrol

    with ws.state.read() as s:
        version = s.scalar(select(Journey.active_version).where(Journey.name == journey.name))
    if version is None:
        version = install_journey(ws, journey)
    return _enrol(ws, journey.name, version, journey, entries(rows), now=ws.clock.now())


def advance(ws: Workspace, now: datetime, worker: str = "w1") -> Any:
    from liucun.journeys._engine import advance_due

    ws.clock.set(now, allow_backwards=True)
    return advance_due(ws, worker_id=worker, now=now)
