"""The training frame of a past campaign: pre-campaign features, assignment, outcome.

Everything is one Ibis expression over the warehouse, so it runs where the events live.

- :func:`assignments_from_truth` and :func:`assignments_from_exposures` give one row per
  unit of the campaign: ``user_id, treated, propensity, campaign_start_ts``.
- :func:`pre_campaign_features` describes each customer from events strictly before a
  cut-off (recency, frequency, monetary value, tenure, recent activity, coupon use,
  channel, …).
- :func:`campaign_training_frame` joins them: features as of the campaign's first
  start (so no unit's features see the campaign), outcomes (orders and revenue) over
  ``window_days`` from each unit's own start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.core import ConfigError, InvalidInput
from liucun.metrics import days_between, orders
from liucun.segments import customer_tags

#: Numeric feature columns of :func:`pre_campaign_features`.
NUMERIC_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "revenue_90d",
    "orders_30d",
    "orders_90d",
    "buyer_days",
    "tenure_days",
    "visits_30d",
    "views_30d",
    "carts_30d",
    "opens_90d",
    "clicks_90d",
    "refunds",
    "tickets",
    "coupon_share",
)
#: Categorical feature columns of :func:`pre_campaign_features`.
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "acquisition_channel",
    "preferred_channel",
    "customer_type",
    "country",
)
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

#: Event counts per customer: (column, event type, days before the cut-off or None = all).
_ACTIVITY: tuple[tuple[str, str, int | None], ...] = (
    ("visits_30d", "visit", 30),
    ("views_30d", "view", 30),
    ("carts_30d", "add_to_cart", 30),
    ("opens_90d", "message_opened", 90),
    ("clicks_90d", "message_clicked", 90),
    ("refunds", "refund", None),
    ("tickets", "ticket_opened", None),
)


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def pre_campaign_features(
    events: ir.Table, units: ir.Table, *, as_of: datetime, users: ir.Table | None = None
) -> ir.Table:
    """One row per unit of ``units`` (a table with ``user_id``) with :data:`FEATURES`,
    computed only from events before ``as_of``.

    Counts are 0 and ``recency_days``, ``monetary``, ``buyer_days``, ``coupon_share`` and
    ``preferred_channel`` NULL for customers who never ordered before ``as_of``;
    ``tenure_days`` counts from sign-up (``users``; a sign-up after ``as_of`` is ignored) or
    else from the first event, and is NULL for a unit with neither before ``as_of``.
    ``coupon_share`` is the share of orders with a coupon or discount, as the
    ``price_sensitivity`` tag of :func:`liucun.segments.customer_tags`.
    """
    cut = _utc(as_of)
    at = ibis.literal(cut)
    ev = events.filter(events.user_id.notnull() & (events.ts < at))
    o = orders(ev)
    since30, since90 = (
        ibis.literal(cut - timedelta(days=30)),
        ibis.literal(cut - timedelta(days=90)),
    )
    buys = o.group_by("user_id").aggregate(
        frequency=o.count(),
        monetary=o.revenue.mean(),
        revenue_90d=ibis.ifelse(o.ts >= since90, o.revenue.fill_null(0.0), 0.0).sum(),
        orders_30d=(o.ts >= since30).cast("int64").sum(),
        orders_90d=(o.ts >= since90).cast("int64").sum(),
        _first_order=o.ts.min(),
        _last_order=o.ts.max(),
    )
    counts = {
        name: ((ev.event_type == kind) & (ev.ts >= ibis.literal(cut - timedelta(days=d))))
        if d is not None
        else (ev.event_type == kind)
        for name, kind, d in _ACTIVITY
    }
    active = ev.group_by("user_id").aggregate(
        _first_event=ev.ts.min(), **{k: v.cast("int64").sum() for k, v in counts.items()}
    )
    tags = customer_tags(events, as_of=cut).select(
        "user_id", coupon_share=ibis._.price_sensitivity, preferred_channel=ibis._.preferred_channel
    )
    base = units.select("user_id").distinct()
    frame = base
    for part in (buys, active, tags):
        joined = frame.left_join(part, frame.user_id == part.user_id)
        frame = joined.select(*frame.columns, *[c for c in part.columns if c != "user_id"])
    profile_cols = ("signup_ts", "acquisition_channel", "customer_type", "country")
    if users is not None:
        prof = users.select("user_id", *profile_cols)  # one row per user (upserted)
        joined = frame.left_join(prof, frame.user_id == prof.user_id)
        frame = joined.select(*frame.columns, *profile_cols)
    else:
        frame = frame.mutate(
            signup_ts=ibis.null("timestamp('UTC')"),
            **{c: ibis.null("string") for c in profile_cols[1:]},
        )
    signed = ibis.ifelse(frame.signup_ts < at, frame.signup_ts, ibis.null("timestamp('UTC')"))
    born = ibis.coalesce(signed, frame._first_event)
    zero = {c: frame[c].fill_null(0) for c in ("frequency", "orders_30d", "orders_90d")}
    zero |= {name: frame[name].fill_null(0) for name, _, _ in _ACTIVITY}
    return frame.select(
        "user_id",
        recency_days=days_between(at, frame._last_order),
        revenue_90d=frame.revenue_90d.fill_null(0.0),
        buyer_days=days_between(at, frame._first_order),
        tenure_days=days_between(at, born),
        monetary=frame.monetary,
        coupon_share=frame.coupon_share,
        preferred_channel=frame.preferred_channel,
        acquisition_channel=frame.acquisition_channel,
        customer_type=frame.customer_type,
        country=frame.country,
        **zero,
    ).select("user_id", *FEATURES)


def assignments_from_truth(truth: ir.Table, campaign_id: str | None = None) -> ir.Table:
    """The simulator's randomized campaign (``truth.parquet``) as assignments.

    Columns: ``user_id, treated, propensity, campaign_start_ts`` and the true effects
    ``true_effect_orders, true_effect_revenue`` (carried through the training frame).
    """
    t = truth.filter(truth.in_campaign)
    if campaign_id is not None:
        t = t.filter(t.campaign_id == campaign_id)
    return t.select(
        "user_id",
        "treated",
        "propensity",
        "campaign_start_ts",
        "true_effect_orders",
        "true_effect_revenue",
    )


def assignments_from_exposures(
    exposures: ir.Table, experiment: str, *, treatment_variants: Sequence[str] = ("treatment",)
) -> ir.Table:
    """Assignments of ``experiment`` from the exposure log (user units only).

    A unit's first exposure counts, as in :func:`liucun.experiments.first_exposures`
    (models sit left of experiments, so this does not import it). Units in one of
    ``treatment_variants`` are treated, every other variant (control, holdout) is the
    control arm; the propensity is the logged probability of the unit's variant, turned
    into the probability of treatment (``1 − probability`` for control units, which
    assumes two arms: filter the exposure log to one treatment and its control first).
    """
    if not treatment_variants:
        raise ConfigError("treatment_variants must name at least one variant")
    x = exposures.filter((exposures.experiment == experiment) & (exposures.unit_type == "user"))
    first = x.mutate(_rank=ibis.row_number().over(group_by="unit_id", order_by=["ts", "variant"]))
    first = first.filter(first._rank == 0)
    treated = first.variant.isin(list(treatment_variants))
    return first.select(
        user_id=first.unit_id,
        treated=treated,
        propensity=ibis.ifelse(treated, first.probability, 1.0 - first.probability),
        campaign_start_ts=first.ts,
    )


def campaign_training_frame(
    events: ir.Table,
    assignments: ir.Table,
    *,
    users: ir.Table | None = None,
    window_days: int = 30,
    as_of: datetime | None = None,
) -> ir.Table:
    """Features, treatment and outcome per unit of a past randomized campaign.

    Parameters
    ----------
    events
        Canonical events (ideally ``liucun.warehouse.resolved_events``).
    assignments
        ``user_id, treated, propensity, campaign_start_ts`` (see
        :func:`assignments_from_truth`, :func:`assignments_from_exposures`); other columns
        are carried through.
    users
        Canonical users, for tenure, acquisition channel, customer type and country.
    window_days
        Outcome window after each unit's ``campaign_start_ts``.
    as_of
        Cut-off of the features; default (computed here, one small query) the earliest
        ``campaign_start_ts``, so that no unit's features see the campaign.

    Returns
    -------
    ibis.Table
        The assignment columns, :data:`FEATURES`, ``outcome_orders`` and
        ``outcome_revenue`` (orders and their revenue in ``[start, start + window)``).
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ConfigError(f"window_days must be a whole number ≥ 1, got {window_days!r}")
    missing = {"user_id", "treated", "propensity", "campaign_start_ts"} - set(assignments.columns)
    if missing:
        raise InvalidInput(f"assignments lack column(s) {sorted(missing)}")
    if as_of is None:
        first = assignments.campaign_start_ts.min().execute()
        if first is None or pd.isna(first):
            raise InvalidInput("the campaign has no units (assignments are empty)")
        as_of = first.to_pydatetime() if hasattr(first, "to_pydatetime") else first
    features = pre_campaign_features(events, assignments, as_of=as_of, users=users)
    o = orders(events)
    a = assignments.select(_uid="user_id", _start="campaign_start_ts")
    within = o.join(a, o.user_id == a._uid)
    within = within.filter(
        (within.ts >= within._start) & (within.ts < within._start + ibis.interval(days=window_days))
    )
    outcome = within.group_by("user_id").aggregate(
        outcome_orders=within.count(), outcome_revenue=within.revenue.fill_null(0.0).sum()
    )
    joined = assignments.left_join(features, assignments.user_id == features.user_id)
    frame = joined.select(*assignments.columns, *FEATURES)
    joined = frame.left_join(outcome, frame.user_id == outcome.user_id)
    return joined.select(
        *frame.columns,
        outcome_orders=joined.outcome_orders.fill_null(0),
        outcome_revenue=joined.outcome_revenue.fill_null(0.0),
    ).order_by("user_id")
