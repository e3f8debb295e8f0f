"""Lifecycle stages per customer, from each customer's own purchase cadence.

potential → new → growth → mature, and decline → churned when a customer's current gap
since the last order grows long *for that customer*: a customer who buys every four
months is not declining after six weeks, and one who buys in a short spell every year (a
seasonal buyer, whose median gap is a few days) is not lost between two seasons, because
a silence no longer than one the customer has already come back from is not lateness.
docs/metrics.md has the rules; every threshold is a field of :class:`StageRules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics import days_between, orders

STAGES: tuple[str, ...] = ("potential", "new", "growth", "mature", "decline", "churned")


@dataclass(frozen=True)
class StageRules:
    """Thresholds of the lifecycle stages (days are calendar days)."""

    #: a gap longer than ``decline_factor`` × the customer's cadence (and than
    #: ``min_decline_days``) means decline
    decline_factor: float = 1.5
    min_decline_days: float = 30.0
    #: a gap longer than ``churn_factor`` × cadence (and than ``min_churn_days``) means churned
    churn_factor: float = 3.0
    min_churn_days: float = 90.0
    #: a gap must also exceed ``comeback_factor`` × the longest gap this customer has come
    #: back from to mean churned (1 × for decline): a seasonal buyer silent for eleven
    #: months, as every year, is neither
    comeback_factor: float = 1.25
    #: orders from which an active customer is mature (growth below it, new at one order)
    mature_orders: int = 4
    #: cadence of customers with a single order; None = the median cadence of repeat buyers
    default_cadence_days: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.decline_factor < self.churn_factor:
            raise ConfigError("need 1 <= decline_factor < churn_factor")
        if self.min_decline_days < 0 or self.min_churn_days < self.min_decline_days:
            raise ConfigError("need 0 <= min_decline_days <= min_churn_days")
        if self.mature_orders < 2:
            raise ConfigError("mature_orders must be at least 2")
        if not self.comeback_factor >= 1:
            raise ConfigError(
                f"comeback_factor must be at least 1 (a gap as long as one the customer came "
                f"back from is no sign of churn), got {self.comeback_factor}"
            )


def lifecycle_stages(
    events: ir.Table,
    *,
    as_of: datetime,
    users: ir.Table | None = None,
    rules: StageRules | None = None,
) -> ir.Table:
    """Stage of every customer as of ``as_of``.

    Columns: ``user_id, stage, orders, days_since_last, cadence_days, longest_gap_days``
    (the longest gap between two of the customer's orders; null with one order). Customers
    are the
    users of ``users`` (signed up before ``as_of``) and everyone with an event before it;
    those without an order are ``potential``.
    """
    rules = rules or StageRules()
    before = events.filter(events.user_id.notnull() & (events.ts < as_of))
    bought = orders(events, end=as_of)
    prev = bought.ts.lag().over(group_by="user_id", order_by="ts")
    gaps = bought.mutate(_gap=days_between(bought.ts, prev))
    per = gaps.group_by("user_id").aggregate(
        orders=gaps.count(),
        _last=gaps.ts.max(),
        _cadence=gaps._gap.median(),
        _longest=gaps._gap.max(),
    )
    at = ibis.literal(as_of).cast("timestamp")
    per = per.mutate(days_since_last=days_between(at, per._last))
    if rules.default_cadence_days is not None:
        fallback = ibis.literal(float(rules.default_cadence_days))
    else:
        fallback = per._cadence.median().as_scalar()
    cadence = per._cadence.fill_null(fallback).fill_null(30.0)
    gap = per.days_since_last
    longest = per._longest.fill_null(0.0)
    churned = (
        (gap > cadence * rules.churn_factor)
        & (gap > rules.min_churn_days)
        & (gap > longest * rules.comeback_factor)
    )
    decline = (
        (gap > cadence * rules.decline_factor) & (gap > rules.min_decline_days) & (gap > longest)
    )
    stage = ibis.cases(
        (churned, "churned"),
        (decline, "decline"),
        (per.orders >= rules.mature_orders, "mature"),
        (per.orders >= 2, "growth"),
        else_="new",
    )
    buyers = per.select(
        "user_id",
        stage=stage,
        orders="orders",
        days_since_last=gap,
        cadence_days=cadence,
        longest_gap_days=per._longest.cast("float64"),
    )
    everyone = before.select("user_id")
    if users is not None:
        signed = users.filter(users.signup_ts.isnull() | (users.signup_ts < as_of))
        everyone = everyone.union(signed.select("user_id"))
    everyone = everyone.distinct()
    quiet = everyone.anti_join(buyers, "user_id").select(
        "user_id",
        stage=ibis.literal("potential"),
        orders=ibis.literal(0).cast("int64"),
        days_since_last=ibis.null("float64"),
        cadence_days=ibis.null("float64"),
        longest_gap_days=ibis.null("float64"),
    )
    return buyers.union(quiet)


def stage_transitions(
    events: ir.Table,
    *,
    start: datetime,
    end: datetime,
    users: ir.Table | None = None,
    rules: StageRules | None = None,
) -> ir.Table:
    """Customers by (stage at ``start``, stage at ``end``), for a flow chart.

    Customers who did not exist yet at ``start`` come ``from_stage = "absent"``.
    """
    if end <= start:
        raise ConfigError(f"end {end} must be after start {start}")
    a = lifecycle_stages(events, as_of=start, users=users, rules=rules)
    b = lifecycle_stages(events, as_of=end, users=users, rules=rules)
    a = a.select(_u=a.user_id, from_stage=a.stage)
    joined = b.left_join(a, b.user_id == a._u)
    pairs = joined.select(from_stage=joined.from_stage.fill_null("absent"), to_stage=joined.stage)
    return (
        pairs.group_by(["from_stage", "to_stage"])
        .aggregate(users=pairs.count())
        .order_by(["from_stage", "to_stage"])
    )
