"""Trigger evaluation: which customers enter a journey now, set-based over the warehouse.

Each trigger type is one Ibis query over ``ws.events()`` / ``ws.customers()`` /
``ws.table("scores")`` (or, for expiring points, one SQL query over the loyalty lots in
state) that returns **entries**: ``user_id, key, at, context`` — the customer, the
trigger's own key (an order id, a session, a date; the engine turns it into the
enrolment's ``entry_key`` by the journey's re-entry rule), when the entry happens (UTC)
and a JSON context (the event's id, type, properties …).

What each evaluation reads is bounded by the journey's cursor (``journey_cursors``,
:class:`Position`):

- **event triggers** (``event``, ``service_failure``, the loyalty events) read the
  events that happened after the previous evaluation's ``now`` or were ingested
  (``ingested_at``) after its high-water mark ``hw`` (late arrivals), and only
  events that happened at or after ``since`` (when the journey started triggering):
  activating a journey does not enrol the whole history. ``risk_crossed`` reads the
  scores written (``scored_at``) at or after its high-water mark. Re-reading rows is
  harmless: entries are keyed, and an enrolment is unique per (journey,
  customer, entry key).
- **time triggers** (``inactivity``, ``abandoned_cart``, ``stage_entered``,
  ``segment_entry``/``exit``, ``replenishment_due``, ``points_expiring``) give the
  entries whose ``at`` falls in ``(evaluated_at, now]``; the calendar ones
  (``date_property``, ``holiday``, ``schedule``) look :data:`LOOKAHEAD` ahead, so an
  entry at 10:00 local is enrolled before it and walked at its own time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from liucun.journeys import _spec as sp
from liucun.journeys._local_time import (
    at_local,
    customer_zone,
    next_yearly,
    parse_hhmm,
)
from liucun.loyalty._idle import NOT_ACTIVITY
from liucun.metrics import property_number, property_text
from liucun.segments import lifecycle_stages, parse_filter

#: How far ahead the calendar triggers enrol (the walk starts at each entry's ``at``).
LOOKAHEAD = timedelta(days=1)
#: Trigger types read by what was ingested since the last evaluation.
EVENT_DRIVEN = ("event", "service_failure", "loyalty", "risk_crossed")
#: Trigger types whose entries come due with the passing of time.
TIME_DRIVEN = (
    "inactivity",
    "abandoned_cart",
    "stage_entered",
    "segment_entry",
    "segment_exit",
    "replenishment_due",
    "date_property",
    "holiday",
    "schedule",
)
CALENDAR = ("date_property", "holiday", "schedule")

ENTRY_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("key", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("context", pa.string()),
    ]
)


@dataclass(frozen=True)
class Position:
    """A trigger's cursor (stored as JSON in ``journey_cursors.position``).

    ``since``: the first instant the journey triggers on; ``hw``: the high-water
    ``ingested_at`` (or ``scored_at``) read; ``evaluated_at``: the ``now`` of the last
    evaluation (time triggers); ``horizon``: how far ahead calendar entries were made.
    """

    since: datetime
    hw: datetime | None = None
    evaluated_at: datetime | None = None
    horizon: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.astimezone(UTC).isoformat()

        return json.dumps(
            {
                "since": iso(self.since),
                "hw": iso(self.hw),
                "evaluated_at": iso(self.evaluated_at),
                "horizon": iso(self.horizon),
                **({"extra": self.extra} if self.extra else {}),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None, since: datetime) -> Position:
        if not text:
            return cls(since=since)
        data = json.loads(text)

        def when(name: str) -> datetime | None:
            v = data.get(name)
            return None if v is None else datetime.fromisoformat(v).astimezone(UTC)

        return cls(
            since=when("since") or since,
            hw=when("hw"),
            evaluated_at=when("evaluated_at"),
            horizon=when("horizon"),
            extra=data.get("extra") or {},
        )


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found: its entries (:data:`ENTRY_SCHEMA`) and the cursor to
    store when they are enrolled."""

    entries: pa.Table
    position: Position


