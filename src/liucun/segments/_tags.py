"""Customer tags: price sensitivity, category affinity, preferred channel, B2B cadence."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics import days_between, has_deal, orders


def _top(bought: ir.Table, column: str, name: str) -> ir.Table:
    """Each user's most frequent non-null ``column`` (ties: alphabetical) and its share."""
    known = bought.filter(bought[column].notnull())
    counts = known.group_by(["user_id", column]).aggregate(_n=known.count())
    ranked = counts.mutate(
        _rank=ibis.row_number().over(
            group_by="user_id", order_by=[ibis.desc("_n"), counts[column]]
        ),
        _total=counts._n.sum().over(group_by="user_id"),
    )
    best = ranked.filter(ranked._rank == 0)
    return best.select(
        "user_id", **{name: best[column], f"{name}_share": best._n.cast("float64") / best._total}
    )


def customer_tags(
    events: ir.Table, *, as_of: datetime, price_sensitive_share: float = 0.5
) -> ir.Table:
    """Tags per buyer, from orders before ``as_of``.

    ``price_sensitivity`` is the share of orders with a discount or coupon (the order's
    ``properties``: ``discount`` > 0 or a ``coupon_code``), ``price_sensitive`` when at
    least ``price_sensitive_share``; ``top_category`` and ``preferred_channel`` with the
    share of orders in them; for B2B buyers ``account_cadence_days``, the median days
    between their account's consecutive orders.
    """
    if not 0 < price_sensitive_share <= 1:
        raise ConfigError("price_sensitive_share must be in (0, 1]")
    bought = orders(events, end=as_of)
    bought = bought.mutate(_deal=has_deal(bought.properties.fill_null("")))
    base = bought.group_by("user_id").aggregate(
        orders=bought.count(), price_sensitivity=bought._deal.cast("float64").mean()
    )
    base = base.mutate(price_sensitive=base.price_sensitivity >= price_sensitive_share)
    for column, name in (("category", "top_category"), ("channel", "preferred_channel")):
        top = _top(bought, column, name)
        joined = base.left_join(top, base.user_id == top.user_id)
        base = joined.select(*base.columns, *[c for c in top.columns if c != "user_id"])
    accounts = bought.filter(bought.account_id.notnull())
    prev = accounts.ts.lag().over(group_by="account_id", order_by="ts")
    gaps = accounts.mutate(_gap=days_between(accounts.ts, prev))
    cadence = gaps.group_by("account_id").aggregate(account_cadence_days=gaps._gap.median())
    member = (
        bought.filter(bought.account_id.notnull())
        .group_by("user_id")
        .aggregate(_account=bought.account_id.max())
    )
    member = member.join(cadence, member._account == cadence.account_id)
    joined = base.left_join(member, base.user_id == member.user_id)
    return joined.select(*base.columns, "account_cadence_days")


#: The tags :func:`tag_summary` counts, each a column of :func:`customer_tags`.
TAG_COLUMNS = ("price_sensitive", "top_category", "preferred_channel")


def tag_summary(
    events: ir.Table, *, as_of: datetime, price_sensitive_share: float = 0.5
) -> ir.Table:
    """Buyers per tag value as of ``as_of``: ``tag`` (one of :data:`TAG_COLUMNS`),
    ``value`` (as text: ``true``/``false`` for ``price_sensitive``) and ``customers``,
    by tag, then largest first. Buyers without a value (no category on any order) are
    not counted for that tag."""
    tags = customer_tags(events, as_of=as_of, price_sensitive_share=price_sensitive_share)
    parts = []
    for name in TAG_COLUMNS:
        known = tags.filter(tags[name].notnull())
        value = known[name].cast("string")
        if name == "price_sensitive":
            value = known[name].ifelse("true", "false")
        parts.append(
            known.group_by(value=value)
            .aggregate(customers=known.count())
            .mutate(tag=ibis.literal(name))
            .select("tag", "value", "customers")
        )
    summary = ibis.union(*parts)
    return summary.order_by([summary.tag, summary.customers.desc(), summary.value])
