"""Partner events: every event a webhook subscription wants, into the outbox
(docs/journeys.md, "Partner webhooks").

Each worker round (:func:`liucun.journeys._worker.work_once`):

1. :func:`liucun.journeys._journey_events.collect_journey_events` (see there) writes
   ``journey_entered`` / ``journey_converted`` into the warehouse;
2. :func:`notify_partners` hands, for every active subscription, the events it wants
   that appeared since its cursor to the outbox, on the ``webhook`` channel with the
   provider ``subscription:<id>``: ``tier_changed`` (written by the loyalty tier review),
   ``journey_entered`` and ``journey_converted`` are read from the warehouse ``events``
   by ``ingested_at``; ``stage_changed`` and ``risk_crossed`` from the ``scores`` table
   by ``scored_at`` — a customer's score row whose stage differs from their previous
   row's (a first score is no change), or whose churn risk is at or above the
   subscription's threshold where the previous one was below or absent (the
   ``risk_crossed`` journey trigger's rule). Each subscription reads what is after its
   cursor — from :data:`OVERLAP` before it when rows arrived late below it (the count of
   rows up to the cursor moved) — and never what came before it was created;
   ``points_changed`` and ``coupon_issued`` come from the loyalty tables in state
   (:mod:`liucun.journeys._partner_state`).

The outbox key is ``whsub:<subscription id>:<event type>:<subject>:<occurrence>``
(hashed when long): the Standard Webhooks ``webhook-id``, so each event reaches each
subscription once however often it is read. Customers suppressed on ``webhook`` or on
every channel (erased, unsubscribed, …) get no event; the delivery guards check again
when the row is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.journeys._consent import ANY_CHANNEL, suppressions_for
from liucun.journeys._journey_events import JOURNEY_EVENT_TYPES
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.journeys._partner_state import STATE_EVENTS, state_events
from liucun.journeys._subscriptions import (
    DEFAULT_RISK_THRESHOLD,
    PROVIDER_PREFIX,
)
from liucun.state import WebhookSubscription

#: Partner events read from the warehouse ``events`` table.
WAREHOUSE_EVENTS: tuple[str, ...] = ("tier_changed", *JOURNEY_EVENT_TYPES)
#: Partner events read from the ``scores`` table.
SCORE_EVENTS: tuple[str, ...] = ("stage_changed", "risk_crossed")
#: How far before a subscription's cursor the warehouse is read again (late loads).
OVERLAP = timedelta(minutes=10)
_KEY_MAX = 300
_CHUNK = 900


# -- 2. partner events into the outbox -------------------------------------------------


@dataclass(frozen=True)
class PartnerEvent:
    """One event for partners: its type, the customer, when it happened, its ``data``
    and the occurrence that makes its key (with the type and the customer)."""

    type: str
    user_id: str
    occurred_at: datetime
    occurrence: str
    data: dict[str, Any]
    seen_at: datetime
    risk: float | None = None
    previous_risk: float | None = None


@dataclass
class _Source:
    """How far one subscription has read one source (warehouse events or scores): the
    instant ``at`` read up to and how many rows had an instant at or before it then
    (``below``), and the window this round reads from (``since``; ``strict``: after
    it). When no row arrived late below ``at``, the round reads only what is after it;
    otherwise from :data:`OVERLAP` before it."""

    at: datetime | None
    below: int | None
    since: datetime
    strict: bool = False

    def takes(self, seen: datetime) -> bool:
        return seen > self.since if self.strict else seen >= self.since


@dataclass
class _Plan:
    row: WebhookSubscription
    types: frozenset[str]
    created: datetime
    cursor: dict[str, Any]
    events: _Source | None = None
    scores: _Source | None = None

    @property
    def event_types(self) -> list[str]:
        return sorted(self.types & set(WAREHOUSE_EVENTS))

    def source(self, name: str, upto: Any) -> _Source:
        """The window of source ``name`` (``events`` or ``scores``); ``upto(t)`` counts
        the source's rows at or before ``t``."""
        v = self.cursor.get(f"{name}_at")
        at = None if v is None else as_utc(datetime.fromisoformat(v))
        below = self.cursor.get(f"{name}_below")
        if at is None:
            return _Source(None, None, self.created)
        if below is not None and upto(at) == int(below):
            return _Source(at, int(below), max(at, self.created), strict=at >= self.created)
        return _Source(at, None, max(self.created, at - OVERLAP))


