"""The survival dataset on a tiny hand-checked shop (G = 30 days, end 2024-07-01)."""

from __future__ import annotations

from datetime import datetime

import ibis
import numpy as np
import pandas as pd
import pytest

from liucun.core import ConfigError, InvalidInput
from liucun.models.drivers import survival_dataset

END = datetime(2024, 7, 1)

#: (user, type, day, order_id, revenue, channel, properties)
EVENTS = [
    # u1: orders o1 (late, coupon), o2 (slow ticket), then 46 days of silence -> churns at o2
    ("u1", "message_sent", "2023-12-20", None, None, None, "{}"),
    ("u1", "order", "2024-01-01", "o1", 100.0, "web", '{"coupon_code":"SAVE15","discount":15}'),
    ("u1", "delivery", "2024-01-04", "o1", None, None, '{"late_days":2}'),
    ("u1", "nps_response", "2024-01-05", "o1", None, None, '{"score":9}'),
    ("u1", "message_sent", "2024-01-10", None, None, None, "{}"),
    ("u1", "message_opened", "2024-01-10", None, None, None, "{}"),
    ("u1", "order", "2024-01-15", "o2", 80.0, "app", '{"items":1}'),
    ("u1", "delivery", "2024-01-17", "o2", None, None, '{"late_days":0}'),
    ("u1", "ticket_opened", "2024-01-18", "o2", None, None, "{}"),
    ("u1", "ticket_resolved", "2024-01-21", "o2", None, None, '{"resolution_hours":60.0}'),
    ("u1", "nps_response", "2024-01-20", "o2", None, None, '{"score":4}'),
    ("u1", "message_sent", "2024-02-10", None, None, None, "{}"),  # after the churn
    ("u1", "order", "2024-03-01", "o3", 70.0, "web", "{}"),  # a win-back, not counted
    ("u1", "delivery", "2024-03-05", "o3", None, None, '{"late_days":5}'),
    # u2: two orders, the last 42 days before the end -> churns at 05-20
    ("u2", "order", "2024-05-01", "o4", 50.0, "app", "{}"),
    ("u2", "order", "2024-05-20", "o5", 60.0, "app", "{}"),
    ("u2", "ticket_opened", "2024-05-22", "o5", None, None, "{}"),
    ("u2", "ticket_resolved", "2024-05-23", "o5", None, None, '{"resolution_hours":"12.5"}'),
    # u3: orders every 24-26 days -> censored at end - G = 06-01
    ("u3", "order", "2024-03-01", "o6", 200.0, "web", "{}"),
    ("u3", "order", "2024-03-25", "o7", 10.0, "web", "{}"),
    ("u3", "order", "2024-04-20", "o8", 10.0, "web", "{}"),
    ("u3", "order", "2024-05-15", "o9", 10.0, "app", '{"discount":0}'),
    ("u3", "order", "2024-06-10", "o10", 10.0, "app", '{"coupon_code":"VIP20"}'),  # after 06-01
    # u4: first order after end - G: never observably at risk
    ("u4", "order", "2024-06-15", "o11", 30.0, "app", "{}"),
    # u5: a free one-time order -> churns at once
    ("u5", "order", "2024-02-01", "o12", 0.0, "app", "{}"),
]


@pytest.fixture
def tables() -> tuple[ibis.Table, ibis.Table]:
    frame = pd.DataFrame(
        EVENTS,
        columns=["user_id", "event_type", "ts", "order_id", "revenue", "channel", "properties"],
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True) + pd.Timedelta(hours=10)
    frame["currency"] = np.where(frame["event_type"] == "order", "CNY", None)
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u5"],
            "customer_type": ["b2c", "b2c", "b2b", "b2c"],
            "region": ["east", "west", "east", None],
            "acquisition_channel": ["organic", "social", "organic", "referral"],
        }
    )
    return ibis.memtable(frame), ibis.memtable(users)


