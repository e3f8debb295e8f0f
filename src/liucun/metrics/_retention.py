"""Cohort retention (ARCHITECTURE §5): N-period and unbounded, first-time and recurring.

Pure Ibis: a function from canonical events to an unexecuted table
``cohort, period, cohort_size, retained, rate, complete``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics._periods import Period, check_period, period_start, periods_between, shift

Kind = Literal["n-period", "unbounded"]
CohortType = Literal["first-time", "recurring"]


def retention(
    events: ir.Table,
    *,
    cohort_event: str = "order",
    return_event: str = "order",
    period: Period = "week",
    kind: Kind = "n-period",
    cohort_type: CohortType = "first-time",
    max_period: int = 12,
    as_of: datetime | None = None,
    week_start: int = 0,
) -> ir.Table:
    """Retention of cohorts of users by the period of their cohort event.

    Period 0 is the cohort's own period (everyone, rate 1). For ``k >= 1``, N-period
    retention counts users with a return event in period ``k``; unbounded retention, in
    period ``k`` or later. A first-time cohort is each user's first cohort event; recurring
    cohorts count a user in every period in which they did the cohort event. Only return
    events after the user's cohort event count. A period that has not ended by ``as_of``
    (default: the last event's time) is flagged ``complete = False``; periods that have not
    started are left out, never reported as 0.
    """
    period = check_period(period)
    if kind not in ("n-period", "unbounded"):
        raise ConfigError(f"unknown kind {kind!r}; use n-period or unbounded")
    if cohort_type not in ("first-time", "recurring"):
        raise ConfigError(f"unknown cohort type {cohort_type!r}; use first-time or recurring")
    if max_period < 0:
        raise ConfigError(f"max_period must be >= 0, got {max_period}")
    known = events.filter(events.user_id.notnull())
    starts = known.filter(known.event_type == cohort_event)
    starts = starts.mutate(_cohort=period_start(starts.ts, period, week_start=week_start))
    if cohort_type == "first-time":
        first = starts.group_by("user_id").aggregate(_at=starts.ts.min())
        cohorts = first.mutate(_cohort=period_start(first._at, period, week_start=week_start))
    else:
        cohorts = starts.group_by(["user_id", "_cohort"]).aggregate(_at=starts.ts.min())
    returns = known.filter(known.event_type == return_event).select("user_id", _rts=known.ts)
    hits = cohorts.join(returns, "user_id").filter(lambda t: t._rts > t._at)
    hits = hits.mutate(
        _k=periods_between(
            hits._cohort, period_start(hits._rts, period, week_start=week_start), period
        )
    )
    hits = hits.filter((hits._k >= 1) & (hits._k <= max_period))
    sizes = cohorts.group_by("_cohort").aggregate(cohort_size=cohorts.user_id.nunique())
    ks = ibis.memtable({"period": list(range(max_period + 1))})
    if kind == "n-period":
        counts = hits.group_by(["_cohort", "_k"]).aggregate(retained=hits.user_id.nunique())
        counts = counts.rename(period="_k")
    else:
        reach = hits.group_by(["_cohort", "user_id"]).aggregate(_max=hits._k.max())
        pairs = reach.join(ks, reach._max >= ks.period)
        counts = pairs.group_by(["_cohort", "period"]).aggregate(retained=pairs.user_id.nunique())
    grid = sizes.cross_join(ks)
    table = grid.left_join(counts, ["_cohort", "period"])
    end = ibis.literal(as_of) if as_of is not None else events.ts.max().as_scalar()
    end = end.cast("timestamp")
    p_start = shift(table._cohort, table.period, period)
    p_end = shift(table._cohort, table.period + 1, period)
    retained = ibis.ifelse(table.period == 0, table.cohort_size, table.retained.fill_null(0))
    out = table.filter(p_start <= end).select(
        cohort=table._cohort.date(),
        period=table.period,
        cohort_size=table.cohort_size,
        retained=retained.cast("int64"),
        rate=retained.cast("float64") / table.cohort_size,
        complete=p_end <= end,
    )
    return out.order_by(["cohort", "period"])
