"""Lifecycle stages from each customer's own cadence, and stage transitions (hand-made)."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.segments import StageRules, lifecycle_stages, stage_transitions

AS_OF = datetime(2024, 7, 1)
ORDERS = {
    "n1": ["2024-06-20"],
    "g": ["2024-05-01", "2024-06-01", "2024-06-25"],
    "m": ["2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"],
    "s": ["2023-07-01", "2023-11-01", "2024-03-01"],  # buys every ~4 months
    "d": ["2024-01-01", "2024-01-15"],
    "dl": ["2024-05-01", "2024-05-11"],
    "n2": ["2024-04-01"],
}


@pytest.fixture
def data() -> tuple[ibis.Table, ibis.Table]:
    rows = [(u, "order", d) for u, days in ORDERS.items() for d in days]
    rows.append(("p", "visit", "2024-06-15"))
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    users = pd.DataFrame(
        {"user_id": ["p", "q"], "signup_ts": pd.to_datetime(["2024-06-01", "2024-08-01"], utc=True)}
    )
    return ibis.memtable(df), ibis.memtable(users)


def test_stages_follow_each_customers_cadence(data) -> None:  # type: ignore[no-untyped-def]
    events, users = data
    got = lifecycle_stages(events, as_of=AS_OF, users=users).execute().set_index("user_id")
    assert got.stage.to_dict() == {
        "p": "potential",  # signed up, visited, never ordered (q signs up after as_of)
        "n1": "new",  # one order 11 days ago; cadence = median of repeaters (27.5 d)
        "g": "growth",  # 3 orders, last 6 days ago
        "m": "mature",  # 5 monthly orders, last 30 days ago (cadence 30.5 d)
        "s": "growth",  # 122 days since the last order, but it buys every ~122 days
        "d": "churned",  # 168 days after a 14-day cadence
        "dl": "decline",  # 51 days after a 10-day cadence, under 90 days
        "n2": "churned",  # one order 91 days ago: > 3 × 27.5 and > 90 days
    }
    assert got.loc["s", "cadence_days"] == pytest.approx(122.0)
    assert got.loc["n1", "cadence_days"] == pytest.approx(27.5)
    assert got.loc["m", "orders"] == 5


def test_thresholds_are_configurable(data) -> None:  # type: ignore[no-untyped-def]
    events, users = data
    strict = StageRules(
        decline_factor=1.2,
        churn_factor=2.0,
        min_decline_days=0,
        min_churn_days=0,
        mature_orders=3,
        default_cadence_days=5,
    )
    got = lifecycle_stages(events, as_of=AS_OF, users=users, rules=strict).execute()
    stage = dict(zip(got.user_id, got.stage, strict=True))
    assert stage["g"] == "mature"  # 3 orders are enough now
    assert stage["n1"] == "churned"  # 11 days > 2 × the 5-day default cadence
    with pytest.raises(ConfigError, match="decline_factor < churn_factor"):
        StageRules(decline_factor=3, churn_factor=2)


def test_transitions(data) -> None:  # type: ignore[no-untyped-def]
    events, users = data
    got = stage_transitions(events, start=datetime(2024, 4, 15), end=AS_OF, users=users)
    flows = {(r.from_stage, r.to_stage): r.users for r in got.execute().itertuples()}
    assert flows[("absent", "potential")] == 1  # p signed up on June 1
    assert flows[("absent", "decline")] == 1  # dl started in May
    assert flows[("growth", "mature")] == 1  # m: 3 orders in April, 5 by July
    assert sum(flows.values()) == 8
    with pytest.raises(ConfigError, match="must be after"):
        stage_transitions(events, start=AS_OF, end=datetime(2024, 1, 1))
