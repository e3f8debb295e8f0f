"""Looking at what the warehouse holds: the quarantine and a summary of the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
    quarantined: int
    loads: int


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
    )
