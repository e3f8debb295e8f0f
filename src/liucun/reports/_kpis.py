"""Headline KPIs: the numbers `liucun metrics` prints and the report's header shows."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.metrics import (
    churn_rate,
    convert_money,
    day_n_retention,
    ltv_cac,
    order_value,
    repeat_within,
    repurchase_rate,
    window_start,
)

#: How a KPI's value reads: a count, a rate (0–1), an amount of money, or a ratio.
KPI_KINDS = ("count", "rate", "money", "ratio")
#: Event types that show a customer chose to be active (messages sent *to* them do not).
ACTIVITY_EVENT_TYPES = ("visit", "search", "view", "add_to_cart", "order", "review", "share")
#: Windows (days after the first order) of the headline repeat-purchase rates.
REPEAT_WINDOWS = (30, 90)


def headline_kpis(
    events: ir.Table,
    users: ir.Table,
    *,
    as_of: datetime,
    timezone: str = "UTC",
    lookback_days: int = 90,
    horizon_days: int = 90,
    currency: str | None = None,
    fx_rates: ir.Table | None = None,
) -> pd.DataFrame:
    """The headline KPIs up to ``as_of``: one row per ``metric, by, value, kind``.

    Every window is made of whole calendar days in ``timezone`` (the reporting time
    zone) ending with the day of the last instant before ``as_of``.

    - active customers: ordered in the last ``lookback_days``;
    - D1/D7/D30 activity retention, where behaviour events (visit, view, …) exist:
      daily first-activity cohorts, active again on exactly day N, complete cohorts only;
    - repeat purchase within 30 / 90 days of the first order: of the customers whose
      first order's day is at least N days before the data end, the share with another
      order on one of the N days after it (docs/metrics.md);
    - repurchase rate over the last 365 days;
    - churn rate: customers active in the ``lookback_days`` before ``as_of -
      horizon_days`` with no order in the ``horizon_days`` since;
    - revenue, AOV and ARPU over the last 365 days: one row each per currency (the most
      ordered currency first), or, with ``currency`` (the reporting currency), one row
      each in it, every amount converted at its day's rate from ``fx_rates``
      (:func:`liucun.metrics.convert_money`); money rows name their currency in ``by``;
    - LTV/CAC per acquisition channel and over all channels (``by = "all channels"``).

    ``events`` should be the resolved events (merged identities count once).
    """
    events = events.filter(events.ts < as_of)
    events = convert_money(events, fx_rates, currency=currency, timezone=timezone)
    year_ago = window_start(as_of, 365, timezone)
    rows: list[tuple[str, str, float | None, str]] = []
    active = repurchase_rate(events, start=window_start(as_of, lookback_days, timezone))
    rows.append(
        (
            f"active customers (ordered in the last {lookback_days} days)",
            "",
            _num(active.to_pandas().buyers.iloc[0]),
            "count",
        )
    )
    for day, rate in activity_retention(events, as_of=as_of, timezone=timezone).items():
        rows.append((f"D{day} activity retention", "", rate, "rate"))
    for days, rate in repeat_purchase(events, as_of=as_of, timezone=timezone).items():
        rows.append((f"repeat purchase within {days} days of the first order", "", rate, "rate"))
    rep = repurchase_rate(events, start=year_ago).to_pandas().iloc[0]
    rows.append(("repurchase rate (last 365 days)", "", _num(rep.rate), "rate"))
    cutoff = window_start(as_of, horizon_days, timezone)
    churn = churn_rate(
        events, cutoff=cutoff, lookback_days=lookback_days, horizon_days=horizon_days
    ).to_pandas()
    rows.append(
        (
            f"churn rate (active {horizon_days} days ago, no order since)",
            "",
            _num(churn.rate.iloc[0]),
            "rate",
        )
    )
    aov = order_value(events, start=year_ago).to_pandas()
    aov = aov.sort_values(["orders", "currency"], ascending=[False, True])
    for column, label in (("aov", "AOV"), ("revenue", "revenue"), ("arpu", "ARPU")):
        for r in aov.itertuples():
            rows.append(
                (f"{label} (last 365 days)", str(r.currency), _num(getattr(r, column)), "money")
            )
    channels = ltv_cac(events, users, as_of=as_of).to_pandas()
    for r in channels.itertuples():
        rows.append(("LTV/CAC", str(r.channel), _num(r.ltv_cac), "ratio"))
    rows.append(("LTV/CAC", "all channels", overall_ltv_cac(channels), "ratio"))
    return pd.DataFrame(rows, columns=["metric", "by", "value", "kind"])


def activity_retention(
    events: ir.Table,
    *,
    as_of: datetime,
    timezone: str = "UTC",
    days: tuple[int, ...] = (1, 7, 30),
) -> dict[int, float | None]:
    """D1/D7/D30 activity retention: daily cohorts of each customer's first activity
    (any of :data:`ACTIVITY_EVENT_TYPES`), the share active again on exactly day N, over
    the complete cohorts. Empty when the events hold no behaviour besides orders (then
    activity retention would only repeat order retention)."""
    acts = events.filter(events.event_type.isin(list(ACTIVITY_EVENT_TYPES)))
    behaviour = acts.filter(acts.event_type != "order").limit(1).count().to_pyarrow().as_py()
    if not behaviour:
        return {}
    acts = acts.mutate(event_type=ibis.literal("activity"))
    table = day_n_retention(
        acts,
        days=days,
        cohort_event="activity",
        return_event="activity",
        as_of=as_of,
        timezone=timezone,
    ).to_pandas()
    got = {int(r.period): _num(r.rate) for r in table.itertuples()}
    return {d: got.get(d) for d in days}


def repeat_purchase(
    events: ir.Table,
    *,
    as_of: datetime,
    timezone: str = "UTC",
    windows: tuple[int, ...] = REPEAT_WINDOWS,
) -> dict[int, float | None]:
    """Repeat purchase within N days of the first order, per N in ``windows``.

    Of the customers whose first order's day (in ``timezone``) is followed by N complete
    days before ``as_of``, the share with another order on one of those N days (days 1 …
    N after the first order's day; a second order on the first day itself does not
    count). None when no customer's window is complete yet."""
    table = repeat_within(events, days=windows, as_of=as_of, timezone=timezone)
    got = {str(r.period): _num(r.rate) for r in table.to_pandas().itertuples()}
    return {n: got.get(str(n)) for n in windows}


def overall_ltv_cac(channels: pd.DataFrame) -> float | None:
    """LTV/CAC over all channels from :func:`liucun.metrics.ltv_cac`'s rows: total revenue
    ÷ total acquisition cost (channels without a known cost are left out)."""
    known = channels[channels.cac.notna()]
    cost = float((known.cac * known.customers).sum())
    return float(known.revenue.sum()) / cost if cost > 0 else None


def _num(value: object) -> float | None:
    """A float, or None for a missing value (NA, NaN, None)."""
    return None if pd.isna(value) else float(value)  # type: ignore[arg-type]
