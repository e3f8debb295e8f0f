"""Point-in-time churn features: everything known about each customer before a cut-off.

:func:`churn_features` is one Ibis expression (it runs where the events live). Every
input row it reads passes ``ts < as_of`` first, so nothing at or after the cut-off can
change a feature (tests prove it). The population is every customer with at least one
order before the cut-off (optionally only those whose last order falls in a look-back
window). :func:`btyd_features` is a separate step, because it fits a model: BG/NBD on the
customer summary as of the cut-off gives ``p_alive`` and the expected orders in the
horizon. :func:`build_features` executes both and returns one pandas row per customer.

Pass events through :func:`liucun.warehouse.resolved_events` so merged identities count
as one customer. The ``users`` attributes are the current snapshot (the users table keeps
no history); they are slow-moving descriptors (customer type, company size, industry,
acquisition channel, country, sign-up time).
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import ConfigError
from liucun.metrics import days_between, orders, property_number, property_text
from liucun.models._base import as_cutoff
from liucun.models._summary import customer_summary
from liucun.models.btyd import BetaGeoModel, ConvergenceError, FitWarning, fit_with_penalizers
from liucun.segments import customer_tags

#: Attributes of the ``users`` table used as categorical features.
USER_CATEGORICALS: tuple[str, ...] = (
    "customer_type",
    "company_size",
    "industry",
    "acquisition_channel",
    "country",
)
#: Categorical features (strings); the model encodes them with LightGBM's categorical splits.
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "top_category",
    "preferred_channel",
    *USER_CATEGORICALS,
)
#: Numeric features from :func:`churn_features`, in column order.
NUMERIC_FEATURES: tuple[str, ...] = (
    # RFM and tenure
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "account_age_days",
    # inter-purchase statistics (gaps between distinct order days)
    "mean_gap_days",
    "median_gap_days",
    "std_gap_days",
    "cv_gap",
    "gap_ratio",
    # activity trends
    "orders_30d",
    "orders_31_90d",
    "orders_91_180d",
    "order_trend",
    "visits_30d",
    "visits_31_90d",
    "visit_trend",
    "days_since_last_visit",
    # browsing and carts (last 90 days)
    "views_90d",
    "cart_days_90d",
    "abandoned_cart_days_90d",
    "cart_abandon_rate_90d",
    # refunds, coupons, breadth, channels
    "refunds",
    "refund_share",
    "price_sensitivity",
    "n_categories",
    "top_category_share",
    "n_channels",
    "preferred_channel_share",
    # message engagement
    "messages_sent_90d",
    "open_rate_90d",
    "click_rate_90d",
    "last_messages",
    "last_messages_opened",
    "days_since_last_open",
    # social
    "reviews",
    "shares",
    "referrals",
    # service experience
    "deliveries",
    "late_deliveries",
    "late_deliveries_90d",
    "tickets",
    "tickets_90d",
    "open_tickets",
    "max_resolution_hours",
    "last_nps",
    # B2B
    "account_cadence_days",
)
#: Features of the BTYD step (:func:`btyd_features`).
BTYD_FEATURES: tuple[str, ...] = ("p_alive", "expected_orders")
#: Penalizers tried in turn for the BTYD step: a short history often leaves BG/NBD's
#: dropout parameters unidentified (they run to a bound), and a small penalty fixes that.
BTYD_PENALIZERS: tuple[float, ...] = (0.0, 1e-4, 1e-3)
#: How many of the most recent messages ``last_messages`` looks at.
LAST_MESSAGES = 6


def _is_late(props: ir.StringValue) -> ir.BooleanValue:
    """A delivery is late when ``late_days`` > 0, or else when ``delivered_ts`` is after
    ``promised_ts`` (the simulator writes all three)."""
    late_days = property_number(props, "late_days")
    promised = property_text(props, "promised_ts").cast("timestamp('UTC')")
    delivered = property_text(props, "delivered_ts").cast("timestamp('UTC')")
    by_ts = (delivered > promised).fill_null(False)
    return ibis.ifelse(late_days.notnull(), late_days > 0, by_ts)


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return num.cast("float64") / den.cast("float64").nullif(0.0)


def _at_most_one(rate: ir.FloatingValue) -> ir.FloatingValue:
    """``min(rate, 1)`` keeping NULL (``least`` would turn NULL into 1 on DuckDB)."""
    return ibis.ifelse(rate > 1.0, 1.0, rate)


def _left(base: ir.Table, other: ir.Table, fill: dict[str, object] | None = None) -> ir.Table:
    """``base`` left-joined with ``other`` on ``user_id``; NULLs in ``fill`` columns replaced."""
    fill = fill or {}
    joined = base.left_join(other, base.user_id == other.user_id)
    extra = [c for c in other.columns if c != "user_id"]
    return joined.select(
        *base.columns,
        **{c: joined[c].fill_null(fill[c]) if c in fill else joined[c] for c in extra},
    )


def churn_features(
    events: ir.Table,
    users: ir.Table | None = None,
    *,
    as_of: date | datetime,
    lookback_days: int | None = None,
) -> ir.Table:
    """Point-in-time churn features per customer, from data strictly before ``as_of``.

    Parameters
    ----------
    events
        Canonical events, through :func:`liucun.warehouse.resolved_events`.
    users
        The ``users`` table, for B2B attributes, acquisition channel, country and sign-up
        time; without it those features are NULL.
    as_of
        The cut-off (a date means midnight UTC). Only rows with ``ts < as_of`` are read.
    lookback_days
        Keep only customers whose last order is within this many days before ``as_of``
        (the churn definition's "active" customers); default: every customer with an
        order before ``as_of``.

    Returns
    -------
    ibis.Table
        ``user_id`` and the columns of :data:`NUMERIC_FEATURES` and
        :data:`CATEGORICAL_FEATURES`. Day windows such as ``_30d`` end at ``as_of``;
        ``_31_90d`` covers the 60 days before those. docs/churn.md defines each one.
    """
    cutoff = as_cutoff(as_of)
    if lookback_days is not None and lookback_days < 1:
        raise ConfigError(f"lookback_days must be at least 1 (or None), got {lookback_days}")
    at = ibis.literal(cutoff).cast("timestamp")
    ev = _before_cutoff(events, cutoff)
    counts = _population(_event_counts(ev, cutoff), cutoff, lookback_days)
    out = _counted_features(counts, at)
    out = _with_sequence_features(out, ev, cutoff)
    # price sensitivity, top category/channel and their shares, B2B cadence
    out = _left(out, customer_tags(events, as_of=cutoff).drop("orders", "price_sensitive"))
    out = _with_user_attributes(out, users, at)
    return out.select("user_id", *NUMERIC_FEATURES, *CATEGORICAL_FEATURES)


def _before_cutoff(events: ir.Table, cutoff: datetime) -> ir.Table:
    """The point-in-time rule: customers' events with ``ts < cutoff``, nothing later.

    Adds ``_late`` (a late delivery, :func:`_is_late`) and ``_rev`` (revenue, 0 if NULL).
    """
    ev = events.filter(events.user_id.notnull() & events.ts.notnull() & (events.ts < cutoff))
    props = ev.properties.fill_null("")
    return ev.mutate(
        _late=ibis.ifelse(ev.event_type == "delivery", _is_late(props), False),
        _rev=ev.revenue.fill_null(0.0),
    )


def _event_counts(ev: ir.Table, cutoff: datetime) -> ir.Table:
    """One pass over the events: per customer, the counts and instants the features need.

    Columns starting with ``_`` are inputs of :func:`_counted_features`, not features.
    """
    kind, ts, is_order = ev.event_type, ev.ts, ev.event_type == "order"
    d30, d90, d180 = (ts >= cutoff - timedelta(days=days) for days in (30, 90, 180))
    return ev.group_by("user_id").aggregate(
        # RFM, tenure and the order windows
        frequency=is_order.sum(),
        _first=ts.min(where=is_order),
        _last=ts.max(where=is_order),
        monetary=ev._rev.sum(where=is_order),
        orders_30d=(is_order & d30).sum(),
        orders_31_90d=(is_order & d90 & ~d30).sum(),
        orders_91_180d=(is_order & d180 & ~d90).sum(),
        # visits and browsing
        visits_30d=((kind == "visit") & d30).sum(),
        visits_31_90d=((kind == "visit") & d90 & ~d30).sum(),
        _last_visit=ts.max(where=kind == "visit"),
        views_90d=((kind == "view") & d90).sum(),
        # refunds and breadth
        refunds=(kind == "refund").sum(),
        _refunded=ev._rev.sum(where=kind == "refund"),
        n_categories=ev.category.nunique(where=is_order),
        n_channels=ev.channel.nunique(where=is_order),
        # message engagement
        messages_sent_90d=((kind == "message_sent") & d90).sum(),
        _opened_90d=((kind == "message_opened") & d90).sum(),
        _clicked_90d=((kind == "message_clicked") & d90).sum(),
        _last_open=ts.max(where=kind == "message_opened"),
        # social
        reviews=(kind == "review").sum(),
        shares=(kind == "share").sum(),
        referrals=(kind == "referral").sum(),
        # service experience
        deliveries=(kind == "delivery").sum(),
        late_deliveries=ev._late.sum(),
        late_deliveries_90d=(ev._late & d90).sum(),
        tickets=(kind == "ticket_opened").sum(),
        tickets_90d=((kind == "ticket_opened") & d90).sum(),
    )


def _population(counts: ir.Table, cutoff: datetime, lookback_days: int | None) -> ir.Table:
    """Customers with an order before the cut-off (and within ``lookback_days`` of it)."""
    counts = counts.filter(counts.frequency > 0)
    if lookback_days is None:
        return counts
    return counts.filter(counts._last >= cutoff - timedelta(days=lookback_days))


def _counted_features(per: ir.Table, at: ir.TimestampValue) -> ir.Table:
    """The features that follow from :func:`_event_counts` alone (docs/churn.md)."""
    return per.select(
        "user_id",
        # RFM and tenure
        recency_days=days_between(at, per._last),
        frequency=per.frequency,
        monetary=per.monetary,
        avg_order_value=per.monetary / per.frequency,
        tenure_days=days_between(at, per._first),
        # activity trends
        orders_30d=per.orders_30d,
        orders_31_90d=per.orders_31_90d,
        orders_91_180d=per.orders_91_180d,
        # orders per 30 days, recent vs the 60 days before, smoothed by one order
        order_trend=(per.orders_30d + 1).cast("float64") / (per.orders_31_90d / 2.0 + 1),
        visits_30d=per.visits_30d,
        visits_31_90d=per.visits_31_90d,
        visit_trend=(per.visits_30d + 1).cast("float64") / (per.visits_31_90d / 2.0 + 1),
        days_since_last_visit=days_between(at, per._last_visit),
        # browsing
        views_90d=per.views_90d,
        # refunds and breadth
        refunds=per.refunds,
        refund_share=_ratio(per._refunded.fill_null(0.0), per.monetary),
        n_categories=per.n_categories,
        n_channels=per.n_channels,
        # message engagement
        messages_sent_90d=per.messages_sent_90d,
        open_rate_90d=_at_most_one(_ratio(per._opened_90d, per.messages_sent_90d)),
        click_rate_90d=_at_most_one(_ratio(per._clicked_90d, per.messages_sent_90d)),
        days_since_last_open=days_between(at, per._last_open),
        # social
        reviews=per.reviews,
        shares=per.shares,
        referrals=per.referrals,
        # service experience
        deliveries=per.deliveries,
        late_deliveries=per.late_deliveries,
        late_deliveries_90d=per.late_deliveries_90d,
        tickets=per.tickets,
        tickets_90d=per.tickets_90d,
    )


def _with_sequence_features(out: ir.Table, ev: ir.Table, cutoff: datetime) -> ir.Table:
    """The features that need their own pass: gaps between order days, carts per day,
    the last messages, tickets and the latest NPS answer."""
    out = _left(out, _gaps(ev))
    out = out.mutate(gap_ratio=_ratio(out.recency_days, out.median_gap_days))
    carts = _carts(ev, cutoff - timedelta(days=90))
    out = _left(out, carts, {"cart_days_90d": 0, "abandoned_cart_days_90d": 0})
    out = out.mutate(cart_abandon_rate_90d=_ratio(out.abandoned_cart_days_90d, out.cart_days_90d))
    out = _left(out, _last_messages(ev), {"last_messages": 0, "last_messages_opened": 0})
    out = _left(out, _tickets(ev), {"open_tickets": 0})
    return _left(out, _last_nps(ev))


def _with_user_attributes(out: ir.Table, users: ir.Table | None, at: ir.TimestampValue) -> ir.Table:
    """Attributes from ``users`` (:func:`_user_attributes`); NULL without a users table."""
    if users is None:
        return out.mutate(
            account_age_days=ibis.null("float64"),
            **{c: ibis.null("string") for c in USER_CATEGORICALS},
        )
    return _left(out, _user_attributes(users, at))


def _gaps(ev: ir.Table) -> ir.Table:
    """Gaps in days between a customer's distinct order days: mean, median, spread."""
    bought = orders(ev)
    days = bought.select("user_id", _day=bought.ts.date())
    days = days.distinct()
    prev = days._day.lag().over(group_by="user_id", order_by="_day")
    gaps = days.mutate(_gap=days._day.delta(prev, unit="day").cast("float64"))
    gaps = gaps.filter(gaps._gap.notnull())
    agg = gaps.group_by("user_id").aggregate(
        mean_gap_days=gaps._gap.mean(),
        median_gap_days=gaps._gap.median(),
        std_gap_days=gaps._gap.std(),  # sample std: NULL with a single gap
    )
    return agg.mutate(cv_gap=_ratio(agg.std_gap_days, agg.mean_gap_days))


def _carts(ev: ir.Table, start: datetime) -> ir.Table:
    """Days with an add-to-cart in the window, and those of them without an order."""
    recent = ev.filter(ev.event_type.isin(["add_to_cart", "order"]) & (ev.ts >= start))
    per_day = recent.group_by(["user_id", recent.ts.date().name("_day")]).aggregate(
        _cart=(recent.event_type == "add_to_cart").any(),
        _order=(recent.event_type == "order").any(),
    )
    return per_day.group_by("user_id").aggregate(
        cart_days_90d=per_day._cart.sum(),
        abandoned_cart_days_90d=(per_day._cart & ~per_day._order).sum(),
    )


def _last_messages(ev: ir.Table) -> ir.Table:
    """Of the last :data:`LAST_MESSAGES` messages sent, how many were opened.

    Counted without message ids: opens since the oldest of those messages, capped at
    their number (works for sources that do not link an open to its message).
    """
    sent = ev.filter(ev.event_type == "message_sent")
    rank = ibis.row_number().over(group_by="user_id", order_by=ibis.desc("ts"))
    sent = sent.mutate(_rank=rank)
    recent = sent.filter(sent._rank < LAST_MESSAGES)
    window = recent.group_by("user_id").aggregate(
        last_messages=recent.count(), _since=recent.ts.min()
    )
    opens = ev.filter(ev.event_type == "message_opened").select(_u="user_id", _ts="ts")
    joined = window.left_join(opens, (window.user_id == opens._u) & (opens._ts >= window._since))
    counted = joined.group_by(["user_id", "last_messages"]).aggregate(_opens=joined._ts.count())
    return counted.select(
        "user_id",
        "last_messages",
        last_messages_opened=ibis.least(counted._opens, counted.last_messages),
    )


def _tickets(ev: ir.Table) -> ir.Table:
    """Support tickets: those still open at the cut-off and the slowest resolution (hours).

    A ticket is keyed by ``properties.ticket_id`` (else its ``order_id``); its resolution
    time runs from ``ticket_opened`` to the first ``ticket_resolved`` before the cut-off.
    """

    def keyed(kind: str) -> ir.Table:
        t = ev.filter(ev.event_type == kind)
        key = ibis.coalesce(property_text(t.properties.fill_null(""), "ticket_id"), t.order_id)
        return t.select("user_id", _key=key, _ts="ts")

    opened = keyed("ticket_opened")
    opened = opened.group_by(["user_id", "_key"]).aggregate(_opened=opened._ts.min())
    resolved = keyed("ticket_resolved")
    resolved = resolved.group_by(["user_id", "_key"]).aggregate(_resolved=resolved._ts.min())
    resolved = resolved.rename(_u="user_id", _k="_key")
    pair = opened.left_join(
        resolved,
        (opened.user_id == resolved._u)
        & (opened._key == resolved._k)
        & (resolved._resolved >= opened._opened),
    )
    hours = days_between(pair._resolved, pair._opened) * 24.0
    return pair.group_by("user_id").aggregate(
        open_tickets=pair._resolved.isnull().sum(), max_resolution_hours=hours.max()
    )


def _last_nps(ev: ir.Table) -> ir.Table:
    """The score (0–10) of the customer's latest NPS answer."""
    nps = ev.filter(ev.event_type == "nps_response")
    nps = nps.mutate(_score=property_number(nps.properties.fill_null(""), "score"))
    nps = nps.filter(nps._score.notnull())
    return nps.group_by("user_id").aggregate(last_nps=nps._score.argmax(nps.ts))


def _user_attributes(users: ir.Table, at: ir.TimestampValue) -> ir.Table:
    """Categorical attributes and account age (days since sign-up) from ``users``."""
    cols = {
        c: users[c].cast("string") if c in users.columns else ibis.null("string")
        for c in USER_CATEGORICALS
    }
    age = days_between(at, users.signup_ts)
    return users.select(
        "user_id",
        account_age_days=ibis.ifelse(age >= 0, age, ibis.null("float64")),
        **cols,
    )


def btyd_features(
    events: ir.Table, *, as_of: date | datetime, horizon_days: int = 90
) -> pd.DataFrame:
    """BG/NBD ``p_alive`` and ``expected_orders`` in the next ``horizon_days``, per buyer.

    Fits :class:`~liucun.models.btyd.BetaGeoModel` on the customer summary (weekly units,
    one purchase per day) of the orders before ``as_of``, retrying with the
    :data:`BTYD_PENALIZERS` when the plain fit fails. When every fit fails, warns
    (:class:`~liucun.models.btyd.FitWarning`) and returns NULL columns, which the
    classifier treats as missing.
    """
    cutoff = as_cutoff(as_of)
    if horizon_days < 1:
        raise ConfigError(f"horizon_days must be at least 1, got {horizon_days}")
    before = events.filter(events.ts < cutoff)
    last_day = (cutoff - timedelta(microseconds=1)).date()
    summary = customer_summary(before, calibration_end=last_day, time_unit_days=7.0)
    rft = summary.select("user_id", "frequency", "recency", "T").to_pandas()
    out = pd.DataFrame({"user_id": rft["user_id"].astype(str)})
    if rft.empty:
        return out.assign(p_alive=np.float64(np.nan), expected_orders=np.float64(np.nan))
    x, tx, big_t = (rft[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    try:
        model, _ = fit_with_penalizers(
            BetaGeoModel, x, tx, big_t, penalizers=BTYD_PENALIZERS, warn=False
        )
    except ConvergenceError as exc:
        warnings.warn(
            f"BTYD features as of {cutoff:%Y-%m-%d} are missing: {exc}",
            FitWarning,
            stacklevel=2,
        )
        return out.assign(p_alive=np.nan, expected_orders=np.nan)
    out["p_alive"] = model.p_alive(x, tx, big_t)
    out["expected_orders"] = model.conditional_expected_transactions(
        horizon_days / 7.0, x, tx, big_t
    )
    return out


def build_features(
    events: ir.Table,
    users: ir.Table | None = None,
    *,
    as_of: date | datetime,
    horizon_days: int = 90,
    btyd: bool = True,
    lookback_days: int | None = None,
) -> pd.DataFrame:
    """Execute :func:`churn_features` (and :func:`btyd_features` unless ``btyd=False``).

    Returns one row per customer, sorted by ``user_id``: the numeric features as
    float64 (NaN when undefined), the categorical ones as strings (NA when unknown)
    and, with ``btyd``, ``p_alive`` and ``expected_orders``. :class:`ChurnModel` fits
    and predicts on this frame.
    """
    frame = churn_features(events, users, as_of=as_of, lookback_days=lookback_days).to_pandas()
    frame = tidy_features(frame)
    if btyd:
        extra = btyd_features(events, as_of=as_of, horizon_days=horizon_days)
        frame = frame.merge(extra, on="user_id", how="left")
    return frame


def tidy_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric features as float64 (NULL → NaN), categorical ones as strings, by user."""
    out = pd.DataFrame({"user_id": frame["user_id"].astype(str).to_numpy(dtype=object)})
    for name in NUMERIC_FEATURES:
        out[name] = pd.to_numeric(frame[name]).to_numpy(dtype=np.float64, na_value=np.nan)
    for name in CATEGORICAL_FEATURES:
        col = frame[name].astype(object)
        out[name] = col.where(col.notna(), None).to_numpy(dtype=object)
    return out.sort_values("user_id", ignore_index=True)
