"""The daily (and weekly) series the monitors watch, computed where the data lives:
retention and conversion as Ibis expressions on the warehouse, coupon cost from the
loyalty tables in state. Each returns a small pandas frame (one row per scope and day);
docs/alerts.md defines every number.

Days are calendar days of the reporting time zone, counted back from ``end`` (the day
after the last complete day): offset 1 is the last complete day, offset ``o`` the day
``o`` days before ``end``.

- **Retention** (:func:`retention_series`): a customer is *active* on a day when they
  ordered in the ``lookback`` days before it; the day's (or bucket's) retention is the
  share of the customers active at its start who order in it. With buckets of 7 days
  this is the weekly retention the forecast and the ``[targets]`` use.
- **Conversion** (:func:`conversion_series`): of the customers with a ``from`` event
  (a view) in a product line or category on a day, those with a ``to`` event (an order)
  in it that day.
- **Coupon cost** (:func:`coupon_cost_series`): the discounts booked on coupon
  redemptions per day, per currency.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import ConfigError, Hint
from liucun.metrics import period_start

#: The scope of the whole shop.
OVERALL = "overall"
#: The scope value of rows whose scope column is empty.
UNKNOWN = "unknown"


def local_midnight_utc(day: date, timezone: str) -> datetime:
    """The instant (aware UTC) the local ``day`` starts in ``timezone``."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def end_day(as_of: datetime, timezone: str) -> date:
    """The local day holding ``as_of``: the days before it are complete."""
    return as_of.astimezone(ZoneInfo(timezone)).date()


def _offsets(ts: ir.TimestampValue, end: date, timezone: str) -> ir.IntegerValue:
    """Local days from the day of ``ts`` to ``end`` (1 = the day before ``end``)."""
    day = period_start(ts, "day", timezone=timezone)
    return ibis.literal(datetime.combine(end, time())).delta(day, unit="day")


def scope_value(
    events: ir.Table, users: ir.Table | None, by: str, *, option: str
) -> tuple[ir.Table, ir.StringValue]:
    """``events`` with the column ``by`` as text: the user's value (``users``) when it is
    a user column, else the event's own (a user column missing on a user falls back to
    the event's value when the events carry it too); empty values are
    :data:`UNKNOWN`."""
    in_users = users is not None and by in users.columns and by != "user_id"
    in_events = by in events.columns
    if not in_users and not in_events:
        fields = sorted({*events.columns, *(users.columns if users is not None else ())})
        raise ConfigError(
            f"cannot split by {by!r}: it is neither an event nor a user column; "
            f"use one of {', '.join(f for f in fields if f not in ('properties',))}",
            hint=Hint(option=option, example="region", setting=f"alerts.{option}"),
        )
    if in_users:
        attrs = users.select(_su=users.user_id, _sv=users[by].cast("string"))  # type: ignore[union-attr]
        joined = events.left_join(attrs, events.user_id == attrs._su).drop("_su")
        value = joined._sv
        if in_events:
            value = ibis.coalesce(value, joined[by].cast("string"))
        return joined, value.fill_null(UNKNOWN)
    return events, events[by].cast("string").fill_null(UNKNOWN)


