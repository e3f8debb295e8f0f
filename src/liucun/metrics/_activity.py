"""Activity: active users per period, stickiness, lifecycle insight, ordered funnels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics._periods import Period, check_period, period_start, shift
from liucun.metrics._retention import check_event_types
from liucun.schema import LIUCUN_EVENT_TYPES


def _active(events: ir.Table, event_types: Sequence[str] | None) -> ir.Table:
    """Events that make a customer active: ``event_types`` when given, else every type
    but those liucun writes itself (:data:`~liucun.schema.LIUCUN_EVENT_TYPES`)."""
    ev = events.filter(events.user_id.notnull())
    if event_types:
        return ev.filter(ev.event_type.isin(list(event_types)))
    return ev.filter(~ev.event_type.isin(list(LIUCUN_EVENT_TYPES)))


def active_users(
    events: ir.Table,
    *,
    period: Period = "day",
    event_types: Sequence[str] | None = None,
    week_start: int = 0,
    timezone: str = "UTC",
) -> ir.Table:
    """Distinct active users per period (DAU, WAU or MAU): ``period_start, active``.

    Periods are calendar periods in ``timezone`` (the reporting time zone)."""
    period = check_period(period)
    ev = _active(events, event_types)
    ev = ev.mutate(
        period_start=period_start(ev.ts, period, week_start=week_start, timezone=timezone)
    )
    out = ev.group_by("period_start").aggregate(active=ev.user_id.nunique())
    return out.order_by("period_start")


def stickiness(
    events: ir.Table, *, event_types: Sequence[str] | None = None, timezone: str = "UTC"
) -> ir.Table:
    """Per calendar month in ``timezone``: mean DAU, MAU and stickiness = mean DAU ÷ MAU."""
    daily = active_users(events, period="day", event_types=event_types, timezone=timezone)
    daily = daily.mutate(month=daily.period_start.truncate("M"))
    dau = daily.group_by("month").aggregate(mean_dau=daily.active.mean())
    mau = active_users(events, period="month", event_types=event_types, timezone=timezone).rename(
        month="period_start", mau="active"
    )
    out = dau.join(mau, "month")
    return out.mutate(stickiness=out.mean_dau / out.mau).order_by("month")


def lifecycle(
    events: ir.Table,
    *,
    period: Period = "week",
    event_types: Sequence[str] | None = None,
    week_start: int = 0,
    timezone: str = "UTC",
) -> ir.Table:
    """Lifecycle insight per period (calendar periods in ``timezone``): ``new`` (first
    activity ever), ``returning`` (also active the period before), ``resurrecting`` (active
    before, but not the period before) and ``dormant`` (active the period before, not in
    this one; a positive count).
    """
    period = check_period(period)
    ev = _active(events, event_types)
    ev = ev.mutate(_p=period_start(ev.ts, period, week_start=week_start, timezone=timezone))
    seen = ev.group_by(["user_id", "_p"]).aggregate()
    firsts = seen.group_by("user_id").aggregate(_first=seen._p.min())
    seen = seen.join(firsts, "user_id").select("user_id", "_p", "_first")
    prev = seen.select(_u=seen.user_id, _next=shift(seen._p, ibis.literal(1), period))
    marked = seen.left_join(prev, (seen.user_id == prev._u) & (seen._p == prev._next))
    marked = marked.mutate(
        _state=ibis.cases(
            (marked._p == marked._first, "new"),
            (marked._u.notnull(), "returning"),
            else_="resurrecting",
        )
    )
    counts = marked.group_by("_p").aggregate(
        new=(marked._state == "new").sum(),
        returning=(marked._state == "returning").sum(),
        resurrecting=(marked._state == "resurrecting").sum(),
    )
    # dormant in period p: active in p - 1, not in p
    nxt = seen.select("user_id", _p=shift(seen._p, ibis.literal(1), period))
    again = seen.view()
    gone = nxt.anti_join(again, [nxt.user_id == again.user_id, nxt._p == again._p])
    last = seen._p.max().as_scalar()
    gone = gone.filter(gone._p <= last)
    dormant = gone.group_by("_p").aggregate(dormant=gone.count())
    out = counts.outer_join(dormant, "_p")
    out = out.select(
        period_start=ibis.coalesce(out._p, out._p_right),
        new=out.new.fill_null(0),
        returning=out.returning.fill_null(0),
        resurrecting=out.resurrecting.fill_null(0),
        dormant=out.dormant.fill_null(0),
    )
    return out.order_by("period_start")


def funnel(
    events: ir.Table,
    steps: Sequence[str],
    *,
    window: timedelta = timedelta(days=7),
    custom_event_types: Sequence[str] = (),
) -> ir.Table:
    """Ordered funnel: users who did ``steps[0]``, then each next step in order, all within
    ``window`` of their first step. Per step: ``step, name, users, conversion`` (from step
    1) and ``drop_off`` (share lost since the previous step).

    A step that is neither a standard event type, nor in ``custom_event_types``, nor in
    ``events`` is a :class:`ConfigError` listing the known ones (a wrong case, e.g.
    ``View``, is told to use ``view``) — never a silent funnel of zeros."""
    if len(steps) < 2:
        raise ConfigError("a funnel needs at least two steps, e.g. visit, order")
    if window <= timedelta(0):
        raise ConfigError("the conversion window must be positive")
    check_event_types(
        events,
        [(f"funnel step {i}", "", name) for i, name in enumerate(steps, start=1)],
        custom_event_types=custom_event_types,
    )
    ev = events.filter(events.user_id.notnull())
    first = ev.filter(ev.event_type == steps[0])
    reached = first.group_by("user_id").aggregate(_start=first.ts.min())
    reached = reached.mutate(_last=reached._start)
    limit = ibis.interval(seconds=int(window.total_seconds()))
    rows = [reached.aggregate(users=reached.count()).mutate(step=1, name=ibis.literal(steps[0]))]
    for number, name in enumerate(steps[1:], start=2):
        step = ev.filter(ev.event_type == name).select(_u=ev.user_id, _ts=ev.ts)
        nxt = reached.join(
            step,
            (reached.user_id == step._u)
            & (step._ts > reached._last)
            & (step._ts <= reached._start + limit),
        )
        reached = nxt.group_by(["user_id", "_start"]).aggregate(_last=nxt._ts.min())
        rows.append(
            reached.aggregate(users=reached.count()).mutate(step=number, name=ibis.literal(name))
        )
    table = ibis.union(*rows)
    w = ibis.window(order_by="step")
    first = table.users.first().over(w)
    previous = table.users.lag().over(w)
    return table.select(
        "step",
        "name",
        "users",
        conversion=table.users.cast("float64") / first.nullif(0),
        drop_off=(1 - table.users.cast("float64") / previous.nullif(0)).fill_null(0.0),
    ).order_by("step")
