"""Repurchase, churn and order-value metrics (ARCHITECTURE §5), as Ibis expressions."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics._periods import days_between


def orders(
    events: ir.Table, start: datetime | None = None, end: datetime | None = None
) -> ir.Table:
    """Orders of known customers in ``[start, end)`` (either bound optional)."""
    o = events.filter((events.event_type == "order") & events.user_id.notnull())
    if start is not None:
        o = o.filter(o.ts >= start)
    if end is not None:
        o = o.filter(o.ts < end)
    return o


def repurchase_rate(
    events: ir.Table, *, start: datetime | None = None, end: datetime | None = None
) -> ir.Table:
    """Buyers with ≥ 2 orders ÷ buyers with ≥ 1 order, over ``[start, end)``.

    One row: ``buyers, repeat_buyers, rate``.
    """
    bought = orders(events, start, end)
    per_buyer = bought.group_by("user_id").aggregate(n=bought.count())
    out = per_buyer.aggregate(buyers=per_buyer.count(), repeat_buyers=(per_buyer.n >= 2).sum())
    return out.mutate(rate=out.repeat_buyers.cast("float64") / out.buyers.nullif(0))


def churn_rate(
    events: ir.Table, *, cutoff: datetime, lookback_days: int = 90, horizon_days: int = 90
) -> ir.Table:
    """Non-contractual churn: of the customers who ordered in the ``lookback_days`` before
    ``cutoff``, the share with no order in the ``horizon_days`` from ``cutoff``.

    One row: ``active, churned, rate``.
    """
    if lookback_days < 1 or horizon_days < 1:
        raise ConfigError("lookback_days and horizon_days must be at least 1")
    active = orders(events, cutoff - timedelta(days=lookback_days), cutoff)
    active = active.select("user_id").distinct()
    later = orders(events, cutoff, cutoff + timedelta(days=horizon_days))
    later = later.select("user_id").distinct()
    churned = active.anti_join(later, "user_id")
    out = active.aggregate(active=active.count()).cross_join(
        churned.aggregate(churned=churned.count())
    )
    return out.mutate(rate=out.churned.cast("float64") / out.active.nullif(0))


def order_value(
    events: ir.Table, *, start: datetime | None = None, end: datetime | None = None
) -> ir.Table:
    """Per currency: ``orders, buyers, revenue, aov`` (revenue ÷ orders) and ``arpu``
    (revenue ÷ buyers), over ``[start, end)``; refunds are not netted here."""
    bought = orders(events, start, end)
    agg = bought.group_by("currency").aggregate(
        orders=bought.count(), buyers=bought.user_id.nunique(), revenue=bought.revenue.sum()
    )
    return agg.mutate(
        aov=agg.revenue / agg.orders.nullif(0), arpu=agg.revenue / agg.buyers.nullif(0)
    ).order_by("currency")


def time_to_second_order(events: ir.Table) -> ir.Table:
    """Days from each repeat buyer's first to second order: one row with ``buyers``,
    ``repeat_buyers``, ``median_days``, ``mean_days``, ``p25_days``, ``p75_days`` and the
    share of buyers with a second order within 30, 60 and 90 days."""
    bought = orders(events)
    ranked = bought.mutate(_n=ibis.row_number().over(group_by="user_id", order_by="ts"))
    ranked = ranked.filter(ranked._n <= 1)
    pairs = ranked.group_by("user_id").aggregate(
        _first=ranked.ts.min(), _second=ranked.ts.max(), _orders=ranked.count()
    )
    days = days_between(pairs._second, pairs._first)
    pairs = pairs.mutate(_days=ibis.ifelse(pairs._orders == 2, days, ibis.null("float64")))
    gap = pairs._days
    return pairs.aggregate(
        buyers=pairs.count(),
        repeat_buyers=gap.count(),
        median_days=gap.median(),
        mean_days=gap.mean(),
        p25_days=gap.quantile(0.25),
        p75_days=gap.quantile(0.75),
        within_30d=(gap <= 30).sum().cast("float64") / pairs.count(),
        within_60d=(gap <= 60).sum().cast("float64") / pairs.count(),
        within_90d=(gap <= 90).sum().cast("float64") / pairs.count(),
    )


def ltv_cac(
    events: ir.Table, users: ir.Table, *, currency: str | None = None, as_of: datetime | None = None
) -> ir.Table:
    """Realized LTV to date and LTV/CAC by acquisition channel.

    Per channel: ``customers`` (users acquired), ``buyers``, ``revenue`` (orders minus
    refunds to ``as_of``), ``ltv`` (revenue per acquired customer), ``cac`` (mean
    acquisition cost) and ``ltv_cac``. Pass ``currency`` when revenue mixes currencies.
    ``as_of`` is an exclusive instant (a naive one is UTC); without it every event counts,
    which is the same as the data end (:func:`liucun.core.data_end`).
    """
    money = events.filter(events.event_type.isin(["order", "refund"]) & events.user_id.notnull())
    if currency is not None:
        money = money.filter(money.currency == currency)
    if as_of is not None:
        money = money.filter(money.ts < as_of)
    signed = ibis.ifelse(money.event_type == "refund", -money.revenue, money.revenue)
    per_user = money.group_by("user_id").aggregate(
        _revenue=signed.fill_null(0.0).sum(), _orders=(money.event_type == "order").sum()
    )
    base = users.select(
        "user_id",
        channel=users.acquisition_channel.fill_null("unknown"),
        _cost=users.acquisition_cost,
    )
    joined = base.left_join(per_user, base.user_id == per_user.user_id)
    agg = joined.group_by("channel").aggregate(
        customers=joined.count(),
        buyers=(joined._orders.fill_null(0) > 0).sum(),
        revenue=joined._revenue.fill_null(0.0).sum(),
        cac=joined._cost.mean(),
    )
    agg = agg.mutate(ltv=agg.revenue / agg.customers)
    return agg.mutate(ltv_cac=agg.ltv / agg.cac.nullif(0)).order_by("channel")