def _plans(ws: Any) -> list[_Plan]:
    with ws.state.read() as s:
        rows = list(
            s.scalars(
                select(WebhookSubscription)
                .where(WebhookSubscription.active.is_(True))
                .order_by(WebhookSubscription.id)
            )
        )
        for r in rows:
            s.expunge(r)
    out = []
    for r in rows:
        try:
            cursor = json.loads(r.cursor) if r.cursor else {}
        except ValueError:
            cursor = {}
        out.append(
            _Plan(
                row=r,
                types=frozenset(json.loads(r.event_types or "[]")),
                created=as_utc(r.created_at),
                cursor=cursor if isinstance(cursor, dict) else {},
            )
        )
    return out


def _memo(count: Any) -> Any:
    """``t → the row count of the expression count(t)``, each ``t`` counted once."""
    seen: dict[datetime, int] = {}

    def upto(t: datetime) -> int:
        if t not in seen:
            seen[t] = int(count(t).to_pyarrow().as_py())
        return seen[t]

    return upto


def _events_upto(ws: Any, types: list[str]) -> Any:
    ev = ws.table("events")
    mine = ev.filter(ev.event_type.isin(types))

    return _memo(lambda t: mine.filter(mine.ingested_at <= t).count())


def _scores_upto(ws: Any) -> Any:
    sc = ws.table("scores")

    return _memo(lambda t: sc.filter(sc.scored_at <= t).count())


