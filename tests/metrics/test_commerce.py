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