def test_durations_churn_and_censoring(tables) -> None:  # type: ignore[no-untyped-def]
    events, users = tables
    got = survival_dataset(events, users, gap_days=30, end=END).to_pandas().set_index("user_id")
    assert sorted(got.index) == ["u1", "u2", "u3", "u5"]
    assert got["churned"].to_dict() == {"u1": True, "u2": True, "u3": False, "u5": True}
    assert got["duration_days"].to_dict() == pytest.approx(
        {"u1": 14.0, "u2": 19.0, "u3": 91.0, "u5": 0.0}  # u3: 03-01 10:00 to 06-01 00:00
    )
    assert got.loc["u3", "follow_up_end"] == pd.Timestamp("2024-06-01")
    assert got["orders"].to_dict() == {"u1": 2, "u2": 2, "u3": 4, "u5": 1}


def test_covariates_by_hand(tables) -> None:  # type: ignore[no-untyped-def]
    events, users = tables
    got = survival_dataset(events, users, gap_days=30, end=END).to_pandas().set_index("user_id")
    u1, u2, u3 = got.loc["u1"], got.loc["u2"], got.loc["u3"]
    # u1: o1 late (o3's late delivery is after the churn), o2 slow ticket, NPS 9 then 4
    assert (u1.late_deliveries, u1.late_delivery_share) == (1, 0.5)
    assert (u1.tickets, u1.ticket_share, u1.slow_ticket_share) == (1, 0.5, 0.5)
    assert u1.mean_resolution_hours == 60.0
    assert (u1.last_nps, u1.detractor_share, u1.promoter_share) == (4.0, 0.5, 0.5)
    assert u1.coupon_share == 0.5
    assert (u1.messages_sent, u1.message_open_rate) == (2, 0.5)
    assert u1.main_channel == "app"  # one web, one app: ties go alphabetically
    assert (u2.tickets, u2.slow_ticket_share, u2.mean_resolution_hours) == (1, 0.0, 12.5)
    assert np.isnan(u2.last_nps) and u2.detractor_share == 0.0
    assert np.isnan(u2.message_open_rate) and u2.messages_sent == 0
    assert u3.coupon_share == 0.0  # "discount":0 is no deal; the VIP20 order is after 06-01
    assert u3.main_channel == "web"  # web, web, web, app (o10 is after the follow-up)
    assert np.isnan(u3.mean_resolution_hours)
    # first orders 100, 50, 200, 0 (CNY): median 75
    assert got.loc["u1", "first_order_value_log2_rel"] == pytest.approx(np.log2(100 / 75))
    assert got.loc["u3", "first_order_value_log2_rel"] == pytest.approx(np.log2(200 / 75))
    assert np.isnan(got.loc["u5", "first_order_value_log2_rel"])
    assert (u3.customer_type, u3.region, u3.acquisition_channel) == ("b2b", "east", "organic")
    assert got.loc["u5", "region"] is None or pd.isna(got.loc["u5", "region"])


def test_default_end_and_gap(tables) -> None:  # type: ignore[no-untyped-def]
    events, _ = tables
    # default end: midnight after the latest event (2024-06-15) -> 2024-06-16; G = 90
    got = survival_dataset(events).to_pandas().set_index("user_id")
    assert sorted(got.index) == ["u1", "u3", "u5"]  # first orders on or before 2024-03-18
    # u1's 46-day silence no longer counts; the 107 days after the order of 03-01 do
    assert got["churned"].to_dict() == {"u1": True, "u3": False, "u5": True}
    assert got.loc["u1", "duration_days"] == pytest.approx(60.0)
    assert got.loc["u3", "follow_up_end"] == pd.Timestamp("2024-03-18")
    assert got["customer_type"].isna().all()  # no users table


def test_bad_arguments(tables) -> None:  # type: ignore[no-untyped-def]
    events, _ = tables
    with pytest.raises(ConfigError, match="gap_days must be a positive whole number"):
        survival_dataset(events, gap_days=0)
    with pytest.raises(ConfigError, match="slow_ticket_hours"):
        survival_dataset(events, slow_ticket_hours=0)
    with pytest.raises(InvalidInput, match="events is empty"):
        survival_dataset(events.filter(events.user_id == "nobody"))