def cursor_name(journey: str) -> str:
    """The ``journey_cursors.name`` of a journey's trigger."""
    return f"journey:{journey}:trigger"


def is_due(
    trigger: Any, position: Position, now: datetime, *, changed: bool, every: timedelta
) -> bool:
    """Whether ``trigger`` needs evaluating at ``now``: event triggers when the warehouse
    changed since the last evaluation (or never ran), time triggers when ``every`` has
    passed since the last evaluation (abandoned carts at every tick)."""
    if position.evaluated_at is None:
        return True
    kind = trigger.type
    if kind == "loyalty" and trigger.event == "points_expiring":
        return now - position.evaluated_at >= every
    if kind in EVENT_DRIVEN:
        return changed
    if kind == "abandoned_cart":
        return now > position.evaluated_at
    return now - position.evaluated_at >= every


def evaluate(ws: Any, spec: sp.JourneySpec, position: Position, now: datetime) -> Evaluation:
    """The entries of ``spec``'s trigger at ``now`` since ``position``, and the new
    position. One set-based query (or a few) whatever the number of customers."""
    trigger = spec.trigger
    fn = _EVALUATORS[trigger.type]
    table, pos = fn(ws, trigger, position, now)
    return Evaluation(table, replace(pos, evaluated_at=now))


# -- helpers ----------------------------------------------------------------------------


def _empty() -> pa.Table:
    return ENTRY_SCHEMA.empty_table()


def _window(position: Position, now: datetime) -> tuple[datetime, datetime]:
    """``(lo, hi]`` of a time trigger: from the last evaluation (else ``since``) to now."""
    lo = position.evaluated_at or position.since
    return lo, now


def _ctx_expr(**parts: ir.Value) -> ir.StringValue:
    """A JSON object text built from string / number expressions (keys sorted)."""
    pieces: list[ir.StringValue] = []
    for i, (name, value) in enumerate(sorted(parts.items())):
        sep = "{" if i == 0 else ","
        if value.type().is_string():
            text = value.replace("\\", "\\\\").replace('"', '\\"')
            body = ibis.literal('"').concat(text, ibis.literal('"'))
        elif value.type().is_timestamp():
            body = ibis.literal('"').concat(value.cast("string"), ibis.literal('"'))
        else:
            body = value.cast("string")
        pieces.append(ibis.literal(f'{sep}"{name}":').concat(body.fill_null("null")))
    if not pieces:
        return ibis.literal("{}")
    out = pieces[0]
    for p in pieces[1:]:
        out = out.concat(p)
    return out.concat(ibis.literal("}"))


def _to_entries(expr: ir.Table) -> pa.Table:
    """Run ``expr`` (columns user_id, key, at, context) into :data:`ENTRY_SCHEMA`."""
    t = expr.select(
        user_id=expr.user_id.cast("string"),
        key=expr.key.cast("string"),
        at=expr.at.cast("timestamp('UTC')") if "at" in expr.columns else expr.at,
        context=expr.context.cast("string"),
    )
    table = t.to_pyarrow()
    return pa.table(
        {
            "user_id": table.column("user_id"),
            "key": table.column("key"),
            "at": table.column("at").cast(pa.timestamp("us", tz="UTC")),
            "context": table.column("context"),
        },
        schema=ENTRY_SCHEMA,
    )


def _rows(rows: Sequence[dict[str, Any]]) -> pa.Table:
    if not rows:
        return _empty()
    return pa.table(
        {
            "user_id": [r["user_id"] for r in rows],
            "key": [r["key"] for r in rows],
            "at": pa.array([r["at"] for r in rows], pa.timestamp("us", tz="UTC")),
            "context": [json.dumps(r["context"], sort_keys=True, default=str) for r in rows],
        },
        schema=ENTRY_SCHEMA,
    )


