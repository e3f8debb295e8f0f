"""Cohort retention (ARCHITECTURE §5): N-period, unbounded and bracketed; first-time and
recurring cohorts; by user or B2B account; with an optional breakdown.

Pure Ibis: functions from canonical events to unexecuted tables
``cohort, [breakdown], period, cohort_size, retained, rate, complete``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError, Hint, check_timezone, naive_utc
from liucun.metrics._periods import (
    Period,
    check_period,
    data_end,
    days_between,
    local_time,
    period_start,
    periods_between,
    shift,
)
from liucun.schema import STANDARD_EVENT_TYPES

Kind = Literal["n-period", "unbounded", "bracketed"]
CohortType = Literal["first-time", "recurring"]
Entity = Literal["user", "account"]
KINDS = ("n-period", "unbounded", "bracketed")


@dataclass(frozen=True)
class Bracket:
    """A named range of periods, e.g. ``D2-7`` = periods 2 to 7."""

    name: str
    low: int
    high: int


DEFAULT_BRACKETS = (Bracket("D1", 1, 1), Bracket("D2-7", 2, 7), Bracket("D8-30", 8, 30))
_BRACKET = re.compile(r"^\s*([^=]+?)\s*=\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_brackets(text: str) -> tuple[Bracket, ...]:
    """``"D1=1,D2-7=2-7,D8-30=8-30"`` → brackets (names free, ranges inclusive, ≥ 1)."""
    out = []
    for part in text.split(","):
        m = _BRACKET.match(part)
        if not m:
            raise ConfigError(
                f"bracket {part.strip()!r} is not NAME=FROM[-TO]; e.g. 'D1=1,D2-7=2-7'"
            )
        low = int(m.group(2))
        high = int(m.group(3) or low)
        if not 1 <= low <= high:
            raise ConfigError(f"bracket {part.strip()!r}: the range must be 1 <= FROM <= TO")
        out.append(Bracket(m.group(1), low, high))
    return tuple(out)


def check_event_types(
    events: ir.Table | None,
    roles: Sequence[tuple[str, str, str]],
    *,
    custom_event_types: Sequence[str] = (),
) -> None:
    """Refuse an event type that is neither standard, nor declared, nor in ``events``.

    ``roles`` holds ``(what, option, event_type)`` triples, e.g. ``("the cohort event",
    "cohort_event", "Catalog")``: ``what`` names it in the sentence, ``option`` is the
    parameter the :class:`~liucun.core.Hint` points to ("" for none). Ingestion stores
    event types in lower case, so a case mismatch (``Catalog``) is told to use the
    lower-case form; any other unknown name gets the list of known types: those in the
    data, the standard ones and the declared ``custom_event_types``. Standard and
    declared types are accepted without a query (none of them in the data just means
    empty cohorts); ``events=None`` checks against those alone.
    """
    declared = {*STANDARD_EVENT_TYPES, *custom_event_types}
    unknown = [(what, option, name) for what, option, name in roles if name not in declared]
    if not unknown:
        return
    present = (
        set()
        if events is None
        else {
            str(t)
            for t in events.select("event_type").distinct().to_pyarrow().column(0).to_pylist()
            if t is not None
        }
    )
    for what, option, name in unknown:
        if name in present:
            continue
        folded = str(name).strip().lower()
        known = sorted({*declared, *present})
        if folded in known:
            raise ConfigError(
                f"{what} {name!r} is not an event type of the data (did you mean {folded!r}?): "
                f"event types are stored in lower case, so use {folded!r}; known types: "
                f"{', '.join(known)}",
                hint=Hint(option=option, example=folded) if option else None,
            )
        in_data = ", ".join(sorted(present)) or "none (no events)"
        others = sorted(declared - present)
        raise ConfigError(
            f"{what} {name!r} is not a known event type; the data have {in_data}"
            + (f"; also known but not in the data: {', '.join(others)}" if others else "")
            + " (declare new types in [ingest] custom_event_types)",
            hint=(
                Hint(option=option, example="order" if "order" in present else min(known))
                if option
                else None
            ),
        )


def retention(
    events: ir.Table,
    *,
    cohort_event: str = "order",
    return_event: str = "order",
    period: Period = "week",
    kind: Kind = "n-period",
    cohort_type: CohortType = "first-time",
    max_period: int = 12,
    brackets: Sequence[Bracket] = DEFAULT_BRACKETS,
    entity: Entity = "user",
    breakdown: str | None = None,
    users: ir.Table | None = None,
    as_of: datetime | None = None,
    week_start: int = 0,
    rolling: bool = False,
    timezone: str = "UTC",
    custom_event_types: Sequence[str] = (),
) -> ir.Table:
    """Retention of cohorts by the period of their cohort event.

    Period 0 is the cohort's own period (everyone, rate 1). For ``k >= 1``, N-period
    retention counts units with a return event in period ``k``; unbounded, in period ``k``
    or later; bracketed, in any period of a named range (``period`` is then the bracket's
    name). A first-time cohort is each unit's first cohort event; recurring cohorts count a
    unit in every period in which it did the cohort event. Only return events after the
    unit's cohort event count. The unit is the user or, for B2B, the account. A breakdown
    splits cohorts by a column of the cohort event (e.g. ``channel``, ``country``) or,
    given ``users``, of the user (e.g. ``acquisition_channel``). A period that has not
    ended by ``as_of`` is flagged ``complete = False``; periods that have not started are
    left out, never reported as 0. ``as_of`` is an instant (a naive one is UTC); by
    default it is the data end of ``events`` as :func:`liucun.core.data_end` defines it:
    the UTC midnight after the last event's day, so that day counts as ended.

    Periods are calendar periods in ``timezone`` (the reporting time zone; an IANA name).
    ``cohort_event`` and ``return_event`` must be standard event types, declared in
    ``custom_event_types`` or present in ``events`` (:func:`check_event_types`): a name
    that matches nothing (``Catalog`` for the stored ``catalog``) is an error listing
    the known types, never an empty table.

    ``rolling=True`` (with ``period="day"``) counts periods as 24-hour windows from each
    unit's own cohort event instead of calendar days; a cell is complete once the window
    of the cohort day's last possible unit has ended.

    The steps follow docs/metrics.md: the unit of each event; the cohorts, with their
    breakdown; their returns (:func:`_calendar_hits` or :func:`_rolling_hits`: one row
    per cohort, unit and return period ``_k``); the cohort sizes; the count per period
    or bracket (:func:`_n_period_counts`, :func:`_unbounded_counts`, :func:`_bracketed`);
    and the completeness of each cell (:func:`_flag_and_order`).
    """
    period = check_period(period)
    _check_options(kind, cohort_type, entity, max_period, period, rolling)
    check_timezone(timezone)
    check_event_types(
        events,
        [
            ("the cohort event", "cohort_event", cohort_event),
            ("the return event", "return_event", return_event),
        ],
        custom_event_types=custom_event_types,
    )
    unit = "user_id" if entity == "user" else "account_id"
    known = events.filter(events[unit].notnull()).mutate(_unit=events[unit])
    keys = ["_cohort", *(["breakdown"] if breakdown else [])]
    cohort = _CohortSpec(cohort_event, period, cohort_type, week_start, breakdown, timezone)
    returns = known.filter(known.event_type == return_event)
    if rolling:
        cohorts = _cohorts(known, cohort)
    else:
        returns = returns.select("_unit", _rp=cohort.start(returns.ts)).distinct()
        cohorts = _calendar_cohorts(known, returns, return_event, cohort)
    cohorts = _with_user_breakdown(cohorts, known, users, breakdown, cohort.on_event(known))
    if breakdown:
        cohorts = cohorts.mutate(breakdown=_breakdown_value(cohorts.breakdown))
    hits = _rolling_hits(cohorts, returns) if rolling else _calendar_hits(cohorts, returns, period)
    sizes = cohorts.group_by(keys).aggregate(cohort_size=cohorts._unit.nunique())
    if kind == "bracketed":
        table, first, last = _bracketed(hits, sizes, keys, brackets)
    else:
        ks = ibis.memtable({"period": list(range(max_period + 1))})
        if kind == "n-period":
            counts = _n_period_counts(hits, keys, max_period)
        else:
            counts = _unbounded_counts(hits, keys, ks)
        table, first, last = _by_period(sizes, counts, keys, ks)
    end = data_end(events.ts) if as_of is None else ibis.literal(naive_utc(as_of))
    return _flag_and_order(table, first, last, keys, end, period, rolling, timezone)


def _check_options(
    kind: str, cohort_type: str, entity: str, max_period: int, period: Period, rolling: bool
) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if cohort_type not in ("first-time", "recurring"):
        raise ConfigError(f"unknown cohort type {cohort_type!r}; use first-time or recurring")
    if entity not in ("user", "account"):
        raise ConfigError(f"unknown entity {entity!r}; use user or account")
    if max_period < 0:
        raise ConfigError(f"max_period must be >= 0, got {max_period}")
    if rolling and period != "day":
        raise ConfigError("rolling retention counts 24-hour windows: use period='day'")


@dataclass(frozen=True)
class _CohortSpec:
    """How cohorts are formed: which event, which periods, first-time or recurring."""

    event: str
    period: Period
    cohort_type: str
    week_start: int
    breakdown: str | None
    timezone: str

    def on_event(self, known: ir.Table) -> bool:
        """The breakdown is a column of the cohort event (not of the user)."""
        return self.breakdown is not None and self.breakdown in known.columns

    def start(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        """The start of the period that holds ``ts``."""
        return period_start(ts, self.period, week_start=self.week_start, timezone=self.timezone)


def _calendar_cohorts(
    known: ir.Table, returns: ir.Table, return_event: str, cohort: _CohortSpec
) -> ir.Table:
    """Cohorts by calendar period (``_unit, _cohort`` and an event-column breakdown)."""
    if cohort.event == return_event and not cohort.on_event(known):
        # The cohorts are in the (unit, period) pairs already: one scan of the events
        # instead of two (the default, order → order, is the common and the big case).
        if cohort.cohort_type == "first-time":
            return returns.group_by("_unit").aggregate(_cohort=returns._rp.min())
        return returns.select("_unit", _cohort=returns._rp)
    return _cohorts(known, cohort)


def _calendar_hits(cohorts: ir.Table, returns: ir.Table, period: Period) -> ir.Table:
    """One row per (cohort, unit, calendar period ``_k`` >= 1 with a return).

    Returns count from period 1 on, where every event is after the cohort event; so one
    row per (unit, period with a return) is all the join needs, far fewer than events.
    """
    hits = cohorts.join(returns, "_unit")
    hits = hits.mutate(_k=periods_between(hits._cohort, hits._rp, period))
    return hits.filter(hits._k >= 1)


def _rolling_hits(cohorts: ir.Table, returns: ir.Table) -> ir.Table:
    """One row per (cohort, unit, 24-hour window ``_k`` >= 1 after the unit's own cohort
    event with a return)."""
    returns = returns.select("_unit", _rts=returns.ts)
    hits = cohorts.join(returns, "_unit").filter(lambda t: t._rts > t._at)
    hits = hits.mutate(_k=days_between(hits._rts, hits._at).floor().cast("int64"))
    return hits.filter(hits._k >= 1).select(*cohorts.columns, "_k").distinct()


def _cohorts(known: ir.Table, cohort: _CohortSpec) -> ir.Table:
    """Cohort rows (``_unit, _cohort, _at`` and an event-column ``breakdown``)."""
    starts = known.filter(known.event_type == cohort.event)
    extra = (
        {"breakdown": starts[cohort.breakdown].argmin(starts.ts)} if cohort.on_event(known) else {}
    )
    first_time = cohort.cohort_type == "first-time"
    by = ["_unit"] if first_time else ["_unit", cohort.start(starts.ts).name("_cohort")]
    cohorts = starts.group_by(by).aggregate(_at=starts.ts.min(), **extra)
    if first_time:
        cohorts = cohorts.mutate(_cohort=cohort.start(cohorts._at))
    return cohorts


def _with_user_breakdown(
    cohorts: ir.Table,
    known: ir.Table,
    users: ir.Table | None,
    breakdown: str | None,
    on_event: bool,
) -> ir.Table:
    """Add the user column ``breakdown`` to the cohorts (an event column is there already)."""
    if breakdown is None or on_event:
        return cohorts
    if users is None or breakdown not in users.columns:
        fields = sorted({*known.columns, *(users.columns if users is not None else ())} - {"_unit"})
        raise ConfigError(
            f"cannot break down by {breakdown!r}: it is neither an event nor a user "
            f"column (pass users=…); fields: {', '.join(fields)}"
        )
    attrs = users.select(_unit=users.user_id, breakdown=users[breakdown])
    return cohorts.left_join(attrs, "_unit").drop("_unit_right")


#: The breakdown group of cohorts whose breakdown value is missing.
MISSING_BREAKDOWN = "unknown"


def _breakdown_value(value: ir.Value) -> ir.StringValue:
    """The breakdown as text, a missing value as its own group :data:`MISSING_BREAKDOWN`.

    Cells are matched on the breakdown when counts meet cohort sizes; a NULL never
    equals a NULL in a join, so cohorts without a value used to show 0 returns (issue 10).
    """
    return value.cast("string").fill_null(MISSING_BREAKDOWN)


def _n_period_counts(hits: ir.Table, keys: list[str], max_period: int) -> ir.Table:
    """Units with a return in period ``k`` (``keys, period, retained``)."""
    hits = hits.filter(hits._k <= max_period)
    # a unit has one row per cohort and return period: counting rows counts units
    counts = hits.group_by([*keys, "_k"]).aggregate(retained=hits.count())
    return counts.rename(period="_k")


def _unbounded_counts(hits: ir.Table, keys: list[str], ks: ir.Table) -> ir.Table:
    """Units with a return in period ``k`` or later (``keys, period, retained``): each
    unit counts in every period up to its latest return.

    The latest return is taken over *all* of a unit's returns, including those after
    ``max_period`` (which only limits the periods shown, ``ks``): a unit whose only
    return came after the last period shown is retained in every period shown (issue 10:
    filtering first undercounted 240 of 260 cells of a 34-week history).
    """
    reach = hits.group_by([*keys, "_unit"]).aggregate(_max=hits._k.max())
    pairs = reach.join(ks, reach._max >= ks.period)
    return pairs.group_by([*keys, "period"]).aggregate(retained=pairs._unit.nunique())


def _by_period(
    sizes: ir.Table, counts: ir.Table, keys: list[str], ks: ir.Table
) -> tuple[ir.Table, ir.IntegerValue, ir.IntegerValue]:
    """Every (cohort, period 0 … max_period) cell; period 0 retains the whole cohort."""
    grid = sizes.cross_join(ks).left_join(counts, [*keys, "period"])
    grid = grid.mutate(
        retained=ibis.ifelse(grid.period == 0, grid.cohort_size, grid.retained.fill_null(0))
    )
    return grid, grid.period, grid.period


def _bracketed(
    hits: ir.Table, sizes: ir.Table, keys: list[str], brackets: Sequence[Bracket]
) -> tuple[ir.Table, ir.IntegerValue, ir.IntegerValue]:
    if not brackets:
        raise ConfigError("bracketed retention needs at least one bracket, e.g. 'D1=1'")
    spec = ibis.memtable(
        {
            "period": [b.name for b in brackets],
            "_low": [b.low for b in brackets],
            "_high": [b.high for b in brackets],
        }
    )
    inside = hits.join(spec, (hits._k >= spec._low) & (hits._k <= spec._high))
    counts = inside.group_by([*keys, "period"]).aggregate(retained=inside._unit.nunique())
    grid = sizes.cross_join(spec).left_join(counts, [*keys, "period"])
    grid = grid.mutate(retained=grid.retained.fill_null(0))
    return grid, grid._low, grid._high


def _flag_and_order(
    table: ir.Table,
    first: ir.IntegerValue,
    last: ir.IntegerValue,
    keys: list[str],
    end: ir.TimestampScalar,
    period: Period,
    rolling: bool,
    timezone: str,
) -> ir.Table:
    """Leave out the cells whose (first) period has not started by ``end`` (naive UTC),
    flag those whose (last) period has not ended, and give the public columns."""
    # end is an instant (UTC); periods are local, so compare in local time
    end = local_time(end.cast("timestamp('UTC')"), timezone)
    starts_by = shift(table._cohort, first, period) < end
    # a rolling window of a unit that started late on the cohort day ends a day later
    complete = shift(table._cohort, last + (2 if rolling else 1), period) <= end
    retained = table.retained.cast("int64")
    breakdown = "breakdown" in keys
    order = [table._cohort, *([table.breakdown] if breakdown else []), first]
    return (
        table.filter(starts_by)
        .order_by(order)
        .select(
            cohort=table._cohort.date(),
            period=table.period,
            cohort_size=table.cohort_size,
            retained=retained,
            rate=retained.cast("float64") / table.cohort_size,
            complete=complete,
            **({"breakdown": table.breakdown} if breakdown else {}),
        )
    )


def weighted_mean(table: ir.Table) -> ir.Table:
    """One row per period: retained ÷ cohort size summed over the *complete* cohorts."""
    done = table.filter(table.complete)
    keys = ["period", *(["breakdown"] if "breakdown" in table.columns else [])]
    agg = done.group_by(keys).aggregate(
        cohort_size=done.cohort_size.sum(), retained=done.retained.sum()
    )
    return agg.mutate(rate=agg.retained.cast("float64") / agg.cohort_size).order_by(keys)


def day_n_retention(
    events: ir.Table, *, days: Sequence[int] = (1, 7, 30), **options: object
) -> ir.Table:
    """D1/D7/D30-style shortcuts: daily N-period retention averaged over complete cohorts."""
    if not days or min(days) < 1:
        raise ConfigError("days must be whole numbers >= 1, e.g. (1, 7, 30)")
    table = retention(events, period="day", kind="n-period", max_period=max(days), **options)  # type: ignore[arg-type]
    table = table.filter(table.period.isin(list(days)))
    return weighted_mean(table)


def repeat_within(
    events: ir.Table, *, days: Sequence[int] = (30, 90), **options: object
) -> ir.Table:
    """Repeat purchase within N days of the first order (docs/metrics.md): per N, of the
    units whose first order's day is followed by N complete days, the share with another
    order on days 1 … N after it (one row per ``period`` = N, and per ``breakdown`` when
    given), over complete cohorts. ``options`` go to :func:`retention` (``as_of``,
    ``timezone``, ``breakdown``, ``users``, ``cohort_event``…)."""
    if not days or min(days) < 1:
        raise ConfigError("days must be whole numbers >= 1, e.g. (30, 90)")
    brackets = tuple(Bracket(str(n), 1, n) for n in days)
    table = retention(events, period="day", kind="bracketed", brackets=brackets, **options)  # type: ignore[arg-type]
    return weighted_mean(table)
