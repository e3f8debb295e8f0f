"""Internal channels: coupon, points, task, tag, tier — performed inside liucun with the
loyalty program's own functions, each idempotent under the outbox row's key.

The payload (written by the engine, see :class:`liucun.journeys._outbox.Outgoing`):

- ``coupon``: ``coupon_id``, ``program`` → :func:`liucun.loyalty.issue_coupon`. A refusal
  is final (``refused=True``, ``detail`` the reason code): ``coupon_cap`` (the program's
  per-customer cap or count, :class:`~liucun.loyalty.CouponLimitReached`),
  ``coupon_budget`` (:class:`~liucun.loyalty.BudgetExhausted`), ``coupon_not_eligible``.
- ``points``: ``points``, ``valid_days`` (the points expire at the end of that day,
  counted from when the row was queued, so a retry books the same award), ``program``
  → :func:`liucun.loyalty.award` with reason ``journey <name>``.
- ``tier``: ``tier``, ``days``, ``program`` → :func:`liucun.loyalty.boost_tier` until
  ``days`` after the row was queued.
- ``tag``: ``tag``, ``value`` → the ``customer_tags`` row (the latest value wins) and a
  ``tag_set`` event.
- ``task``: ``queue``, ``summary``, ``sla_hours`` → a ``service_tasks`` row (see
  :mod:`._tasks`) and a ``service_task_created`` event.

Events go to the warehouse at once unless ``publish=False``; a worker that runs many
actions passes False and calls :func:`publish_action_events` once per batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from liucun.core import Hint, InvalidInput, as_utc
from liucun.journeys._guards import COUPON_CAP, payload_of
from liucun.journeys._publish import publish_events
from liucun.journeys._tasks import as_task, open_task, publish_task_events, sla_hours_for
from liucun.state import CustomerTag, OutboxMessage

#: Outbox channels performed inside liucun (idempotent by the row's key).
INTERNAL_CHANNELS: tuple[str, ...] = ("coupon", "points", "task", "tag", "tier")
TAG_SET = "tag_set"


@dataclass(frozen=True)
class ActionResult:
    """What an internal action did: ``ok``; ``refused`` with the reason (a coupon limit,
    a budget) is final and not retried; ``reference`` names what was created.
    ``detail`` is the reason code of a refusal (``coupon_cap``, ``coupon_budget``,
    ``coupon_not_eligible``); ``message`` the sentence behind it."""

    ok: bool
    reference: str | None = None
    detail: str | None = None
    refused: bool = False
    message: str | None = None


def execute_internal(ws: Any, row: OutboxMessage, *, publish: bool = True) -> ActionResult:
    """Perform the internal action of outbox ``row`` (idempotent under ``row.key``)."""
    p = payload_of(row)
    handler = _HANDLERS.get(row.channel)
    if handler is None:
        raise InvalidInput(
            f"outbox row {row.key!r} has channel {row.channel!r}, which is not an internal "
            f"channel ({', '.join(INTERNAL_CHANNELS)})"
        )
    return handler(ws, row, p, publish)


def _need(p: dict[str, Any], name: str, row: OutboxMessage) -> Any:
    if p.get(name) in (None, ""):
        raise InvalidInput(
            f"outbox row {row.key!r} ({row.channel}) has no {name!r} in its payload; the "
            f"journey's {row.channel} node must give it",
            hint=Hint(option=name),
        )
    return p[name]


def _program_name(p: dict[str, Any]) -> str:
    from liucun.loyalty import DEFAULT_PROGRAM

    return str(p.get("program") or DEFAULT_PROGRAM)


def _anchor(row: OutboxMessage, ws: Any) -> datetime:
    """The instant durations of an action count from: when the row was queued (stable
    across retries, so a replay books the same thing)."""
    return as_utc(row.created_at) if row.created_at is not None else as_utc(ws.clock.now())


def _coupon(ws: Any, row: OutboxMessage, p: dict[str, Any], publish: bool) -> ActionResult:
    from liucun.loyalty import (
        BudgetExhausted,
        CouponLimitReached,
        CouponNotEligible,
        active_program,
        issue_coupon,
    )

    coupon_id = str(_need(p, "coupon_id", row))
    prog = active_program(ws, _program_name(p))
    try:
        issued = issue_coupon(ws, coupon_id, row.user_id, key=row.key, program=prog)
    except CouponLimitReached as exc:
        return ActionResult(False, detail=COUPON_CAP, refused=True, message=str(exc))
    except BudgetExhausted as exc:
        return ActionResult(False, detail="coupon_budget", refused=True, message=str(exc))
    except CouponNotEligible as exc:
        return ActionResult(False, detail="coupon_not_eligible", refused=True, message=str(exc))
    return ActionResult(True, reference=issued.code)


def _points(ws: Any, row: OutboxMessage, p: dict[str, Any], publish: bool) -> ActionResult:
    from liucun.loyalty import award, valid_until

    points = int(_need(p, "points", row))
    expires = None
    if p.get("valid_days") is not None:
        expires = valid_until(
            _anchor(row, ws),
            days=int(p["valid_days"]),
            round_to="day",
            timezone=str(p.get("timezone") or ws.settings.reporting_timezone),
        )
    posting = award(
        ws,
        row.user_id,
        points,
        key=row.key,
        reason=f"journey {row.journey}",
        program=_program_name(p),
        expires_at=expires,
    )
    return ActionResult(True, reference=str(getattr(posting, "key", row.key)))


def _tier(ws: Any, row: OutboxMessage, p: dict[str, Any], publish: bool) -> ActionResult:
    from liucun.loyalty import boost_tier

    tier = str(_need(p, "tier", row))
    days = float(_need(p, "days", row))
    until = _anchor(row, ws) + timedelta(days=days)
    boost = boost_tier(
        ws, row.user_id, tier=tier, until=until, key=row.key, program=_program_name(p)
    )
    return ActionResult(True, reference=f"{boost.tier} until {as_utc(until).isoformat()}")


def _tag(ws: Any, row: OutboxMessage, p: dict[str, Any], publish: bool) -> ActionResult:
    tag = str(_need(p, "tag", row))
    value = p.get("value")
    text = None if value is None else (value if isinstance(value, str) else json.dumps(value))
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        found = s.scalar(
            select(CustomerTag).where(CustomerTag.user_id == row.user_id, CustomerTag.tag == tag)
        )
        if found is None:
            s.add(
                CustomerTag(
                    user_id=row.user_id,
                    tag=tag,
                    value=text,
                    source=f"journey:{row.journey}",
                    set_at=now,
                )
            )
        elif found.value != text or found.source != f"journey:{row.journey}":
            found.value, found.source, found.set_at = text, f"journey:{row.journey}", now
    if publish:
        publish_events(ws, [tag_event(row, tag, text, now)], source="journeys tags")
    return ActionResult(True, reference=f"{tag}={text}" if text is not None else tag)


def tag_event(row: OutboxMessage, tag: str, value: str | None, at: datetime) -> dict:
    """The ``tag_set`` event of a tag action (id ``tag_set:<row key>``)."""
    return {
        "event_id": f"{TAG_SET}:{row.key}",
        "user_id": row.user_id,
        "event_type": TAG_SET,
        "ts": at,
        "properties": json.dumps(
            {"source": "liucun", "tag": tag, "value": value, "journey": row.journey},
            ensure_ascii=False,
            sort_keys=True,
        ),
    }


def _task(ws: Any, row: OutboxMessage, p: dict[str, Any], publish: bool) -> ActionResult:
    hours = sla_hours_for(p)
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        task, _ = open_task(
            s,
            key=row.key,
            user_id=row.user_id,
            queue=str(p.get("queue") or "default"),
            summary=str(p.get("summary") or f"journey {row.journey}: contact the customer"),
            sla_hours=hours,
            now=now,
            account_id=p.get("account_id"),
            journey=row.journey,
            node=row.node,
        )
        view = as_task(task)
    if publish:
        publish_task_events(ws, [view], kinds=("service_task_created",))
    return ActionResult(True, reference=f"task {view.id}")


def publish_action_events(ws: Any, rows: list[OutboxMessage]) -> int:
    """Publish the events of many executed tag and task rows at once (what
    ``execute_internal(..., publish=False)`` left out)."""
    from liucun.journeys._tasks import list_tasks, task_events

    events: list[dict] = []
    keys = {r.key for r in rows if r.channel == "task"}
    if keys:
        tasks = [t for t in list_tasks(ws) if t.key in keys]
        events += task_events(tasks, ("service_task_created",))
    tags = [r for r in rows if r.channel == "tag"]
    if tags:
        with ws.state.read() as s:
            found = {
                (t.user_id, t.tag): t
                for t in s.scalars(
                    select(CustomerTag).where(CustomerTag.user_id.in_({r.user_id for r in tags}))
                )
            }
        for r in tags:
            tag = str(payload_of(r).get("tag"))
            t = found.get((r.user_id, tag))
            if t is not None:
                events.append(tag_event(r, tag, t.value, as_utc(t.set_at)))
    return publish_events(ws, events, source="journeys actions")


_HANDLERS = {
    "coupon": _coupon,
    "points": _points,
    "tier": _tier,
    "tag": _tag,
    "task": _task,
}
