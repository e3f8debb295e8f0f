"""The survival dataset of retention-driver analysis, as one Ibis expression.

One row per customer, followed from their first order:

- **churn** is the first order followed by at least ``gap_days`` days without another
  order (``gap_days`` = G, default 90, the churn horizon H of ARCHITECTURE §5): the
  customer churned *at* that order, and ``duration_days`` counts the whole days from
  the first order to it (0 for a one-time buyer who never came back; whole days keep
  the Cox fit fast on millions of customers);
- a customer with no such gap is **censored** at ``end − G``, the last moment at which
  a G-day silence could still be seen in the data; customers whose first order is after
  ``end − G`` are left out (they were never observably at risk).

A customer who returns after a long silence counts as churned at the start of it (the
return is a win-back). Covariates describe the customer's **orders up to the churn or
censoring moment** (service outcomes linked to them by ``order_id``, wherever they fall),
so nothing that happened after the churn explains it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.core import ConfigError, InvalidInput, data_end
from liucun.metrics import days_between, has_deal, orders, property_number
from liucun.models._base import as_cutoff
from liucun.segments._tags import _top

#: Default churn gap G in days (the churn horizon of ARCHITECTURE §5).
DEFAULT_GAP_DAYS = 90
#: A ticket resolved after more than this many hours is slow (the simulator's threshold).
SLOW_TICKET_HOURS = 48.0
#: Last NPS answers at or below this are detractors; at or above ``NPS_PROMOTER`` promoters.
NPS_DETRACTOR = 6
NPS_PROMOTER = 9

_USER_COLUMNS = ("customer_type", "region", "acquisition_channel")


def _default_end(events: ir.Table) -> datetime:
    """The data end (:func:`liucun.core.data_end`: midnight UTC after the latest event's
    day), as a naive cut-off."""
    latest = events.ts.max().to_pandas()
    if latest is None or pd.isna(latest):
        raise InvalidInput("events is empty; there is nothing to analyse")
    return as_cutoff(data_end(pd.Timestamp(latest).to_pydatetime()))


def _share(flag: ir.BooleanValue) -> ir.FloatingValue:
    """Mean of a flag whose NULL means no."""
    return flag.fill_null(False).cast("float64").mean()


def _by_order(events: ir.Table, event_type: str) -> ir.Table:
    """Events of one type that name an order."""
    return events.filter((events.event_type == event_type) & events.order_id.notnull())


def survival_dataset(
    events: ir.Table,
    users: ir.Table | None = None,
    *,
    gap_days: int = DEFAULT_GAP_DAYS,
    end: date | datetime | None = None,
    slow_ticket_hours: float = SLOW_TICKET_HOURS,
) -> ir.Table:
    """Time to churn and its candidate drivers, one row per customer.

    Parameters
    ----------
    events
        Canonical events, through ``liucun.warehouse.resolved_events``.
    users
        The ``users`` table, for ``customer_type``, ``region`` and
        ``acquisition_channel`` (NULL without it).
    gap_days
        G: days without an order that make a churn.
    end
        End of the data (exclusive; naive means UTC); default midnight UTC after the
        day of the latest event.
    slow_ticket_hours
        Resolution time above which a support ticket counts as slow.

    Returns
    -------
    ibis.Table
        ``user_id, first_order, follow_up_end, duration_days, churned`` and the
        covariates, over the customer's orders up to ``follow_up_end``:
        ``orders``; ``late_deliveries, late_delivery_share`` (``delivery`` events with
        ``late_days`` > 0 in their properties); ``tickets, ticket_share`` (orders with a
        ``ticket_opened``), ``slow_ticket_share`` (orders with a ticket resolved after
        ``slow_ticket_hours``), ``mean_resolution_hours`` (NULL without tickets);
        ``last_nps`` (NULL if never answered), ``detractor_share`` and
        ``promoter_share`` (orders whose NPS answer was 0–6, 9–10); ``coupon_share``
        (orders with a coupon or discount, as the price-sensitivity tag reads them);
        ``messages_sent, message_open_rate`` (messages up to ``follow_up_end``, also
        before the first order; the rate is NULL without messages); ``main_channel``;
        ``first_order_value,
        currency, first_order_value_log2_rel`` (log2 of the first order's value ÷ the
        median first order in its currency; NULL for a free first order); and
        ``customer_type, region, acquisition_channel`` from ``users``.
    """
    if isinstance(gap_days, bool) or int(gap_days) != gap_days or gap_days < 1:
        raise ConfigError(f"gap_days must be a positive whole number of days, got {gap_days!r}")
    if not slow_ticket_hours > 0:
        raise ConfigError(f"slow_ticket_hours must be > 0, got {slow_ticket_hours!r}")
    stop = as_cutoff(end) if end is not None else _default_end(events)
    bought, per = _follow_up(events, stop, int(gap_days))
    span = per.select("user_id", "first_order", "follow_up_end")
    # the customer's orders up to the churn or censoring moment
    kept = bought.join(span, "user_id")
    kept = kept.filter(kept._at <= kept.follow_up_end)
    kept = _with_order_outcomes(kept, events, slow_ticket_hours)
    out = per
    for extra in (
        _service_covariates(kept),
        _top(kept, "channel", "main_channel"),
        _message_covariates(events, span),
    ):
        joined = out.left_join(extra, "user_id")
        out = joined.select(*out.columns, *[c for c in extra.columns if c != "user_id"])
    if users is not None:
        joined = out.left_join(users.select("user_id", *_USER_COLUMNS), "user_id")
        out = joined.select(*out.columns, *_USER_COLUMNS)
    else:
        out = out.mutate(**{c: ibis.null("string") for c in _USER_COLUMNS})
    return _covariate_columns(out)


def _follow_up(events: ir.Table, stop: datetime, gap_days: int) -> tuple[ir.Table, ir.Table]:
    """The orders before ``stop`` (with the gap to the next one) and, per customer at
    risk, the first order, the churn or censoring moment, ``duration_days`` and
    ``churned``."""
    end_ts = ibis.literal(stop, type="timestamp")
    horizon = ibis.literal(stop - timedelta(days=gap_days), type="timestamp")
    bought = orders(events)
    bought = bought.mutate(_at=bought.ts.cast("timestamp"))
    bought = bought.filter(bought._at < end_ts)
    after = bought._at.lead().over(group_by="user_id", order_by="_at")
    bought = bought.mutate(_gap=days_between(ibis.coalesce(after, end_ts), bought._at))
    per = bought.group_by("user_id").aggregate(
        first_order=bought._at.min(),
        _churn_at=bought._at.min(where=bought._gap >= gap_days),
        first_order_value=bought.revenue.argmin(bought._at),
        currency=bought.currency.argmin(bought._at),
    )
    per = per.filter(per.first_order <= horizon)
    per = per.mutate(follow_up_end=ibis.coalesce(per._churn_at, horizon))
    per = per.mutate(
        duration_days=days_between(per.follow_up_end, per.first_order).floor().cast("float64"),
        churned=per._churn_at.notnull(),
    )
    return bought, per


def _with_order_outcomes(kept: ir.Table, events: ir.Table, slow_ticket_hours: float) -> ir.Table:
    """``kept`` orders with what followed each one (linked by ``order_id``, wherever it
    falls): late delivery, tickets and their resolution, the NPS answer, a deal."""
    late = _by_order(events, "delivery")
    late = late.group_by("order_id").aggregate(
        _late=(property_number(late.properties.fill_null(""), "late_days") > 0).any()
    )
    opened = _by_order(events, "ticket_opened")
    opened = opened.group_by("order_id").aggregate(_tickets=opened.count())
    resolved = _by_order(events, "ticket_resolved")
    resolved = resolved.mutate(
        _hours=property_number(resolved.properties.fill_null(""), "resolution_hours")
    )
    resolved = resolved.group_by("order_id").aggregate(
        _hours_sum=resolved._hours.sum(),
        _hours_n=resolved._hours.count(),
        _slow=(resolved._hours > slow_ticket_hours).any(),
    )
    nps = _by_order(events, "nps_response")
    nps = nps.mutate(_score=property_number(nps.properties.fill_null(""), "score"))
    nps = nps.filter(nps._score.notnull())
    nps = nps.group_by("order_id").aggregate(_nps=nps._score.argmax(nps.ts), _nps_at=nps.ts.max())
    props = kept.properties.fill_null("")
    kept = kept.mutate(_deal=has_deal(props))
    for extra in (late, opened, resolved, nps):
        joined = kept.left_join(extra, "order_id")
        kept = joined.select(*kept.columns, *[c for c in extra.columns if c != "order_id"])
    return kept


def _service_covariates(kept: ir.Table) -> ir.Table:
    """Per customer: orders, delivery, ticket, NPS and deal covariates of ``kept``."""
    return kept.group_by("user_id").aggregate(
        orders=kept.count(),
        late_deliveries=kept._late.fill_null(False).cast("int64").sum(),
        _late_share=_share(kept._late),
        tickets=kept._tickets.fill_null(0).sum().cast("int64"),
        _ticket_share=(kept._tickets.fill_null(0) > 0).cast("float64").mean(),
        slow_ticket_share=_share(kept._slow),
        _hours_sum=kept._hours_sum.sum(),
        _hours_n=kept._hours_n.sum(),
        last_nps=kept._nps.argmax(kept._nps_at),
        detractor_share=_share(kept._nps <= NPS_DETRACTOR),
        promoter_share=_share(kept._nps >= NPS_PROMOTER),
        coupon_share=kept._deal.cast("float64").mean(),
    )


def _message_covariates(events: ir.Table, span: ir.Table) -> ir.Table:
    """Messages sent and opened up to each customer's ``follow_up_end``."""
    sent = events.filter(events.event_type.isin(["message_sent", "message_opened"]))
    sent = sent.join(span, "user_id")
    sent = sent.filter(sent.ts.cast("timestamp") <= sent.follow_up_end)
    return sent.group_by("user_id").aggregate(
        messages_sent=(sent.event_type == "message_sent").sum(),
        _opened=(sent.event_type == "message_opened").sum(),
    )


