"""Service tasks on SQLite and PostgreSQL: respond and close, the SLA breach job (open
tasks past due become breached at the SLA instant; a late response keeps its status and
gets breached_at; a timely one never breaches), breach events with stable ids, and a
second run changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from liucun.core import InvalidInput, SimulatedClock
from liucun.journeys._tasks import (
    breach_due_tasks,
    close_task,
    list_tasks,
    open_task,
    publish_task_events,
    respond_task,
)
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def make(ws: Workspace, key: str, hours: float, user: str = "u1") -> int:
    with ws.state.write() as s:
        task, created = open_task(
            s, key=key, user_id=user, queue="vip", summary="call", sla_hours=hours, now=T0
        )
        assert created
        return int(task.id)


def test_breach_job(ws: Workspace) -> None:
    fast = make(ws, "a", 2)  # due 04:00, never answered
    late = make(ws, "b", 2)  # answered at 05:00, after its SLA
    timely = make(ws, "c", 2)  # answered at 03:00
    later = make(ws, "d", 24)  # due tomorrow
    ws.clock.set(T0 + timedelta(hours=1))
    respond_task(ws, timely)
    ws.clock.set(T0 + timedelta(hours=3))
    respond_task(ws, late)
    ws.clock.set(T0 + timedelta(hours=5))
    breached = breach_due_tasks(ws)
    assert [(t.id, t.status, t.breached_at) for t in breached] == [
        (fast, "breached", T0 + timedelta(hours=2)),
        (late, "responded", T0 + timedelta(hours=2)),
    ]
    assert breach_due_tasks(ws) == []  # nothing new
    assert [t.id for t in list_tasks(ws, status="open")] == [later]
    ev = ws.table("events").to_pandas()
    assert sorted(ev.event_id) == ["service_task_breached:a", "service_task_breached:b"]
    assert set(ev.event_type) == {"service_task_breached"}
    # publishing everything again adds only the created events
    publish_task_events(ws)
    ev = ws.table("events").to_pandas()
    assert len(ev) == 6 and ev.event_id.is_unique
    # the day after, the 24 h task breaches too
    ws.clock.set(T0 + timedelta(hours=25))
    assert [t.id for t in breach_due_tasks(ws)] == [later]


def test_respond_and_close(ws: Workspace) -> None:
    t = make(ws, "x", 24)
    ws.clock.advance(timedelta(hours=1))
    first = respond_task(ws, t)
    assert first.status == "responded" and first.responded_at == T0 + timedelta(hours=1)
    ws.clock.advance(timedelta(hours=1))
    assert respond_task(ws, t).responded_at == first.responded_at  # unchanged
    closed = close_task(ws, t)
    assert closed.status == "closed" and closed.closed_at == T0 + timedelta(hours=2)
    with pytest.raises(InvalidInput, match="closed"):
        respond_task(ws, t)
    # closing an unanswered task is its response
    u = make(ws, "y", 24)
    assert close_task(ws, u).responded_at == ws.clock.now()
    with pytest.raises(InvalidInput, match="no service task 999"):
        close_task(ws, 999)
