"""Repurchase, churn and order value on a hand-made shop (ARCHITECTURE §5)."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.metrics import churn_rate, order_value, repurchase_rate

ORDERS = [  # user, day of 2024, revenue, currency
    ("a", "2024-01-05", 10.0, "USD"),
    ("a", "2024-02-05", 30.0, "USD"),
    ("b", "2024-01-20", 20.0, "USD"),
    ("c", "2024-03-01", 100.0, "CNY"),
    ("c", "2024-03-02", 50.0, "CNY"),
    ("d", "2023-12-01", 5.0, "USD"),
]


@pytest.fixture
def events() -> ibis.Table:
    df = pd.DataFrame(ORDERS, columns=["user_id", "ts", "revenue", "currency"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["event_type"] = "order"
    extra = pd.DataFrame(
        {
            "user_id": ["e"],
            "ts": pd.to_datetime(["2024-01-10"], utc=True),
            "revenue": [None],
            "currency": [None],
            "event_type": ["view"],
        }
    )
    return ibis.memtable(pd.concat([df, extra], ignore_index=True))


def test_repurchase_rate(events: ibis.Table) -> None:
    row = repurchase_rate(events, start=datetime(2024, 1, 1)).execute().iloc[0]
    # buyers from 2024: a (2 orders), b (1), c (2); d ordered in 2023; e only viewed
    assert (row.buyers, row.repeat_buyers) == (3, 2)
    assert row.rate == pytest.approx(2 / 3)


def test_churn_rate(events: ibis.Table) -> None:
    row = (
        churn_rate(events, cutoff=datetime(2024, 2, 1), lookback_days=45, horizon_days=90)
        .execute()
        .iloc[0]
    )
    # active in Dec 18 – Jan 31: a, b; a orders again (Feb 5), b does not
    assert (row.active, row.churned, row.rate) == (2, 1, 0.5)
    with pytest.raises(ConfigError, match="at least 1"):
        churn_rate(events, cutoff=datetime(2024, 2, 1), horizon_days=0)


def test_order_value_per_currency(events: ibis.Table) -> None:
    got = order_value(events, start=datetime(2024, 1, 1)).execute().set_index("currency")
    assert got.loc["USD", ["orders", "buyers", "revenue"]].tolist() == [3, 2, 60.0]
    assert got.loc["USD", "aov"] == pytest.approx(20.0)
    assert got.loc["USD", "arpu"] == pytest.approx(30.0)
    assert got.loc["CNY", "aov"] == pytest.approx(75.0)


def test_time_to_second_order(events: ibis.Table) -> None:
    from liucun.metrics import time_to_second_order

    row = time_to_second_order(events).execute().iloc[0]
    # a: Jan 5 → Feb 5 (31 days); c: Mar 1 → Mar 2 (1 day); b and d buy once
    assert (row.buyers, row.repeat_buyers) == (4, 2)
    assert row.mean_days == pytest.approx(16.0)
    assert row.median_days == pytest.approx(16.0)
    assert (row.within_30d, row.within_60d) == (0.25, 0.5)


def test_ltv_cac_by_channel(events: ibis.Table) -> None:
    from liucun.metrics import ltv_cac

    df = events.execute()
    refund = pd.DataFrame(
        {
            "user_id": ["a"],
            "ts": pd.to_datetime(["2024-02-06"], utc=True),
            "revenue": [10.0],
            "currency": ["USD"],
            "event_type": ["refund"],
        }
    )
    ev = ibis.memtable(pd.concat([df, refund], ignore_index=True))
    users = ibis.memtable(
        {
            "user_id": ["a", "b", "d", "e"],
            "acquisition_channel": ["paid", "paid", "organic", "organic"],
            "acquisition_cost": [10.0, 20.0, 0.0, 0.0],
        }
    )
    got = ltv_cac(ev, users, currency="USD").execute().set_index("channel")
    # paid: a 10 + 30 − 10 refund = 30, b 20 → 50 over 2 customers; CAC 15
    assert got.loc["paid", ["customers", "buyers", "revenue"]].tolist() == [2, 2, 50.0]
    assert got.loc["paid", "ltv"] == pytest.approx(25.0)
    assert got.loc["paid", "ltv_cac"] == pytest.approx(25.0 / 15.0)
    # organic: d 5 (2023), e never buys; CAC 0 → ratio undefined, not infinite
    assert got.loc["organic", "ltv"] == pytest.approx(2.5)
    assert pd.isna(got.loc["organic", "ltv_cac"])
