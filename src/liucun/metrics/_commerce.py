"""Repurchase, churn and order-value metrics (ARCHITECTURE §5), as Ibis expressions."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis.expr.types as ir

from liucun.core import ConfigError


def _orders(events: ir.Table, start: datetime | None, end: datetime | None) -> ir.Table:
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
    orders = _orders(events, start, end)
    per_buyer = orders.group_by("user_id").aggregate(n=orders.count())
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
    active = _orders(events, cutoff - timedelta(days=lookback_days), cutoff)
    active = active.select("user_id").distinct()
    later = _orders(events, cutoff, cutoff + timedelta(days=horizon_days))
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
    orders = _orders(events, start, end)
    agg = orders.group_by("currency").aggregate(
        orders=orders.count(), buyers=orders.user_id.nunique(), revenue=orders.revenue.sum()
    )
    return agg.mutate(
        aov=agg.revenue / agg.orders.nullif(0), arpu=agg.revenue / agg.buyers.nullif(0)
    ).order_by("currency")
