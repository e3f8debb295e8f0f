"""Customer summaries for buy-till-you-die models: frequency, recency, T, monetary value.

Computed from the warehouse as one Ibis expression, so it runs where the events live
(DuckDB or Spark) and returns one row per customer.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics import days_between


def customer_summary(
    events: ir.Table,
    *,
    calibration_end: date,
    holdout_end: date | None = None,
    observation_start: date | None = None,
    time_unit_days: float = 7.0,
    per_day: bool = True,
    event_type: str = "order",
) -> ir.Table:
    """One row per customer who bought in the calibration period.

    Parameters
    ----------
    events
        Canonical events, ideally through ``liucun.warehouse.resolved_events`` so that
        merged aliases count as one customer.
    calibration_end
        Last day (inclusive, UTC) of the calibration period.
    holdout_end
        Last day (inclusive) of the holdout period, which starts the day after
        ``calibration_end``; adds ``holdout_frequency`` and ``holdout_value``.
    observation_start
        Ignore purchases before this day (customers are then "born" at their first
        purchase on or after it).
    time_unit_days
        Length of the time unit of ``recency`` and ``T`` (7 = weeks, as in the literature).
    per_day
        Count one transaction per customer per day (values summed), as Fader, Hardie and
        Lee do for CDNOW. Otherwise every order is a transaction and times are measured
        to the second.
    event_type
        The event that counts as a purchase.

    Returns
    -------
    ibis.Table
        ``user_id, first_purchase, frequency`` (repeat transactions), ``recency`` (first to
        last purchase), ``T`` (first purchase to the end of calibration), ``monetary_value``
        (mean value of the repeat transactions; 0 without repeats), and with a holdout
        ``holdout_frequency, holdout_value``.

    Examples
    --------
    >>> from datetime import date
    >>> s = customer_summary(events, calibration_end=date(1997, 9, 30))  # doctest: +SKIP
    """
    if time_unit_days <= 0:
        raise ConfigError(f"time_unit_days must be > 0, got {time_unit_days}")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise ConfigError(
            f"holdout_end {holdout_end} must be after calibration_end {calibration_end}"
        )
    tx = _transactions(
        events, event_type=event_type, observation_start=observation_start, per_day=per_day
    )
    out = _calibration_summary(
        tx, calibration_end=calibration_end, time_unit_days=time_unit_days, per_day=per_day
    )
    if holdout_end is None:
        return out
    return _with_holdout(out, tx, calibration_end=calibration_end, holdout_end=holdout_end)


def _transactions(
    events: ir.Table, *, event_type: str, observation_start: date | None, per_day: bool
) -> ir.Table:
    """Purchases as transactions: ``user_id, _day, _value, _at`` (one per day with
    ``per_day``, values summed and ``_at`` the day's midnight; else one per order)."""
    buys = events.filter(
        (events.event_type == event_type) & events.user_id.notnull() & events.ts.notnull()
    )
    day = buys.ts.date()
    buys = buys.mutate(_day=day, _value=buys.revenue.fill_null(0.0))
    if observation_start is not None:
        buys = buys.filter(buys._day >= observation_start)
    if per_day:
        tx = buys.group_by(["user_id", "_day"]).aggregate(_value=buys._value.sum())
        return tx.mutate(_at=tx._day.cast("timestamp"))
    return buys.select("user_id", "_day", "_value", _at=buys.ts.cast("timestamp"))


def _calibration_summary(
    tx: ir.Table, *, calibration_end: date, time_unit_days: float, per_day: bool
) -> ir.Table:
    """Frequency (repeats), recency, T and the mean repeat value up to ``calibration_end``.

    With ``per_day``, times are whole days and T runs to ``calibration_end``; otherwise
    they are measured to the second and T runs to the end of that day.
    """
    end = ibis.literal(calibration_end)
    cal = tx.filter(tx._day <= end)
    per_user = cal.group_by("user_id").aggregate(
        first_purchase=cal._at.min(),
        _first_day=cal._day.min(),
        _last=cal._at.max(),
        _n=cal.count(),
        _total=cal._value.sum(),
        _first_value=cal._value.argmin(cal._at),
    )
    end_of_day = ibis.literal(calibration_end).cast("timestamp")
    if per_day:
        recency = per_user._last.delta(per_user.first_purchase, unit="day") / time_unit_days
        big_t = end.delta(per_user._first_day, unit="day") / time_unit_days
    else:
        recency = days_between(per_user._last, per_user.first_purchase) / time_unit_days
        big_t = (
            days_between(end_of_day + ibis.interval(days=1), per_user.first_purchase)
            / time_unit_days
        )
    repeats = per_user._n - 1
    return per_user.select(
        "user_id",
        "first_purchase",
        frequency=repeats,
        recency=recency.cast("float64"),
        T=big_t.cast("float64"),
        monetary_value=ibis.ifelse(
            repeats > 0, (per_user._total - per_user._first_value) / repeats, 0.0
        ),
    )


def _with_holdout(
    out: ir.Table, tx: ir.Table, *, calibration_end: date, holdout_end: date
) -> ir.Table:
    """``holdout_frequency`` and ``holdout_value``: transactions after ``calibration_end``
    up to ``holdout_end`` (0 for a customer without any)."""
    end = ibis.literal(calibration_end)
    hold = tx.filter((tx._day > end) & (tx._day <= ibis.literal(holdout_end)))
    hold = hold.group_by("user_id").aggregate(
        holdout_frequency=hold.count(), holdout_value=hold._value.sum()
    )
    joined = out.left_join(hold, "user_id")
    return joined.select(
        *out.columns,
        holdout_frequency=joined.holdout_frequency.fill_null(0),
        holdout_value=joined.holdout_value.fill_null(0.0),
    )