def _covariate_columns(out: ir.Table) -> ir.Table:
    """The returned columns, in order, with the shares and rates derived."""
    sent_n = out.messages_sent.fill_null(0)
    median_first = out.first_order_value.median().over(group_by="currency")
    rel = out.first_order_value / median_first
    return out.select(
        "user_id",
        "first_order",
        "follow_up_end",
        "duration_days",
        "churned",
        "orders",
        "late_deliveries",
        late_delivery_share=out._late_share,
        tickets=out.tickets,
        ticket_share=out._ticket_share,
        slow_ticket_share=out.slow_ticket_share,
        mean_resolution_hours=out._hours_sum / out._hours_n.nullif(0),
        last_nps=out.last_nps,
        detractor_share=out.detractor_share,
        promoter_share=out.promoter_share,
        coupon_share=out.coupon_share,
        messages_sent=sent_n.cast("int64"),
        message_open_rate=out._opened.fill_null(0).cast("float64") / sent_n.nullif(0),
        main_channel=out.main_channel,
        first_order_value=out.first_order_value,
        currency=out.currency,
        first_order_value_log2_rel=ibis.ifelse(
            (out.first_order_value > 0) & (median_first > 0), rel.log2(), ibis.null("float64")
        ),
        customer_type=out.customer_type,
        region=out.region,
        acquisition_channel=out.acquisition_channel,
    )