def _new_events(ws: Any, position: Position, now: datetime) -> tuple[ir.Table, datetime | None]:
    """Events that happened in [since, now] and are new to this trigger — after the
    previous evaluation's now, or ingested after its high-water mark (a late arrival) —
    and the new high-water mark (the latest ``ingested_at`` there is)."""
    from liucun.warehouse import resolved_events

    raw = ws.table("events")
    hw_new = raw.ingested_at.max().to_pyarrow().as_py()
    if hw_new is not None:
        hw_new = hw_new.astimezone(UTC) if hw_new.tzinfo else hw_new.replace(tzinfo=UTC)
    sel = raw.filter(raw.ts >= position.since, raw.ts <= now)
    fresh = []
    # no high-water mark: the warehouse held no event at the last evaluation, so every
    # event there is now is new (one loaded just after it, with an earlier ts, too)
    if position.hw is not None:
        fresh.append(sel.ingested_at > position.hw)
        if position.evaluated_at is not None:
            fresh.append(sel.ts > position.evaluated_at)
    if fresh:
        cond = fresh[0]
        for c in fresh[1:]:
            cond = cond | c
        sel = sel.filter(cond)
    # the new rows only are resolved to their canonical customers (as ws.events() does
    # for all of them): a tick reads what arrived, not the whole history
    ev = resolved_events(sel, ws.table("identities"))
    return ev.filter(ev.user_id.notnull()), hw_new or position.hw


def _event_context(ev: ir.Table) -> ir.StringValue:
    return _ctx_expr(
        event_id=ev.event_id,
        event_type=ev.event_type,
        order_id=ev.order_id,
        revenue=ev.revenue,
        ts=ev.ts,
        properties_json=ev.properties,
    )


_NUMBER_AFTER = r"\s*(==|=|!=|<=|>=|<|>|between)\s*-?[0-9.]"


def event_where(ev: ir.Table, text: str) -> tuple[ir.BooleanValue, ir.Table]:
    """``text`` (the filter language) over event columns and the flat keys of
    ``properties``: a field that is not a column is read from ``properties`` (as a
    number where the filter compares it with one, else as text). Returns the condition
    and the table it applies to (``ev`` with those property columns added)."""
    import re

    from liucun.segments._filter import _IDENT, _KEYWORDS

    names = {m.group(0) for m in _IDENT.finditer(_strip_strings(text))}
    extra = {}
    for name in sorted(names - set(ev.columns) - set(_KEYWORDS)):
        if name.lower() in _KEYWORDS:
            continue
        numeric = re.search(rf"\b{re.escape(name)}\b{_NUMBER_AFTER}", text) is not None
        props = ev.properties.fill_null("")
        extra[name] = property_number(props, name) if numeric else property_text(props, name)
    t = ev.mutate(**extra) if extra else ev
    return parse_filter(text, t), t


def _strip_strings(text: str) -> str:
    import re

    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", " ", text)


# -- event-driven -------------------------------------------------------------------------


