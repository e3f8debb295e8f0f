"""Money in one reporting currency: events' amounts converted at the rate of their day.

``convert_money(events, rates, currency=…)`` returns the events with ``revenue`` in
``currency`` and ``currency`` set to it, so every money metric downstream (revenue, AOV,
ARPU, LTV/CAC, CLV, ROI) adds like with like. The amount as recorded stays in
``original_revenue`` / ``original_currency``, and ``fx_rate`` is the factor applied (1
for amounts already in ``currency``, NULL for rows without a currency) — other amounts
of the row, such as a coupon's ``discount`` property, are converted with it; storage is
never changed.

The rate of an amount is the rate of its day in the reporting time zone, or of the
nearest earlier day with a rate (weekends and holidays have no ECB rate). An amount
with no rate on or before its day is an error naming the currency, the day and the fix.
"""

from __future__ import annotations

from datetime import date, datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.core import ConfigError, InvalidInput, Settings
from liucun.metrics._periods import local_time

#: The fix a missing rate needs, in the CLI's words.
FX_FIX = "load rates with `liucun ingest fx FILE` (date,currency,rate or the ECB CSV)"


def convert_money(
    events: ir.Table,
    rates: ir.Table | None,
    *,
    currency: str | None,
    timezone: str = "UTC",
) -> ir.Table:
    """``events`` with money in ``currency`` (see the module docstring).

    ``rates`` is the ``fx_rates`` table (``date, currency, quote, rate``); only rates
    whose ``quote`` is ``currency`` are used. ``currency=None`` returns ``events``
    unchanged: amounts stay in the currency they were recorded in.
    """
    if currency is None:
        return events
    target = currency.upper()
    if "fx_rate" in events.columns:  # converted already: once is enough
        other = events.filter(events.currency.notnull() & (events.currency != target))
        if other.count().to_pyarrow().as_py():
            raise ConfigError(
                f"these events were converted into another currency than {target}; "
                "convert the events as stored instead"
            )
        return events
    # every row with a currency: an order's revenue, or a coupon's discount property
    money = events.filter(events.currency.notnull())
    foreign = money.filter(money.currency != target)
    foreign = foreign.mutate(_day=local_time(foreign.ts, timezone).date())
    spans = (
        foreign.group_by("currency")
        .aggregate(first=foreign._day.min(), last=foreign._day.max())
        .to_pandas()
    )
    extra = {"original_revenue": events.revenue, "original_currency": events.currency}
    if spans.empty:
        return events.mutate(
            **extra,
            fx_rate=ibis.ifelse(events.currency.notnull(), 1.0, ibis.null("float64")),
            currency=ibis.ifelse(events.currency.notnull(), target, events.currency),
        )
    daily = _daily_rates(_rates_frame(rates, target, list(spans.currency)), spans, target)
    table = ibis.memtable(daily)
    marked = events.mutate(_day=local_time(events.ts, timezone).date())
    joined = marked.left_join(
        table, (marked.currency == table._fx_currency) & (marked._day == table._fx_day)
    )
    rate = ibis.cases(
        (joined.currency.isnull(), ibis.null("float64")),
        (joined.currency == target, ibis.literal(1.0)),
        else_=joined._fx_rate,
    )
    out = joined.mutate(
        original_revenue=joined.revenue,
        original_currency=joined.currency,
        fx_rate=rate,
        revenue=joined.revenue * rate,
        currency=ibis.ifelse(joined.currency.notnull(), target, joined.currency),
    )
    return out.select(*events.columns, "original_revenue", "original_currency", "fx_rate")


def in_reporting_currency(
    events: ir.Table, fx_rates: ir.Table | None, settings: Settings
) -> ir.Table:
    """:func:`convert_money` into the workspace's ``[reporting] currency``, days counted in
    its ``reporting_timezone``; ``events`` unchanged when no currency is set."""
    return convert_money(
        events,
        fx_rates,
        currency=settings.reporting.currency,
        timezone=settings.reporting_timezone,
    )


def _rates_frame(rates: ir.Table | None, target: str, needed: list[str]) -> pd.DataFrame:
    """The rates into ``target`` of the ``needed`` currencies: ``currency, date, rate``."""
    if rates is None:
        return pd.DataFrame({"currency": [], "date": [], "rate": []})
    chosen = rates.filter((rates.quote == target) & rates.currency.isin(needed))
    return chosen.select("currency", "date", "rate").to_pandas()


def _daily_rates(rates: pd.DataFrame, spans: pd.DataFrame, target: str) -> pd.DataFrame:
    """One row per currency and day of its amounts' span, carrying the nearest earlier
    rate forward; raises :class:`InvalidInput` for the first day without one."""
    frames = []
    for row in spans.sort_values("currency").itertuples():
        code, first, last = str(row.currency), _as_date(row.first), _as_date(row.last)
        known = rates[rates.currency == code]
        series = pd.Series(
            known.rate.to_numpy(dtype="float64"), index=pd.to_datetime(known.date)
        ).sort_index()
        before = series[series.index <= pd.Timestamp(first)]
        if before.empty:
            _missing(code, first, target, series)
        days = pd.date_range(before.index[-1], last, freq="D")
        filled = series.reindex(series.index.union(days)).ffill().reindex(days)
        filled = filled[filled.index >= pd.Timestamp(first)]
        frames.append(
            pd.DataFrame(
                {"_fx_currency": code, "_fx_day": filled.index.date, "_fx_rate": filled.values}
            )
        )
    return pd.concat(frames, ignore_index=True)


def _missing(code: str, day: date, target: str, series: pd.Series) -> None:
    if series.empty:
        detail = f"there is no {code} rate into {target} at all"
    else:
        detail = f"the first {code} rate into {target} is on {series.index[0].date()}"
    raise InvalidInput(
        f"no FX rate for {code} on or before {day} (an amount in {code} that day must be "
        f"converted into {target}, the reporting currency; {detail}); {FX_FIX}"
    )


def _as_date(value: object) -> date:
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    raise ConfigError(f"expected a day, got {value!r}")
