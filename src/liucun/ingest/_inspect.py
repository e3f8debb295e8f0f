"""Looking at what the warehouse holds: the quarantine and a summary of the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.warehouse import Warehouse, resolved_users


def quarantined_rows(
    wh: Warehouse, *, load_id: str | None = None, reason: str | None = None, limit: int = 20
) -> pd.DataFrame:
    """Rejected rows, newest load first, then by source and line."""
    q = wh.table("quarantine")
    if load_id is not None:
        q = q.filter(q.load_id == load_id)
    if reason is not None:
        q = q.filter(q.reason_codes.contains(reason))
    q = q.order_by([q.quarantined_at.desc(), q.source, q.line]).limit(limit)
    return q.select("load_id", "source", "line", "raw", "reason_codes", "reasons").to_pandas()


@dataclass(frozen=True)
class WarehouseStatus:
    users: int
    canonical_users: int
    events: int
    first_ts: datetime | None
    last_ts: datetime | None
    events_by_type: dict[str, int]
    revenue_by_currency: dict[str, tuple[int, float]]
    #: every row ever quarantined (the history; a corrected row stays there)
    quarantined: int
    loads: int
    #: quarantined rows not fixed by a later load (see :func:`open_quarantine`)
    quarantined_open: int = 0


def warehouse_status(wh: Warehouse) -> WarehouseStatus:
    """Counts, date range, events by type and order revenue by currency."""
    ev = wh.table("events")
    span = ev.aggregate(n=ev.count(), lo=ev.ts.min(), hi=ev.ts.max()).to_pyarrow().to_pylist()[0]
    by_type = ev.group_by("event_type").aggregate(n=ev.count()).order_by("event_type")
    orders = ev.filter(ev.event_type == "order")
    money = orders.group_by("currency").aggregate(n=orders.count(), total=orders.revenue.sum())
    users = resolved_users(wh.table("users"), wh.table("identities"))
    u = users.aggregate(n=users.count(), canon=users.canonical_user_id.nunique())
    u_row = u.to_pyarrow().to_pylist()[0]
    return WarehouseStatus(
        users=int(u_row["n"]),
        canonical_users=int(u_row["canon"]),
        events=int(span["n"]),
        first_ts=span["lo"],
        last_ts=span["hi"],
        events_by_type={r["event_type"]: int(r["n"]) for r in by_type.to_pyarrow().to_pylist()},
        revenue_by_currency={
            (r["currency"] or "?"): (int(r["n"]), float(r["total"] or 0.0))
            for r in money.order_by("currency").to_pyarrow().to_pylist()
        },
        quarantined=int(wh.table("quarantine").count().to_pyarrow().as_py()),
        loads=int(wh.table("loads").count().to_pyarrow().as_py()),
        quarantined_open=int(open_quarantine(wh).count().to_pyarrow().as_py()),
    )


def open_quarantine(wh: Warehouse) -> ir.Table:
    """Quarantined rows that no later load has made good (docs/data-model.md).

    A rejected event is fixed once a later load stored an event with its ``event_id``, or,
    when the row had none, an event of the same user (``user_id`` or ``anonymous_id``)
    and event type; a rejected users row once a later load stored that ``user_id``.
    "Later" means another load, after the rejection.
    """
    q = wh.table("quarantine")
    raw = q.raw.cast("json")
    q = q.mutate(
        _event_id=_json_text(raw, "event_id"),
        _user_id=_json_text(raw, "user_id"),
        _anonymous_id=_json_text(raw, "anonymous_id"),
        _event_type=_json_text(raw, "event_type").lower(),
    )
    ev = wh.table("events").select(
        "event_id", "user_id", "anonymous_id", "event_type", e_load="load_id", e_at="ingested_at"
    )
    later = (q.load_id != ev.e_load) & (ev.e_at > q.quarantined_at)
    by_id = q.semi_join(ev, [q._event_id == ev.event_id, later])
    same_user = (q._user_id == ev.user_id) | (
        q._user_id.isnull() & (q._anonymous_id == ev.anonymous_id)
    )
    by_user = q.filter(q._event_id.isnull()).semi_join(
        ev, [same_user, q._event_type == ev.event_type, later]
    )
    users = wh.table("users").select("user_id", u_load="load_id", u_at="ingested_at")
    by_row = q.semi_join(
        users,
        [q._user_id == users.user_id, q.load_id != users.u_load, users.u_at > q.quarantined_at],
    )
    fixed = ibis.union(
        by_id.filter(by_id.target == "events"),
        by_user.filter(by_user.target == "events"),
        by_row.filter(by_row.target == "users"),
        distinct=True,
    )
    keys = ["load_id", "source", "line", "raw"]
    return q.anti_join(fixed, keys).drop("_event_id", "_user_id", "_anonymous_id", "_event_type")


def _json_text(raw: ir.JSONValue, key: str) -> ir.StringValue:
    value = raw[key]
    return value.str.fill_null(value.cast("string")).strip().nullif("")