def _event(
    ws: Any, trig: sp.EventTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    sel, hw = _new_events(ws, pos, now)
    sel = sel.filter(sel.event_type == trig.event)
    if trig.where:
        cond, sel = event_where(sel, trig.where)
        sel = sel.filter(cond)
    if trig.key:
        key = (
            sel[trig.key].cast("string")
            if trig.key in sel.columns
            else property_text(sel.properties.fill_null(""), trig.key)
        )
        key = key.fill_null(sel.event_id)
    else:
        key = sel.event_id
    out = sel.select(user_id=sel.user_id, key=key, at=sel.ts, context=_event_context(sel))
    return _to_entries(out), replace(pos, hw=hw)


def _service_failure(
    ws: Any, trig: sp.ServiceFailureTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    sel, hw = _new_events(ws, pos, now)
    props = sel.properties.fill_null("")
    if trig.kind == "late_delivery":
        late = property_number(props, "late_days")
        sel = sel.mutate(_late=late).filter(
            (sel.event_type == "delivery") & (late >= trig.min_late_days)
        )
        measure = sel._late
    else:
        res = property_number(props, "resolution_hours")
        first = property_number(props, "first_response_hours")
        sel = sel.mutate(_res=res, _first=first).filter(
            (sel.event_type == "ticket_resolved")
            & ((res >= trig.min_hours) | (first >= trig.min_hours))
        )
        measure = ibis.greatest(sel._res.fill_null(0), sel._first.fill_null(0))
    key = sel.order_id.fill_null(sel.event_id) if trig.kind == "late_delivery" else sel.event_id
    ctx = _ctx_expr(
        event_id=sel.event_id,
        event_type=sel.event_type,
        order_id=sel.order_id,
        ts=sel.ts,
        failure=ibis.literal(trig.kind),
        measure=measure,
    )
    out = sel.select(user_id=sel.user_id, key=key, at=sel.ts, context=ctx)
    return _to_entries(out), replace(pos, hw=hw)


def _loyalty(
    ws: Any, trig: sp.LoyaltyTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    if trig.event == "points_expiring":
        return _points_expiring(ws, trig, pos, now)
    sel, hw = _new_events(ws, pos, now)
    sel = sel.filter(sel.event_type == trig.event)
    props = sel.properties.fill_null("")
    if trig.direction is not None:
        sel = sel.filter(property_text(props, "direction") == trig.direction)
    if trig.program is not None:
        prog = property_text(sel.properties.fill_null(""), "program")
        sel = sel.filter(prog.isnull() | (prog == trig.program))
    out = sel.select(user_id=sel.user_id, key=sel.event_id, at=sel.ts, context=_event_context(sel))
    return _to_entries(out), replace(pos, hw=hw)


def _points_expiring(
    ws: Any, trig: sp.LoyaltyTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    """Customers whose points expire ``days_before`` from now: an entry at ``expires_at −
    days_before`` for each (account, expiry day) with points left, from the lots."""
    from sqlalchemy import func, select

    from liucun.state import LoyaltyAccount, LoyaltyLot

    lo, hi = _window(pos, now)
    ahead = timedelta(days=trig.days_before)
    program = trig.program or "default"
    with ws.state.read() as s:
        rows = s.execute(
            select(LoyaltyAccount.user_id, LoyaltyLot.expires_at, func.sum(LoyaltyLot.remaining))
            .join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyLot.account_id)
            .where(
                LoyaltyAccount.program == program,
                LoyaltyLot.remaining > 0,
                LoyaltyLot.expires_at.is_not(None),
                LoyaltyLot.expires_at > lo + ahead,
                LoyaltyLot.expires_at <= hi + ahead,
            )
            .group_by(LoyaltyAccount.user_id, LoyaltyLot.expires_at)
        ).all()
    best: dict[str, dict[str, Any]] = {}
    for user, expires, points in rows:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        at = expires - ahead
        # one entry per customer and expiry day
        key = f"{expires.date().isoformat()}"
        entry = best.setdefault(
            f"{user}|{key}",
            {"user_id": user, "key": key, "at": at, "context": {"points": 0, "program": program}},
        )
        entry["context"]["points"] += int(points)
        entry["context"]["expires_at"] = expires.isoformat()
        entry["at"] = min(entry["at"], at)
    return _rows(list(best.values())), pos


def _risk(ws: Any, trig: sp.RiskTrigger, pos: Position, now: datetime) -> tuple[pa.Table, Position]:
    """The latest score per customer at or above the threshold where the score before it
    was below or absent; only customers scored (``scored_at``) since the high-water mark."""
    sc = ws.table("scores")
    sc = sc.filter((sc.as_of <= now) & sc.churn_risk.notnull())
    if trig.model is not None:
        sc = sc.filter(sc.model == trig.model)
    hw_new = sc.scored_at.max().to_pyarrow().as_py()
    ranked = sc.mutate(
        _n=ibis.row_number().over(
            group_by="user_id", order_by=[ibis.desc("as_of"), ibis.desc("scored_at")]
        )
    )
    latest = ranked.filter(ranked._n == 0)
    before = ranked.filter(ranked._n == 1).select(_u="user_id", _prev="churn_risk")
    if pos.hw is not None:
        latest = latest.filter(latest.scored_at >= pos.hw)
    j = latest.left_join(before, latest.user_id == before._u)
    j = j.filter((j.churn_risk >= trig.threshold) & (j._prev.isnull() | (j._prev < trig.threshold)))
    at = ibis.greatest(j.as_of.cast("timestamp('UTC')"), ibis.literal(pos.since))
    ctx = _ctx_expr(
        churn_risk=j.churn_risk,
        previous_risk=j._prev,
        as_of=j.as_of,
        model_version=j.model_version,
    )
    out = j.select(user_id=j.user_id, key=j.as_of.date().cast("string"), at=at, context=ctx)
    hw = pos.hw
    if hw_new is not None:
        hw = hw_new if hw_new.tzinfo else hw_new.replace(tzinfo=UTC)
    return _to_entries(out), replace(pos, hw=hw)


# -- time-driven --------------------------------------------------------------------------


def last_activity(ws: Any, now: datetime) -> ir.Table:
    """Each customer's last own activity at or before ``now`` (``user_id, last``): every
    event except :data:`liucun.loyalty._idle.NOT_ACTIVITY` (what the shop and liucun
    did), the loyalty idle-members definition."""
    ev = ws.events()
    act = ev.filter(ev.user_id.notnull(), ev.ts <= now, ~ev.event_type.isin(NOT_ACTIVITY))
    return act.group_by("user_id").aggregate(last=act.ts.max())


def _inactivity(
    ws: Any, trig: sp.InactivityTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    lo, hi = _window(pos, now)
    gap = timedelta(days=trig.days)
    last = last_activity(ws, now)
    # at = last + gap in (lo, hi]  ⇔  last in (lo − gap, hi − gap]
    due = last.filter((last["last"] > lo - gap) & (last["last"] <= hi - gap))
    at = due["last"] + ibis.interval(seconds=int(gap.total_seconds()))
    ctx = _ctx_expr(last_activity=due["last"], days=ibis.literal(float(trig.days)))
    out = due.select(user_id=due.user_id, key=due["last"].date().cast("string"), at=at, context=ctx)
    return _to_entries(out), pos


def _abandoned_cart(
    ws: Any, trig: sp.AbandonedCartTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    lo, hi = _window(pos, now)
    after = sp.parse_duration(trig.after)
    ev = ws.events()
    ev = ev.filter(ev.user_id.notnull())
    props = ev.properties.fill_null("")
    ev = ev.mutate(_session=property_text(props, "session_id"))
    carts = ev.filter(
        (ev.event_type == "add_to_cart") & (ev.ts > lo - after) & (ev.ts <= hi - after)
    )
    orders = ev.filter((ev.event_type == "order") & (ev.ts <= hi)).select(
        _ou="user_id", _os="_session", _ots="ts"
    )
    same = carts.left_join(
        orders,
        [
            carts.user_id == orders._ou,
            carts._session.fill_null("~none~") == orders._os.fill_null("~none~"),
            orders._ots > carts.ts,
        ],
    )
    bought = same.filter(same._ou.notnull()).select(_cid=same.event_id).distinct()
    left = carts.anti_join(bought, carts.event_id == bought._cid)
    # one entry per session: its last cart
    ranked = left.mutate(
        _n=ibis.row_number().over(
            group_by=[left.user_id, left._session.fill_null(left.event_id)],
            order_by=ibis.desc("ts"),
        )
    )
    last = ranked.filter(ranked._n == 0)
    key = last._session.fill_null(last.event_id)
    at = last.ts + ibis.interval(seconds=int(after.total_seconds()))
    ctx = _ctx_expr(event_id=last.event_id, session_id=last._session, cart_at=last.ts)
    out = last.select(user_id=last.user_id, key=key, at=at, context=ctx)
    return _to_entries(out), pos


def _stage(
    ws: Any, trig: sp.StageTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    prev = pos.evaluated_at or (now - timedelta(days=1))
    events, users = ws.events(), ws.customers()
    a = lifecycle_stages(events, as_of=prev, users=users).select(_u="user_id", _from="stage")
    b = lifecycle_stages(events, as_of=now, users=users)
    j = b.left_join(a, b.user_id == a._u)
    j = j.filter((j.stage == trig.stage) & (j._from.isnull() | (j._from != trig.stage)))
    if trig.from_stages:
        j = j.filter(j._from.isin(list(trig.from_stages)))
    ctx = _ctx_expr(from_stage=j._from, stage=j.stage)
    out = j.select(
        user_id=j.user_id,
        key=ibis.literal(f"{trig.stage}:{now.date().isoformat()}"),
        at=ibis.literal(now),
        context=ctx,
    )
    return _to_entries(out), pos


def _segment(
    ws: Any, trig: sp.SegmentTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    from liucun.journeys._profiles import profile_expr

    prev = pos.evaluated_at or (now - timedelta(days=1))
    b = profile_expr(ws, now)
    a = profile_expr(ws, prev)
    now_in = b.filter(parse_filter(trig.filter, b)).select("user_id")
    then_in = a.filter(parse_filter(trig.filter, a)).select(_u="user_id")
    if trig.type == "segment_entry":
        moved = now_in.anti_join(then_in, now_in.user_id == then_in._u)
    else:
        then = then_in.select(user_id=then_in._u)
        now_u = now_in.select(_u="user_id")
        moved = then.anti_join(now_u, then.user_id == now_u._u)
    out = moved.select(
        user_id=moved.user_id,
        key=ibis.literal(f"{trig.type}:{now.date().isoformat()}"),
        at=ibis.literal(now),
        context=ibis.literal(json.dumps({"filter": trig.filter, "change": trig.type})),
    )
    return _to_entries(out), pos


def _replenishment(
    ws: Any, trig: sp.ReplenishmentTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    """Expected next order = last order + the unit's own median gap between orders;
    entry ``days_before`` it, for units with at least ``min_orders`` orders."""
    from liucun.metrics import days_between

    lo, hi = _window(pos, now)
    ev = ws.events()
    o = ev.filter((ev.event_type == "order") & ev.user_id.notnull() & (ev.ts <= now))
    if trig.unit == "account":
        cust = ws.customers().select(_cu="user_id", _ca="account_id")
        o = o.left_join(cust, o.user_id == cust._cu)
        o = o.mutate(_unit=o.account_id.fill_null(o._ca).fill_null(o.user_id))
    else:
        o = o.mutate(_unit=o.user_id)
    prev_ts = o.ts.lag().over(group_by="_unit", order_by="ts")
    g = o.mutate(_gap=days_between(o.ts, prev_ts))
    last_user = g.mutate(_n=ibis.row_number().over(group_by="_unit", order_by=ibis.desc("ts")))
    last_user = last_user.filter(last_user._n == 0).select(_lu="_unit", _luser="user_id")
    per = g.group_by("_unit").aggregate(
        _orders=g.count(), _last=g.ts.max(), _median=g._gap.median()
    )
    per = per.filter((per._orders >= trig.min_orders) & per._median.notnull() & (per._median > 0))
    lead = float(trig.days_before)
    seconds = (per._median - lead) * 86400.0
    per = per.mutate(_at=per._last + seconds.cast("int64").as_interval("s"))
    per = per.filter((per._at > lo) & (per._at <= hi))
    j = per.inner_join(last_user, per._unit == last_user._lu)
    ctx = _ctx_expr(
        unit=j._unit,
        last_order=j._last,
        median_gap_days=j._median,
        orders=j._orders,
        expected_at=j._last + (j._median * 86400.0).cast("int64").as_interval("s"),
    )
    out = j.select(
        user_id=j._luser,
        key=j._unit.concat(ibis.literal(":"), j._last.date().cast("string")),
        at=j._at,
        context=ctx,
    )
    return _to_entries(out), pos


def _zones(ws: Any) -> pa.Table:
    """Customers by their raw (timezone, country): ``_tz, _country, users``."""
    c = ws.customers()
    g = c.group_by(_tz=c.timezone.fill_null(""), _country=c.country.fill_null("")).aggregate(
        users=c.count()
    )
    return g.to_pyarrow()


def _calendar_window(pos: Position, now: datetime) -> tuple[datetime, datetime]:
    lo = pos.horizon or pos.evaluated_at or pos.since
    return lo, max(lo, now + LOOKAHEAD)


def _by_zone_entries(ws: Any, pairs: list[dict[str, Any]]) -> pa.Table:
    """Every customer of each (raw timezone, raw country) in ``pairs`` gets that pair's
    entries (``key``, ``at``, ``context``): one join."""
    if not pairs:
        return _empty()
    c = ws.customers()
    c = c.mutate(_tz=c.timezone.fill_null(""), _country=c.country.fill_null(""))
    m = ibis.memtable(
        pa.table(
            {
                "_ptz": [p["_tz"] for p in pairs],
                "_pc": [p["_country"] for p in pairs],
                "key": [p["key"] for p in pairs],
                "at": pa.array([p["at"] for p in pairs], pa.timestamp("us", tz="UTC")),
                "context": [json.dumps(p["context"], sort_keys=True) for p in pairs],
            }
        )
    )
    j = c.inner_join(m, [c._tz == m._ptz, c._country == m._pc])
    return _to_entries(j.select(user_id=j.user_id, key=j.key, at=j.at, context=j.context))


def _holiday(
    ws: Any, trig: sp.HolidayTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    import holidays

    lo, hi = _calendar_window(pos, now)
    default = ws.settings.reporting_timezone
    pairs = []
    years = list(range(lo.year, hi.year + 2))
    cache: dict[str, Any] = {}
    for z in _zones(ws).to_pylist():
        country = z["_country"].upper()
        if not country:
            continue
        if country not in cache:
            try:
                cache[country] = holidays.country_holidays(country, years=years)
            except (NotImplementedError, KeyError):
                cache[country] = {}
        tz = customer_zone(z["_tz"] or None, country, default)
        for day, name in sorted(cache[country].items()):
            if trig.names and not any(n.lower() in name.lower() for n in trig.names):
                continue
            at = at_local(day - timedelta(days=trig.days_before), trig.at, tz)
            if lo < at <= hi:
                pairs.append(
                    {
                        "_tz": z["_tz"],
                        "_country": z["_country"],
                        "key": f"{day.isoformat()}",
                        "at": at,
                        "context": {"holiday": name, "date": day.isoformat(), "country": country},
                    }
                )
    return _by_zone_entries(ws, pairs), replace(pos, horizon=hi)


def _schedule(
    ws: Any, trig: sp.ScheduleTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    lo, hi = _calendar_window(pos, now)
    every = sp.parse_duration(trig.every)
    default = ws.settings.reporting_timezone
    start_day = date.fromisoformat(trig.start) if trig.start else pos.since.date()
    pairs = []
    whole_days = every.total_seconds() % 86400 == 0 and every >= timedelta(days=1)
    for z in _zones(ws).to_pylist():
        tz = customer_zone(z["_tz"] or None, z["_country"] or None, default)
        if whole_days:
            step = every.days
            first = max(0, math.floor(((lo.date() - start_day).days - 2) / step))
            k = first
            while True:
                day = start_day + timedelta(days=k * step)
                at = at_local(day, trig.at, tz)
                if at > hi:
                    break
                if at > lo:
                    pairs.append(
                        {**z, "key": day.isoformat(), "at": at, "context": {"occurrence": k}}
                    )
                k += 1
        else:
            origin = at_local(start_day, trig.at, tz)
            k = max(0, math.floor((lo - origin) / every))
            while True:
                at = origin + k * every
                if at > hi:
                    break
                if at > lo:
                    pairs.append(
                        {**z, "key": at.isoformat(), "at": at, "context": {"occurrence": k}}
                    )
                k += 1
    for p in pairs:
        p.pop("users", None)
    return _by_zone_entries(ws, pairs), replace(pos, horizon=hi)


def _date_property(
    ws: Any, trig: sp.DatePropertyTrigger, pos: Position, now: datetime
) -> tuple[pa.Table, Position]:
    lo, hi = _calendar_window(pos, now)
    default = ws.settings.reporting_timezone
    rows = []
    if trig.property == "membership_renewal":
        rows = _renewal_dates(ws, lo, hi, trig)
        return _rows(rows), replace(pos, horizon=hi)
    c = ws.customers()
    col = c.birthday if trig.property == "birthday" else c.signup_ts.date()
    c = c.filter(col.notnull()).mutate(_d=col)
    # candidates by month/day: the days whose entry (days_before ahead) can fall in the window
    lead = timedelta(days=trig.days_before)
    first, last = (lo - timedelta(days=2) + lead).date(), (hi + timedelta(days=2) + lead).date()
    if (last - first).days < 366:
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        md = sorted(
            {(d.month, d.day) for d in days}
            | ({(2, 29)} if any(d.month == 2 and d.day == 28 for d in days) else set())
        )
        code = c._d.month() * 100 + c._d.day()
        c = c.filter(code.isin([m * 100 + d for m, d in md]))
    cand = c.select("user_id", "_d", "timezone", "country").to_pyarrow().to_pylist()
    memo: dict[tuple[Any, Any], str] = {}
    hhmm = parse_hhmm(trig.at)
    for r in cand:
        k = (r["timezone"], r["country"])
        if k not in memo:
            memo[k] = customer_zone(r["timezone"], r["country"], default)
        tz = memo[k]
        d = r["_d"]
        if isinstance(d, datetime):
            d = d.date()
        base = (lo - timedelta(days=2) + lead).date()
        occurrence = next_yearly(d.month, d.day, base)
        for _ in range(3):
            at = at_local(occurrence - lead, hhmm, tz)
            if at > hi:
                break
            if at > lo:
                rows.append(
                    {
                        "user_id": r["user_id"],
                        "key": f"{trig.property}:{occurrence.isoformat()}",
                        "at": at,
                        "context": {"property": trig.property, "date": occurrence.isoformat()},
                    }
                )
            occurrence = next_yearly(d.month, d.day, occurrence + timedelta(days=1))
    return _rows(rows), replace(pos, horizon=hi)


def _renewal_dates(
    ws: Any, lo: datetime, hi: datetime, trig: sp.DatePropertyTrigger
) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from liucun.state import LoyaltyMembership

    lead = timedelta(days=trig.days_before)
    with ws.state.read() as s:
        found = s.execute(
            select(LoyaltyMembership.user_id, LoyaltyMembership.term_end).where(
                LoyaltyMembership.status == "active",
                LoyaltyMembership.term_end > lo + lead - timedelta(days=1),
                LoyaltyMembership.term_end <= hi + lead + timedelta(days=1),
            )
        ).all()
    rows = []
    for user, end in found:
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        at = at_local((end - lead).date(), trig.at, ws.settings.reporting_timezone)
        if lo < at <= hi:
            rows.append(
                {
                    "user_id": user,
                    "key": f"membership_renewal:{end.date().isoformat()}",
                    "at": at,
                    "context": {"property": "membership_renewal", "term_end": end.isoformat()},
                }
            )
    return rows


_EVALUATORS = {
    "event": _event,
    "service_failure": _service_failure,
    "loyalty": _loyalty,
    "risk_crossed": _risk,
    "inactivity": _inactivity,
    "abandoned_cart": _abandoned_cart,
    "stage_entered": _stage,
    "segment_entry": _segment,
    "segment_exit": _segment,
    "replenishment_due": _replenishment,
    "holiday": _holiday,
    "schedule": _schedule,
    "date_property": _date_property,
}
