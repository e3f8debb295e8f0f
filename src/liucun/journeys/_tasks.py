"""Customer-service tasks: a queue with an SLA, responses, closing, and breach events.

A journey's ``task`` action opens a task (``service_tasks``, unique by the outbox row's
key) due for a first response within its SLA: the action's ``sla_hours``, else 2 hours
for a B2B customer (``customer_type = 'b2b'`` or an ``account_id``) and 24 hours
otherwise. :func:`breach_due_tasks` (``liucun tasks breaches``, run by the worker) marks a
task breached when its SLA passed without a response: an open task past ``sla_due_at``
becomes ``breached``; a task answered (or closed) after its SLA keeps its status and gets
``breached_at``. ``breached_at`` is the SLA instant itself, so the job's timing changes
nothing. Each task publishes ``service_task_created`` and, when breached,
``service_task_breached`` to the warehouse with stable event ids
(``service_task_created:<key>``), so publishing twice adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from liucun.core import Hint, InvalidInput, as_utc
from liucun.journeys._publish import publish_events
from liucun.state import ServiceTask

TASK_STATUSES: tuple[str, ...] = ("open", "responded", "closed", "breached")
B2B_SLA_HOURS = 2.0
DEFAULT_SLA_HOURS = 24.0
CREATED = "service_task_created"
BREACHED = "service_task_breached"


@dataclass(frozen=True)
class Task:
    """One service task."""

    id: int
    key: str
    user_id: str
    account_id: str | None
    queue: str
    journey: str | None
    node: str | None
    summary: str
    status: str
    sla_due_at: datetime
    created_at: datetime
    responded_at: datetime | None
    breached_at: datetime | None
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def sla_hours_for(payload: dict[str, Any]) -> float:
    """The SLA of a task action: its ``sla_hours``, else 2 h for B2B, else 24 h.

    >>> sla_hours_for({"customer_type": "b2b"}), sla_hours_for({"account_id": "A1"})
    (2.0, 2.0)
    >>> sla_hours_for({}), sla_hours_for({"sla_hours": 4, "customer_type": "b2b"})
    (24.0, 4.0)
    """
    if payload.get("sla_hours") is not None:
        hours = float(payload["sla_hours"])
        if hours <= 0:
            raise InvalidInput(
                f"sla_hours must be above 0, got {hours:g}", hint=Hint(option="sla_hours")
            )
        return hours
    if str(payload.get("customer_type") or "").lower() == "b2b" or payload.get("account_id"):
        return B2B_SLA_HOURS
    return DEFAULT_SLA_HOURS


def open_task(
    s: Session,
    *,
    key: str,
    user_id: str,
    queue: str,
    summary: str,
    sla_hours: float,
    now: datetime,
    account_id: str | None = None,
    journey: str | None = None,
    node: str | None = None,
) -> tuple[ServiceTask, bool]:
    """Open a task under ``key`` in the caller's transaction; ``(task, created)`` — a key
    already used returns its task and False."""
    done = s.scalar(select(ServiceTask).where(ServiceTask.key == key))
    if done is not None:
        return done, False
    task = ServiceTask(
        key=key,
        user_id=user_id,
        account_id=account_id,
        queue=queue,
        journey=journey,
        node=node,
        summary=summary,
        status="open",
        sla_due_at=as_utc(now) + timedelta(hours=sla_hours),
        created_at=as_utc(now),
    )
    s.add(task)
    s.flush()
    return task, True


def list_tasks(
    ws: Any, *, status: str | None = None, queue: str | None = None, user_id: str | None = None
) -> list[Task]:
    """Tasks (filtered), the soonest due first."""
    query = select(ServiceTask).order_by(ServiceTask.sla_due_at, ServiceTask.id)
    if status is not None:
        if status not in TASK_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(TASK_STATUSES)}, got {status!r}",
                hint=Hint(option="status", example="open"),
            )
        query = query.where(ServiceTask.status == status)
    if queue is not None:
        query = query.where(ServiceTask.queue == queue)
    if user_id is not None:
        query = query.where(ServiceTask.user_id == user_id)
    with ws.state.read() as s:
        return [as_task(t) for t in s.scalars(query)]


def get_task(ws: Any, task_id: int) -> Task:
    """The task ``task_id``."""
    with ws.state.read() as s:
        return as_task(_load(s, task_id))


def respond_task(ws: Any, task_id: int) -> Task:
    """Record the first response to task ``task_id`` (now). Responding again changes
    nothing; a closed task cannot be responded to."""
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        task = _load(s, task_id)
        if task.status == "closed":
            raise InvalidInput(
                f"task {task_id} is closed; a closed task takes no response (open a new one)"
            )
        if task.responded_at is None:
            task.responded_at = now
            task.status = "responded"
        return as_task(task)


def close_task(ws: Any, task_id: int) -> Task:
    """Close task ``task_id`` (now); closing an unanswered task also counts as its
    response. Closing again changes nothing."""
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        task = _load(s, task_id)
        if task.status != "closed":
            if task.responded_at is None:
                task.responded_at = now
            task.closed_at = now
            task.status = "closed"
        return as_task(task)


def breach_due_tasks(ws: Any, now: datetime | None = None, *, publish: bool = True) -> list[Task]:
    """Mark the tasks whose SLA passed by ``now`` (default the clock) without a response
    as breached (see the module docstring) and publish their ``service_task_breached``
    events. Returns the tasks breached by this call."""
    now = as_utc(now if now is not None else ws.clock.now())
    with ws.state.write() as s:
        due = s.scalars(
            select(ServiceTask)
            .where(
                ServiceTask.breached_at.is_(None),
                ServiceTask.sla_due_at <= now,
                or_(
                    ServiceTask.responded_at.is_(None),
                    ServiceTask.responded_at > ServiceTask.sla_due_at,
                ),
            )
            .order_by(ServiceTask.sla_due_at, ServiceTask.id)
        ).all()
        for task in due:
            task.breached_at = task.sla_due_at
            if task.status == "open":
                task.status = "breached"
        out = [as_task(t) for t in due]
    if publish and out:
        publish_task_events(ws, out, kinds=(BREACHED,))
    return out


def task_events(tasks: Iterable[Task], kinds: Iterable[str] = (CREATED, BREACHED)) -> list[dict]:
    """The warehouse events of ``tasks`` (created; breached when it was)."""
    wanted = set(kinds)
    out = []
    for t in tasks:
        props = json.dumps(
            {
                "source": "liucun",
                "task_id": t.id,
                "key": t.key,
                "queue": t.queue,
                "journey": t.journey,
                "node": t.node,
                "account_id": t.account_id,
                "sla_due_at": t.sla_due_at.isoformat(),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        if CREATED in wanted:
            out.append(
                {
                    "event_id": f"{CREATED}:{t.key}",
                    "user_id": t.user_id,
                    "event_type": CREATED,
                    "ts": t.created_at,
                    "properties": props,
                }
            )
        if BREACHED in wanted and t.breached_at is not None:
            out.append(
                {
                    "event_id": f"{BREACHED}:{t.key}",
                    "user_id": t.user_id,
                    "event_type": BREACHED,
                    "ts": t.breached_at,
                    "properties": props,
                }
            )
    return out


def publish_task_events(
    ws: Any, tasks: Iterable[Task] | None = None, *, kinds: Iterable[str] = (CREATED, BREACHED)
) -> int:
    """Load the events of ``tasks`` (default: every task) into the warehouse; an event
    already there adds nothing. Returns how many events were handed to ingest."""
    if tasks is None:
        tasks = list_tasks(ws)
    return publish_events(ws, task_events(tasks, kinds), source="journeys service tasks")


def as_task(t: ServiceTask) -> Task:
    """The dataclass view of a task row."""
    return Task(
        id=int(t.id),
        key=t.key,
        user_id=t.user_id,
        account_id=t.account_id,
        queue=t.queue,
        journey=t.journey,
        node=t.node,
        summary=t.summary,
        status=t.status,
        sla_due_at=as_utc(t.sla_due_at),
        created_at=as_utc(t.created_at),
        responded_at=None if t.responded_at is None else as_utc(t.responded_at),
        breached_at=None if t.breached_at is None else as_utc(t.breached_at),
        closed_at=None if t.closed_at is None else as_utc(t.closed_at),
    )


def _load(s: Session, task_id: int) -> ServiceTask:
    task = s.get(ServiceTask, int(task_id))
    if task is None:
        raise InvalidInput(
            f"there is no service task {task_id}; `liucun tasks list` shows the open ones",
            hint=Hint(option="ID"),
        )
    return task