def _warehouse_events(ws: Any, types: set[str], since: datetime) -> list[PartnerEvent]:
    ev = ws.table("events")
    rows = (
        ev.filter(ev.event_type.isin(sorted(types)), ev.ingested_at >= since)
        .select("event_id", "user_id", "event_type", "ts", "properties", "ingested_at")
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        if r["user_id"] is None:
            continue
        try:
            props = json.loads(r["properties"]) if r["properties"] else {}
        except ValueError:
            props = {}
        props = props if isinstance(props, dict) else {}
        out.append(
            PartnerEvent(
                type=r["event_type"],
                user_id=str(r["user_id"]),
                occurred_at=as_utc(r["ts"]),
                occurrence=str(r["event_id"]),
                data=_event_data(r["event_type"], str(r["event_id"]), props),
                seen_at=as_utc(r["ingested_at"]),
            )
        )
    return out


def _event_data(kind: str, event_id: str, props: dict[str, Any]) -> dict[str, Any]:
    if kind == "tier_changed":
        scope = event_id.split(":", 1)[0]
        program = scope[5:-1] if scope.startswith("tier[") else "default"
        return {
            "from": props.get("from"),
            "to": props.get("to"),
            "direction": props.get("direction"),
            "reason": props.get("reason"),
            "program": program,
        }
    return {k: v for k, v in props.items() if k != "source"}


def _score_changes(ws: Any, since: datetime) -> tuple[list[PartnerEvent], datetime | None]:
    """Each score row written (``scored_at``) since ``since`` with the row before it of
    the same customer: a stage change is a :class:`PartnerEvent` of type
    ``stage_changed``; every row is returned as a ``risk_crossed`` candidate (its risk
    and the previous one; each subscription applies its own threshold). Also the
    latest ``scored_at`` read."""
    import ibis

    sc = ws.table("scores")
    fresh = sc.filter(sc.scored_at >= since)
    top = fresh.scored_at.max().to_pyarrow().as_py()
    if top is None:
        return [], None
    who = fresh.select("user_id").distinct()
    mine = sc.semi_join(who, "user_id")
    w = ibis.window(group_by="user_id", order_by=[mine.as_of, mine.scored_at])
    mine = mine.mutate(
        _prev_stage=mine.stage.lag().over(w), _prev_risk=mine.churn_risk.lag().over(w)
    )
    rows = (
        mine.filter(mine.scored_at >= since)
        .select(
            "user_id",
            "as_of",
            "scored_at",
            "model",
            "model_version",
            "stage",
            "churn_risk",
            "_prev_stage",
            "_prev_risk",
        )
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        as_of = as_utc(r["as_of"])
        base = {
            "as_of": as_of.isoformat(),
            "model": r["model"],
            "model_version": r["model_version"],
        }
        if (
            r["stage"] is not None
            and r["_prev_stage"] is not None
            and r["stage"] != r["_prev_stage"]
        ):
            out.append(
                PartnerEvent(
                    type="stage_changed",
                    user_id=str(r["user_id"]),
                    occurred_at=as_of,
                    occurrence=f"{as_of.isoformat()}:{r['stage']}",
                    data={"from": r["_prev_stage"], "to": r["stage"], **base},
                    seen_at=as_utc(r["scored_at"]),
                )
            )
        if r["churn_risk"] is not None:
            out.append(
                PartnerEvent(
                    type="risk_crossed",
                    user_id=str(r["user_id"]),
                    occurred_at=as_of,
                    occurrence=as_of.isoformat(),
                    data={"from": r["_prev_risk"], "to": r["churn_risk"], **base},
                    seen_at=as_utc(r["scored_at"]),
                    risk=float(r["churn_risk"]),
                    previous_risk=None if r["_prev_risk"] is None else float(r["_prev_risk"]),
                )
            )
    return out, as_utc(top)


def _wants(plan: _Plan, e: PartnerEvent) -> PartnerEvent | None:
    """``e`` as subscription ``plan`` gets it, or None (not its type, outside its window,
    a risk that does not cross its threshold)."""
    if e.type not in plan.types:
        return None
    window = plan.events if e.type in WAREHOUSE_EVENTS else plan.scores
    if window is None or not window.takes(e.seen_at):
        return None
    if e.type != "risk_crossed":
        return e
    threshold = plan.row.risk_threshold or DEFAULT_RISK_THRESHOLD
    if e.risk is None or e.risk < threshold:
        return None
    if e.previous_risk is not None and e.previous_risk >= threshold:
        return None
    return PartnerEvent(
        e.type,
        e.user_id,
        e.occurred_at,
        e.occurrence,
        {**e.data, "threshold": threshold},
        e.seen_at,
    )


def outbox_key(subscription_id: int, kind: str, user_id: str, occurrence: str) -> str:
    """The stable key (``webhook-id``) of event ``kind`` of ``user_id`` at
    ``occurrence`` for one subscription; hashed past 300 characters or when it holds
    anything but printable ASCII (it travels in an HTTP header).

    >>> outbox_key(3, "stage_changed", "u1", "2026-03-01T00:00:00+00:00:decline")
    'whsub:3:stage_changed:u1:2026-03-01T00:00:00+00:00:decline'
    >>> key = outbox_key(3, "tier_changed", "u1", "tier:u1:20260301T000000000000Z:金卡")
    >>> key.startswith("whsub:3:tier_changed:"), len(key)
    (True, 85)
    """
    key = f"whsub:{subscription_id}:{kind}:{user_id}:{occurrence}"
    if len(key) <= _KEY_MAX and key.isascii() and key.isprintable() and " " not in key:
        return key
    digest = hashlib.sha256(f"{user_id}\x1f{occurrence}".encode()).hexdigest()
    return f"whsub:{subscription_id}:{kind}:{digest}"


def _blocked(s: Session, users: set[str]) -> set[str]:
    """Customers suppressed on ``webhook`` or on every channel (any kind)."""
    found = suppressions_for(s, users) if users else {}
    return {u for u, rows in found.items() if any(ch in ("webhook", ANY_CHANNEL) for ch, _ in rows)}


def notify_partners(ws: Any, now: datetime | None = None) -> dict[str, int]:
    """Hand each active subscription's new events to the outbox (see the module
    docstring); returns how many rows were added per event type."""
    now = as_utc(now or ws.clock.now())
    plans = _plans(ws)
    if not plans:
        return {}
    found: list[PartnerEvent] = []
    tops: dict[str, datetime | None] = {"events": None, "scores": None}
    counters: dict[str, Any] = {}
    readers = [p for p in plans if p.event_types]
    for p in readers:
        counters[f"events:{p.row.id}"] = _events_upto(ws, p.event_types)
        p.events = p.source("events", counters[f"events:{p.row.id}"])
    if readers:
        types = {t for p in readers for t in p.event_types}
        got = _warehouse_events(ws, types, min(p.events.since for p in readers if p.events))
        found.extend(got)
        tops["events"] = max((e.seen_at for e in got), default=None)
    scorers = [p for p in plans if p.types & set(SCORE_EVENTS)]
    if scorers:
        counters["scores"] = _scores_upto(ws)
        for p in scorers:
            p.scores = p.source("scores", counters["scores"])
        got, tops["scores"] = _score_changes(ws, min(p.scores.since for p in scorers if p.scores))
        found.extend(got)
    marks: dict[int, dict[str, Any]] = {}
    for p in plans:
        mark: dict[str, Any] = {}
        for name, window in (("events", p.events), ("scores", p.scores)):
            if window is None:
                continue
            at = _later(window.at, tops[name])
            if at is None:
                continue
            upto = counters[f"events:{p.row.id}"] if name == "events" else counters["scores"]
            mark[f"{name}_at"] = at.isoformat()
            mark[f"{name}_below"] = upto(at)
        marks[p.row.id] = mark
    added: dict[str, int] = {}
    with ws.state.read() as s:
        blocked = _blocked(s, {e.user_id for e in found})
    with ws.state.write() as s:
        for plan in plans:
            query = select(WebhookSubscription).where(WebhookSubscription.id == plan.row.id)
            if s.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()  # one worker fans a subscription out at a time
            row = s.scalar(query)
            if row is None or not row.active:
                continue
            items = []
            for e in found:
                mine = _wants(plan, e)
                if mine is None or e.user_id in blocked:
                    continue
                items.append(_outgoing(row, mine))
            if plan.types & set(STATE_EVENTS):
                more, ids = state_events(s, plan.types, plan.created, plan.cursor)
                marks[plan.row.id].update(ids)
                quiet = _blocked(s, {m[1] for m in more})
                for kind, user, at, occurrence, data in more:
                    if user not in quiet:
                        items.append(
                            _outgoing(row, PartnerEvent(kind, user, at, occurrence, data, at))
                        )
            for kind in sorted({i.payload["partner_event"]["type"] for i in items}):
                mine_items = [i for i in items if i.payload["partner_event"]["type"] == kind]
                added[kind] = added.get(kind, 0) + enqueue(s, mine_items, now=now)
            row.cursor = json.dumps(marks[plan.row.id], sort_keys=True)
    return {k: v for k, v in added.items() if v}


def _outgoing(row: WebhookSubscription, e: PartnerEvent) -> Outgoing:
    """The outbox row that sends ``e`` to subscription ``row``."""
    return Outgoing(
        key=outbox_key(row.id, e.type, e.user_id, e.occurrence),
        user_id=e.user_id,
        channel="webhook",
        provider=f"{PROVIDER_PREFIX}{row.id}",
        payload={
            "subscription": row.name,
            "partner_event": {
                "type": e.type,
                "occurred_at": e.occurred_at.isoformat(),
                "data": {"user_id": e.user_id, **e.data},
            },
            "purpose": "service",
        },
    )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