def retention_series(
    events: ir.Table,
    users: ir.Table | None,
    *,
    end: date,
    buckets: int,
    bucket_days: int = 1,
    lookback: int = 90,
    by: str | None = None,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Retention per scope (:data:`OVERALL`, and each value of ``by``) and bucket: one row
    per ``scope, start`` (the bucket's first day) with ``active`` (customers with an
    order in the ``lookback`` days before ``start``) and ``returning`` (those of them
    with an order in the bucket), for the ``buckets`` buckets of ``bucket_days`` days
    ending with the day before ``end``. Every bucket and scope has a row (zeros
    included)."""
    span = buckets * bucket_days
    lo = local_midnight_utc(end - timedelta(days=span + lookback + 1), timezone)
    hi = local_midnight_utc(end, timezone)
    ev = events.filter(
        (events.event_type == "order") & events.user_id.notnull() & (events.ts >= lo)
    )
    ev = ev.filter(ev.ts < hi)
    parts = [ev.select("user_id", scope=ibis.literal(OVERALL), off=_offsets(ev.ts, end, timezone))]
    if by is not None:
        joined, value = scope_value(ev, users, by, option="retention_by")
        parts.append(joined.select("user_id", scope=value, off=_offsets(joined.ts, end, timezone)))
    days = ibis.union(*parts).distinct()
    days = days.filter((days.off >= 1) & (days.off <= span + lookback))
    w = ibis.window(group_by=["scope", "user_id"], order_by=ibis.desc("off"))
    days = days.mutate(prev=days.off.lag().over(w), nxt=days.off.lead().over(w))
    # returning: the first order of a customer in a bucket follows one within lookback
    inside = days.filter(days.off <= span)
    inside = inside.mutate(k=(inside.off - 1) // bucket_days)
    firsts = inside.group_by(["scope", "user_id", "k"]).aggregate(
        prev=inside.prev.argmax(inside.off)
    )
    start_off = (firsts.k + 1) * bucket_days
    hits = firsts.filter(firsts.prev.notnull() & (firsts.prev <= start_off + lookback))
    returning = hits.group_by(["scope", "k"]).aggregate(returning=hits.count()).to_pandas()
    # active at a bucket's start (offset s): an order at offset o in (s, s + lookback];
    # an order covers s in [max(o - lookback, next order), o - 1], so counting is a sum
    # of +1 at o - 1 and -1 at max(o - lookback, next) - 1 over positions >= s
    stop = ibis.greatest(days.off - lookback, days.nxt.fill_null(-(10**9))) - 1
    plus = days.select("scope", pos=days.off - 1, delta=ibis.literal(1))
    minus = days.select("scope", pos=stop, delta=ibis.literal(-1))
    both = ibis.union(plus, minus)
    deltas = both.group_by(["scope", "pos"]).aggregate(delta=both.delta.sum()).to_pandas()
    return _bucket_frame(deltas, returning, end, buckets, bucket_days, by is not None)


def _bucket_frame(
    deltas: pd.DataFrame,
    returning: pd.DataFrame,
    end: date,
    buckets: int,
    bucket_days: int,
    split: bool,
) -> pd.DataFrame:
    scopes = sorted(set(deltas["scope"]) | set(returning["scope"]) | {OVERALL})
    if not split:
        scopes = [OVERALL]
    rows = []
    starts = [(k + 1) * bucket_days for k in range(buckets)]
    for scope in scopes:
        d = deltas[deltas["scope"] == scope].sort_values("pos", ascending=False)
        pos = d["pos"].to_numpy(dtype=np.int64)
        acc = np.cumsum(d["delta"].to_numpy(dtype=np.int64))
        r = returning[returning["scope"] == scope]
        got = dict(zip(r["k"].astype(int), r["returning"].astype(int), strict=True))
        for k, s in enumerate(starts):
            # positions are sorted descending: those >= s are a prefix
            n_ge = int(np.searchsorted(-pos, -s, side="right"))
            active = int(acc[n_ge - 1]) if n_ge > 0 else 0
            rows.append(
                {
                    "scope": scope,
                    "start": end - timedelta(days=s),
                    "active": active,
                    "returning": got.get(k, 0),
                }
            )
    frame = pd.DataFrame(rows, columns=["scope", "start", "active", "returning"])
    return frame.sort_values(["scope", "start"]).reset_index(drop=True)


def conversion_series(
    events: ir.Table,
    *,
    end: date,
    days: int,
    by: str = "category",
    from_event: str = "view",
    to_event: str = "order",
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Conversion per value of ``by`` and local day: ``scope, day, viewers`` (customers
    with a ``from_event`` in the scope that day) and ``converted`` (those of them with a
    ``to_event`` in the scope the same day), for the ``days`` days before ``end``; every
    day of every scope seen has a row."""
    if by not in events.columns:
        raise ConfigError(
            f"cannot split conversion by {by!r}: it is not an event column; use one of "
            f"{', '.join(c for c in events.columns if c not in ('properties',))}",
            hint=Hint(option="conversion_by", example="category", setting="alerts.conversion_by"),
        )
    lo = local_midnight_utc(end - timedelta(days=days), timezone)
    hi = local_midnight_utc(end, timezone)
    ev = events.filter(events.user_id.notnull() & events[by].notnull() & (events.ts >= lo))
    ev = ev.filter((ev.ts < hi) & ev.event_type.isin([from_event, to_event]))
    ev = ev.mutate(off=_offsets(ev.ts, end, timezone), scope=ev[by].cast("string"))
    seen = ev.filter(ev.event_type == from_event).select("user_id", "scope", "off").distinct()
    done = ev.filter(ev.event_type == to_event).select(
        _u="user_id", _s="scope", _o="off", _hit=ibis.literal(1)
    )
    done = done.distinct()
    j = seen.left_join(
        done, (seen.user_id == done._u) & (seen.scope == done._s) & (seen.off == done._o)
    )
    counts = (
        j.group_by(["scope", "off"])
        .aggregate(viewers=j.count(), converted=j._hit.fill_null(0).sum())
        .to_pandas()
    )
    return _daily_frame(counts, end, days, ["viewers", "converted"])


def _daily_frame(counts: pd.DataFrame, end: date, days: int, columns: list[str]) -> pd.DataFrame:
    """One row per scope and day (``scope, day`` plus ``columns``; missing days 0)."""
    scopes = sorted(set(counts["scope"])) if len(counts) else []
    grid = pd.MultiIndex.from_product([scopes, range(1, days + 1)], names=["scope", "off"])
    if len(counts):
        counts = counts.assign(off=counts["off"].astype(int)).set_index(["scope", "off"])
        frame = counts.reindex(grid, fill_value=0).reset_index()
    else:
        frame = pd.DataFrame(index=grid, columns=columns, data=0).reset_index()
    frame["day"] = [end - timedelta(days=int(o)) for o in frame["off"]]
    frame = frame.drop(columns="off")
    return frame.sort_values(["scope", "day"]).reset_index(drop=True)[["scope", "day", *columns]]


def coupon_cost_series(
    ws: Any, *, end: date, days: int, timezone: str = "UTC"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coupon cost per currency and local day for the ``days`` days before ``end``:
    ``scope`` (``currency=XXX``), ``day``, ``cost`` (discounts booked on redemptions)
    and ``redemptions``; and the redemptions themselves (``scope, day, discount``)."""
    from sqlalchemy import select

    from liucun.state import CouponRedemption

    lo = local_midnight_utc(end - timedelta(days=days), timezone)
    hi = local_midnight_utc(end, timezone)
    with ws.state.read() as s:
        rows = s.execute(
            select(
                CouponRedemption.redeemed_at, CouponRedemption.discount, CouponRedemption.currency
            ).where(CouponRedemption.redeemed_at >= lo, CouponRedemption.redeemed_at < hi)
        ).all()
    zone = ZoneInfo(timezone)
    raw = pd.DataFrame(
        {
            "scope": [f"currency={c}" for _, _, c in rows],
            "day": [
                (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone).date()
                for at, _, _ in rows
            ],
            "discount": [float(d) for _, d, _ in rows],
        },
        columns=["scope", "day", "discount"],
    )
    counts = (
        raw.assign(off=[(end - d).days for d in raw["day"]])
        .groupby(["scope", "off"], as_index=False)
        .agg(cost=("discount", "sum"), redemptions=("discount", "size"))
    )
    return _daily_frame(counts, end, days, ["cost", "redemptions"]), raw
