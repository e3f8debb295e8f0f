"""Data of the churn tests: the hand-made shop and the simulated shop's holder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import ibis
import pandas as pd

from liucun.ingest import ingest_events, ingest_users
from liucun.models.churn import ChurnDataset, ChurnModel
from liucun.warehouse import resolved_events
from liucun.workspace import Workspace

#: The cut-off of the hand-made shop.
CUTOFF = datetime(2024, 7, 1)


def _late(promised: str, delivered: str) -> str:
    return f'{{"promised_ts":"{promised}","delivered_ts":"{delivered}"}}'


COUPON = '{"coupon_code":"WELCOME10","discount":10}'
# user, anonymous_id, event_type, ts (UTC), revenue, category, channel, properties
EVENTS: list[tuple[str | None, str | None, str, str, float | None, str | None, str | None, str]] = [
    # customer a: three orders 60 days apart, a refund, late deliveries, tickets, NPS,
    # messages, visits (one anonymous, linked by a login), carts and social actions
    (
        "a",
        None,
        "order",
        "2024-01-10 10:00",
        100.0,
        "books",
        "app",
        '{"coupon_code":"WELCOME10","discount":10}',
    ),
    ("a", None, "order", "2024-03-10 10:00", 50.0, "books", "app", "{}"),
    ("a", None, "order", "2024-05-09 10:00", 30.0, "toys", "web", '{"discount":0}'),
    ("a", None, "order", "2024-07-01 00:00", 70.0, "toys", "web", "{}"),  # at the cut-off
    ("a", None, "refund", "2024-05-15 09:00", 15.0, "toys", "web", "{}"),
    ("a", None, "delivery", "2024-01-12 10:00", None, None, None, '{"late_days":0}'),
    ("a", None, "delivery", "2024-03-14 10:00", None, None, None, '{"late_days":2}'),
    (
        "a",
        None,
        "delivery",
        "2024-05-11 10:00",
        None,
        None,
        None,
        _late("2024-05-11T08:00:00Z", "2024-05-11T10:00:00Z"),
    ),
    ("a", None, "ticket_opened", "2024-05-12 08:00", None, None, None, '{"ticket_id":"T1"}'),
    ("a", None, "ticket_resolved", "2024-05-14 08:00", None, None, None, '{"ticket_id":"T1"}'),
    ("a", None, "ticket_opened", "2024-06-30 12:00", None, None, None, '{"ticket_id":"T2"}'),
    ("a", None, "ticket_resolved", "2024-07-01 06:00", None, None, None, '{"ticket_id":"T2"}'),
    ("a", None, "nps_response", "2024-03-20 10:00", None, None, None, '{"score":9}'),
    ("a", None, "nps_response", "2024-05-20 10:00", None, None, None, '{"score":3}'),
    ("a", None, "nps_response", "2024-07-02 10:00", None, None, None, '{"score":10}'),
    *[
        ("a", None, "message_sent", f"2024-{day} 09:00", None, None, None, "{}")
        for day in ("03-01", "03-15", "06-01", "06-08", "06-15", "06-22", "06-29")
    ],
    ("a", None, "message_opened", "2024-03-01 12:00", None, None, None, "{}"),
    ("a", None, "message_opened", "2024-06-08 12:00", None, None, None, "{}"),
    ("a", None, "message_clicked", "2024-06-08 12:05", None, None, None, "{}"),
    ("a", None, "message_opened", "2024-06-30 12:00", None, None, None, "{}"),
    ("a", None, "message_opened", "2024-07-01 00:00", None, None, None, "{}"),  # at the cut-off
    ("a", "dev1", "visit", "2024-05-01 10:00", None, None, "app", "{}"),  # the login
    (None, "dev1", "visit", "2024-05-02 10:00", None, None, "app", "{}"),
    ("a", None, "visit", "2024-06-20 14:00", None, None, "app", "{}"),
    *[("a", None, "view", f"2024-06-{d} 14:05", None, "toys", "app", "{}") for d in (20, 21, 22)],
    ("a", None, "view", "2024-03-01 14:05", None, "toys", "app", "{}"),  # before the 90 days
    ("a", None, "add_to_cart", "2024-05-09 09:50", None, "toys", "web", "{}"),
    ("a", None, "add_to_cart", "2024-06-20 14:10", None, "toys", "app", "{}"),
    ("a", None, "add_to_cart", "2024-06-20 14:20", None, "toys", "app", "{}"),
    ("a", None, "review", "2024-05-20 11:00", None, None, None, '{"rating":2}'),
    ("a", None, "share", "2024-03-11 11:00", None, None, None, "{}"),
    # customer b (B2B): one order five and a half days before the cut-off; the next order
    # lands exactly at the end of the label window, so b churned
    ("b", None, "order", "2024-06-25 12:00", 500.0, "office", "web", "{}"),
    ("b", None, "order", "2024-09-29 00:00", 80.0, "office", "web", "{}"),
    # c's first order is at the cut-off: not a customer yet
    ("c", None, "order", "2024-07-01 00:00", 20.0, "toys", "app", "{}"),
    # d never orders; its late visit makes the data run to October
    ("d", None, "visit", "2024-06-01 10:00", None, None, "web", "{}"),
    ("d", None, "visit", "2024-10-05 10:00", None, None, "web", "{}"),
    # e orders a minute before the label window closes: not churned
    ("e", None, "order", "2024-06-01 08:00", 40.0, "toys", "app", "{}"),
    ("e", None, "order", "2024-09-28 23:59", 40.0, "toys", "app", "{}"),
]

USERS = pd.DataFrame(
    {
        "user_id": ["a", "b", "c", "d", "e"],
        "signup_ts": [
            "2024-01-01 00:00",
            "2024-06-20 00:00",
            "2024-06-30 00:00",
            "2024-05-01 00:00",
            "2024-05-31 00:00",
        ],
        "customer_type": ["b2c", "b2b", "b2c", "b2c", "b2c"],
        "account_id": [None, "A1", None, None, None],
        "company_size": [None, "10-49", None, None, None],
        "industry": [None, "retail", None, None, None],
        "acquisition_channel": ["organic", "paid_search", "organic", "social", "organic"],
        "country": ["CN", "CN", "CN", "DE", "CN"],
    }
)


def events_frame(rows: list[tuple] | None = None) -> pd.DataFrame:  # type: ignore[type-arg]
    cols = [
        "user_id",
        "anonymous_id",
        "event_type",
        "ts",
        "revenue",
        "category",
        "channel",
        "properties",
    ]
    df = pd.DataFrame(EVENTS if rows is None else rows, columns=cols)
    df["currency"] = df["revenue"].map(lambda r: None if pd.isna(r) else "CNY")
    return df


def load(ws: Workspace, tmp: Path, events: pd.DataFrame) -> ibis.Table:
    """Ingest the users and ``events`` as CSV files; return the resolved events."""
    tmp.mkdir(parents=True, exist_ok=True)
    USERS.to_csv(tmp / "users.csv", index=False)
    events.to_csv(tmp / "events.csv", index=False)
    ingest_users(ws.warehouse, [tmp / "users.csv"])
    ingest_events(ws.warehouse, [tmp / "events.csv"])
    wh = ws.warehouse
    return resolved_events(wh.table("events"), wh.table("identities"))


@dataclass
class Shop:
    events: ibis.Table
    users: ibis.Table
    data: ChurnDataset
    model: ChurnModel
    test_cutoff: datetime


#: The simulated shop's held-out cut-off: nothing from it on is used in training.
TEST_CUTOFF = datetime(2026, 7, 1)
