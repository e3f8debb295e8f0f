"""Calendar periods (day, week, month) as Ibis expressions on UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError, as_utc
from liucun.warehouse import from_utc_timestamp

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")


def check_period(period: str) -> Period:
    if period not in PERIODS:
        raise ConfigError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    return period  # type: ignore[return-value]


def local_time(ts: ir.TimestampValue, timezone: str = "UTC") -> ir.TimestampValue:
    """Wall-clock time of the instant ``ts`` in ``timezone`` (naive)."""
    if timezone == "UTC":
        return ts.cast("timestamp")
    return from_utc_timestamp(ts, timezone)


def period_start(
    ts: ir.TimestampValue, period: Period, *, week_start: int = 0, timezone: str = "UTC"
) -> ir.TimestampValue:
    """Start of the period holding ``ts`` in ``timezone``; weeks start on ``week_start``
    (0 = Monday)."""
    naive = local_time(ts, timezone)
    if period == "day":
        return naive.truncate("D")
    if period == "week":
        if not 0 <= week_start <= 6:
            raise ConfigError(f"week_start must be 0 (Monday) … 6 (Sunday), got {week_start}")
        shift = ibis.interval(days=(7 - week_start) % 7)
        return (naive + shift).truncate("W") - shift
    return naive.truncate("M")


def data_end(ts: ir.TimestampColumn) -> ir.TimestampScalar:
    """The data end of a column of instants, the Ibis twin of :func:`liucun.core.data_end`:
    the UTC midnight after the day of the latest ``ts`` (exclusive; naive UTC)."""
    return ts.max().cast("timestamp").truncate("D") + ibis.interval(days=1)


def periods_between(
    start: ir.TimestampValue, later: ir.TimestampValue, period: Period
) -> ir.IntegerValue:
    """Whole periods from period start ``start`` to period start ``later``."""
    if period == "month":
        return later.delta(start, unit="month")
    days = later.delta(start, unit="day")
    return days if period == "day" else days // 7


def shift(start: ir.TimestampValue, k: ir.IntegerValue, period: Period) -> ir.TimestampValue:
    """The start of the period ``k`` periods after period start ``start``."""
    if period == "month":
        return start + k.as_interval("M")
    return start + (k * (7 if period == "week" else 1)).as_interval("D")


def days_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    """Days from ``earlier`` to ``later`` to the second, the same on every backend.

    Both ends are truncated to whole seconds first: DuckDB counts second boundaries
    crossed while Spark measures elapsed time, which differ on fractional seconds.
    """
    a = later.cast("timestamp").truncate("s")
    b = earlier.cast("timestamp").truncate("s")
    return a.delta(b, unit="second").cast("float64") / 86400.0


def window_start(as_of: datetime, days: int, timezone: str = "UTC") -> datetime:
    """The start (aware UTC) of the ``days`` calendar days in ``timezone`` that end with
    the day holding the last instant before ``as_of``: a window of whole local days.

    In UTC with ``as_of`` at midnight this is ``as_of - days``; elsewhere the window's
    first day starts at local midnight (so a day is a day of the reporting time zone).
    """
    zone = ZoneInfo(timezone)
    last = (as_utc(as_of) - timedelta(microseconds=1)).astimezone(zone).date()
    first = last - timedelta(days=days - 1)
    return datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
