"""One unit of a worker's work: triggers → enrolment → due enrolments → delivery.

:func:`work_once` is what ``liucun worker`` runs every poll and ``journeys run`` every
simulated step. Workers are stateless: everything they know is in state (enrolments,
cursors, the outbox), so several may run at once (PostgreSQL) and one killed at any point
is replaced by the next run without losing or doubling anything.

Delivery is :func:`liucun.journeys._delivery.deliver_due` (claim the due outbox rows,
run the guards, send), batch after batch; then service tasks past their SLA are marked
breached and the delivery outcomes are published to the warehouse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from liucun.core import as_utc
from liucun.journeys import _engine as eng
from liucun.journeys._delivery import DeliveryRun, deliver_due
from liucun.journeys._journey_events import collect_journey_events
from liucun.journeys._outbox import publish_delivery_events
from liucun.journeys._partner import notify_partners
from liucun.journeys._publish import one_load
from liucun.journeys._tasks import breach_due_tasks
from liucun.journeys._triggers import Position, cursor_name, evaluate, is_due

log = logging.getLogger("liucun.journeys")


@dataclass
class WorkSummary:
    """What one :func:`work_once` did."""

    now: datetime
    evaluated: list[str] = field(default_factory=list)
    entries: int = 0
    enrolled: int = 0
    control: int = 0
    woken: int = 0
    converted: int = 0
    walked: int = 0
    outbox: int = 0
    finished: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    delivered: Any = None
    delivery: str = "not run"
    #: Service tasks found past their SLA (breached) in this round.
    breached: int = 0
    #: Delivery outcomes published to the warehouse in this round.
    published: int = 0
    #: journey_entered / journey_converted events written to the warehouse.
    journey_events: int = 0
    #: Partner webhook rows handed to the outbox, per event type.
    partner: dict[str, int] = field(default_factory=dict)

    def add_steps(self, steps: dict[str, int]) -> None:
        for k, v in steps.items():
            self.steps[k] = self.steps.get(k, 0) + v

    def line(self) -> str:
        """One summary sentence."""
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.steps.items())) or "none"
        return (
            f"{self.now:%Y-%m-%d %H:%M} UTC: {len(self.evaluated)} trigger(s) evaluated, "
            f"{self.entries:,} entries, {self.enrolled:,} enrolled ({self.control:,} control), "
            f"{self.walked:,} enrolments walked (steps: {kinds}), {self.outbox:,} outbox "
            f"rows, {self.converted:,} converted, {self.finished:,} finished; "
            f"delivery: {self.delivery}"
            + (
                "; partner webhooks: "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(self.partner.items()))
                if self.partner
                else ""
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "evaluated": self.evaluated,
            "entries": self.entries,
            "enrolled": self.enrolled,
            "control": self.control,
            "woken": self.woken,
            "converted": self.converted,
            "walked": self.walked,
            "outbox": self.outbox,
            "finished": self.finished,
            "steps": self.steps,
            "delivery": self.delivery,
            "delivered": _plain(self.delivered),
            "breached": self.breached,
            "published": self.published,
            "journey_events": self.journey_events,
            "partner": self.partner,
        }


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str | bool):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    return str(value)


def warehouse_mark(ws: Any) -> str:
    """A cheap fingerprint of what the warehouse holds (events: count and latest
    ``ingested_at``; scores: latest ``scored_at``): triggers on events run when it moves."""
    ev = ws.table("events")
    sc = ws.table("scores")
    n = ev.count().to_pyarrow().as_py()
    last = ev.ingested_at.max().to_pyarrow().as_py()
    scored = sc.scored_at.max().to_pyarrow().as_py()
    return f"{n}|{last}|{scored}"


def work_once(
    ws: Any,
    *,
    worker_id: str = "worker",
    now: datetime | None = None,
    time_every: timedelta = timedelta(hours=1),
    deliver: bool = True,
    state: dict[str, Any] | None = None,
) -> WorkSummary:
    """Do all work due at ``now`` (default: the workspace clock): evaluate the triggers
    that are due (event triggers when the warehouse changed, time triggers every
    ``time_every``), enrol, wake arrived waits, record goal conversions, walk every due
    enrolment, then deliver the due outbox rows.

    ``state`` (a dict the caller keeps between calls) remembers the warehouse fingerprint
    of the previous call so an unchanged warehouse costs one cheap query.
    """
    now = as_utc(now or ws.clock.now())
    out = WorkSummary(now=now)
    memo = state if state is not None else {}
    mark = warehouse_mark(ws)
    changed = memo.get("mark") != mark
    memo["mark"] = mark
    cache = eng.ProfileCache(ws, now, shared=state, keep=time_every if state is not None else None)
    for journey in eng._active(ws):
        name = cursor_name(journey.name)
        position = Position.from_json(eng.read_cursor(ws, name), journey.since)
        if not is_due(journey.spec.trigger, position, now, changed=changed, every=time_every):
            continue
        if position.evaluated_at is not None and now < position.evaluated_at:
            continue
        found = evaluate(ws, journey.spec, position, now)
        result = eng.enrol(
            ws,
            journey.name,
            journey.version,
            journey.spec,
            found.entries,
            now=now,
            position=found.position,
            profile_cache=cache,
        )
        out.evaluated.append(journey.name)
        out.entries += result.entries
        out.enrolled += result.enrolled
        out.control += result.control
    if changed or memo.get("waits_at") is None or now - memo["waits_at"] >= time_every:
        out.woken = eng.check_waits(ws, now, cache=cache)
        out.converted = eng.check_goals(ws, now)
        memo["waits_at"] = now
    # the round's journey, task, tag and delivery events: one warehouse load
    with one_load(ws):
        walked = eng.advance_due(ws, worker_id=worker_id, now=now, cache=cache)
        out.walked, out.outbox, out.finished = walked.walked, walked.outbox, walked.finished
        out.add_steps(walked.steps)
        journey_events = collect_journey_events(ws)
        if deliver:
            out.delivered = deliver_all_due(ws, worker_id=worker_id, now=now)
            out.delivery = "done"
            out.breached = len(breach_due_tasks(ws, now))
            out.published = publish_delivery_events(ws)
    journey_events.commit(ws, now)  # loaded: the cursors may move
    out.journey_events = journey_events.total
    # partners hear of what this round (or anyone) put in the warehouse and scores
    out.partner = notify_partners(ws, now)
    if deliver and out.partner:
        out.delivered.add(deliver_all_due(ws, worker_id=worker_id, now=now))
    return out


def deliver_all_due(ws: Any, *, worker_id: str, now: datetime) -> DeliveryRun:
    """Deliver batch after batch until no outbox row is due at ``now`` (the counts of
    every batch summed). A batch whose every row came back (held, deferred) ends it."""
    total = DeliveryRun()
    for _ in range(MAX_BATCHES):
        run = deliver_due(ws, worker_id=worker_id, now=now)
        total.add(run)
        if run.taken == 0 or run.taken == run.held + run.deferred:
            break
    return total


#: At most this many delivery batches per round (the rest waits for the next round).
MAX_BATCHES = 1000


def utc_now(ws: Any) -> datetime:
    return ws.clock.now().astimezone(UTC)
