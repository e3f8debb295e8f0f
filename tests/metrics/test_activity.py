"""Active users, stickiness, lifecycle insight and funnels on hand-made data."""

from __future__ import annotations

from datetime import timedelta

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.metrics import active_users, funnel, lifecycle, stickiness
from liucun.warehouse import new_engine


def _events(rows: list[tuple[str, str, str]]) -> ibis.Table:
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    return ibis.memtable(df)


ACTIVITY = _events(
    [
        # weeks (Monday): W1 = Jan 1, W2 = Jan 8, W3 = Jan 15, W4 = Jan 22
        ("a", "visit", "2024-01-01 10:00"),
        ("a", "visit", "2024-01-02 10:00"),  # W1
        ("a", "visit", "2024-01-09 10:00"),  # W2
        ("a", "visit", "2024-01-23 10:00"),  # W4
        ("b", "visit", "2024-01-03 10:00"),  # W1
        ("c", "visit", "2024-01-10 10:00"),
        ("c", "visit", "2024-01-16 10:00"),  # W2, W3
    ]
)


def test_active_users_per_day_and_week() -> None:
    daily = active_users(ACTIVITY, period="day").execute()
    assert daily.active.tolist() == [1, 1, 1, 1, 1, 1, 1]
    weekly = active_users(ACTIVITY, period="week").execute()
    assert weekly.active.tolist() == [2, 2, 1, 1]


def test_stickiness() -> None:
    row = stickiness(ACTIVITY).execute().iloc[0]
    # January: 7 active days with one user each → mean DAU 1; MAU 3
    assert (row.mean_dau, row.mau) == (1.0, 3)
    assert row.stickiness == pytest.approx(1 / 3)


def test_lifecycle_weekly() -> None:
    got = lifecycle(ACTIVITY, period="week").execute()
    got["period_start"] = pd.to_datetime(got.period_start).dt.date.astype(str)
    table = got.set_index("period_start")[["new", "returning", "resurrecting", "dormant"]]
    assert table.to_dict("index") == {
        "2024-01-01": {"new": 2, "returning": 0, "resurrecting": 0, "dormant": 0},
        "2024-01-08": {"new": 1, "returning": 1, "resurrecting": 0, "dormant": 1},  # b gone
        "2024-01-15": {"new": 0, "returning": 1, "resurrecting": 0, "dormant": 1},  # a gone
        "2024-01-22": {"new": 0, "returning": 0, "resurrecting": 1, "dormant": 1},  # c gone
    }


def test_ordered_funnel_with_window() -> None:
    ev = _events(
        [
            ("a", "visit", "2024-01-01 10:00"),
            ("a", "add_to_cart", "2024-01-01 10:05"),
            ("a", "order", "2024-01-02 09:00"),
            ("b", "visit", "2024-01-01 10:00"),
            ("b", "order", "2024-01-01 11:00"),  # no cart
            ("c", "add_to_cart", "2024-01-01 09:00"),
            ("c", "visit", "2024-01-01 10:00"),
            ("c", "order", "2024-01-01 12:00"),  # cart before the visit: not in order
            ("d", "visit", "2024-01-01 10:00"),
            ("d", "add_to_cart", "2024-01-01 10:30"),
            ("d", "order", "2024-01-20 10:00"),  # order outside the 7-day window
        ]
    )
    got = funnel(ev, ["visit", "add_to_cart", "order"], window=timedelta(days=7)).execute()
    assert got.users.tolist() == [4, 2, 1]
    assert got.conversion.tolist() == pytest.approx([1.0, 0.5, 0.25])
    assert got.drop_off.tolist() == pytest.approx([0.0, 0.5, 0.5])
    with pytest.raises(ConfigError, match="at least two steps"):
        funnel(ev, ["visit"])


def test_activity_periods_follow_the_reporting_time_zone() -> None:
    """2024-01-07 20:00 UTC is Monday 04:00 in Shanghai (UTC+8): a new week and day there."""
    ev = _events(
        [
            ("a", "visit", "2024-01-07 10:00"),  # Sunday in both zones
            ("b", "visit", "2024-01-07 20:00"),  # Sunday UTC, Monday 04:00 Shanghai
        ]
    )
    con = new_engine()  # defines the time-zone conversion the expressions use
    utc = con.execute(active_users(ev, period="week")).active.tolist()
    shanghai = con.execute(active_users(ev, period="week", timezone="Asia/Shanghai"))
    assert utc == [2]
    assert shanghai.active.tolist() == [1, 1]
    assert pd.to_datetime(shanghai.period_start).dt.date.astype(str).tolist() == [
        "2024-01-01",
        "2024-01-08",
    ]
    life = con.execute(lifecycle(ev, period="day", timezone="Asia/Shanghai"))
    assert life[["new", "dormant"]].values.tolist() == [[1, 0], [1, 1]]
    sticky = con.execute(stickiness(ev, timezone="Asia/Shanghai")).iloc[0]
    assert (sticky.mean_dau, sticky.mau) == (1.0, 2)


def test_events_liucun_writes_itself_make_nobody_active() -> None:
    """A tier review writes a tier_changed event for every member: that is not activity."""
    with_notices = _events(
        [
            ("a", "visit", "2024-01-01 10:00"),
            ("d", "tier_changed", "2024-01-02 10:00"),
            ("d", "points_silence_warning", "2024-01-09 10:00"),
            ("a", "membership_renewal_due", "2024-01-09 10:00"),
        ]
    )
    weekly = active_users(with_notices, period="week").execute()
    assert weekly.active.tolist() == [1]
    asked = active_users(with_notices, period="week", event_types=["tier_changed"]).execute()
    assert asked.active.tolist() == [1]
    phases = lifecycle(with_notices, period="week").execute()
    assert phases[["new", "returning", "resurrecting", "dormant"]].to_dict("records") == [
        {"new": 1, "returning": 0, "resurrecting": 0, "dormant": 0}
    ]  # d is never new, and a's renewal notice does not make a returning
