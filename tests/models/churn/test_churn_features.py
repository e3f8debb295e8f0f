"""Point-in-time churn features: hand-computed values and no leakage from the future."""

from __future__ import annotations

import functools
from datetime import timedelta

import ibis
import numpy as np
import pandas as pd
import pytest
from churn_shop import CUTOFF, EVENTS, TEST_CUTOFF, Shop, events_frame
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from liucun.core import ConfigError
from liucun.models.churn import (
    BTYD_FEATURES,
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    btyd_features,
    build_features,
    churn_features,
)
from liucun.models.churn._features import tidy_features
from liucun.schema import STANDARD_EVENT_TYPES

# Customer a as of 2024-07-01 00:00 UTC, by hand (2024 is a leap year):
WANT_A = {
    "recency_days": 52 + 14 / 24,  # last order May 9 10:00
    "frequency": 3,  # the order at the cut-off does not count
    "monetary": 180.0,
    "avg_order_value": 60.0,
    "tenure_days": 172 + 14 / 24,  # first order Jan 10 10:00
    "account_age_days": 182.0,  # signed up Jan 1
    "mean_gap_days": 60.0,  # order days Jan 10, Mar 10, May 9
    "median_gap_days": 60.0,
    "std_gap_days": 0.0,
    "cv_gap": 0.0,
    "gap_ratio": (52 + 14 / 24) / 60,
    "orders_30d": 0,
    "orders_31_90d": 1,  # May 9
    "orders_91_180d": 2,  # Jan 10, Mar 10
    "order_trend": (0 + 1) / (1 / 2 + 1),
    "visits_30d": 1,
    "visits_31_90d": 2,  # May 1 and the anonymous May 2 visit, linked by the login
    "visit_trend": (1 + 1) / (2 / 2 + 1),
    "days_since_last_visit": 10 + 10 / 24,  # Jun 20 14:00
    "views_90d": 3,
    "cart_days_90d": 2,  # May 9 (ordered that day) and Jun 20 (two carts, no order)
    "abandoned_cart_days_90d": 1,
    "cart_abandon_rate_90d": 0.5,
    "refunds": 1,
    "refund_share": 15 / 180,
    "price_sensitivity": 1 / 3,  # coupon on the first order; "discount": 0 is no deal
    "n_categories": 2,
    "top_category_share": 2 / 3,
    "n_channels": 2,
    "preferred_channel_share": 2 / 3,
    "messages_sent_90d": 5,  # Jun 1 … Jun 29
    "open_rate_90d": 2 / 5,  # Jun 8, Jun 30 (the open at the cut-off does not count)
    "click_rate_90d": 1 / 5,
    "last_messages": 6,  # Jun 29 … Jun 1 and Mar 15
    "last_messages_opened": 2,
    "days_since_last_open": 0.5,
    "reviews": 1,
    "shares": 1,
    "referrals": 0,
    "deliveries": 3,
    "late_deliveries": 2,  # late_days 2 on Mar 14; delivered after promised on May 11
    "late_deliveries_90d": 1,
    "tickets": 2,
    "tickets_90d": 2,
    "open_tickets": 1,  # T2 is resolved after the cut-off
    "max_resolution_hours": 48.0,  # T1
    "last_nps": 3.0,  # the answer after the cut-off does not count
    "account_cadence_days": np.nan,
}
WANT_B = {
    "recency_days": 5.5,
    "frequency": 1,
    "monetary": 500.0,
    "tenure_days": 5.5,
    "account_age_days": 11.0,
    "median_gap_days": np.nan,
    "gap_ratio": np.nan,
    "orders_30d": 1,
    "order_trend": 2.0,
    "visit_trend": 1.0,
    "days_since_last_visit": np.nan,
    "cart_abandon_rate_90d": np.nan,
    "refunds": 0,
    "refund_share": 0.0,
    "open_rate_90d": np.nan,
    "last_messages": 0,
    "last_messages_opened": 0,
    "open_tickets": 0,
    "max_resolution_hours": np.nan,
    "last_nps": np.nan,
}


def test_hand_computed_features(tiny) -> None:  # type: ignore[no-untyped-def]
    events, users = tiny
    got = build_features(events, users, as_of=CUTOFF, btyd=False).set_index("user_id")
    assert list(got.index) == ["a", "b", "e"]  # c's first order is at the cut-off; d never buys
    assert list(got.columns) == [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    for who, want in (("a", WANT_A), ("b", WANT_B)):
        for name, value in want.items():
            np.testing.assert_allclose(
                got.loc[who, name], value, rtol=1e-9, err_msg=f"{who}.{name}"
            )
    cats = {
        who: [v if isinstance(v, str) else None for v in got.loc[who, list(CATEGORICAL_FEATURES)]]
        for who in ("a", "b")
    }
    assert cats["a"] == ["books", "app", "b2c", None, None, "organic", "CN"]
    assert cats["b"] == ["office", "web", "b2b", "10-49", "retail", "paid_search", "CN"]
    assert got.loc["e", "recency_days"] == pytest.approx(29 + 16 / 24)


def test_lookback_keeps_recent_buyers_only(tiny) -> None:  # type: ignore[no-untyped-def]
    events, users = tiny
    got = churn_features(events, users, as_of=CUTOFF, lookback_days=30).to_pandas()
    assert sorted(got.user_id) == ["b", "e"]  # a's last order is 52.6 days old
    with pytest.raises(ConfigError, match="lookback_days"):
        churn_features(events, users, as_of=CUTOFF, lookback_days=0)


def test_without_users_the_attributes_are_missing(tiny) -> None:  # type: ignore[no-untyped-def]
    events, _ = tiny
    got = build_features(events, None, as_of=CUTOFF, btyd=False).set_index("user_id")
    assert pd.isna(got.loc["a", "customer_type"])
    assert np.isnan(got.loc["a", "account_age_days"])
    assert got.loc["a", "frequency"] == 3


def test_as_of_accepts_dates_and_aware_datetimes(tiny) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timezone

    events, users = tiny
    base = build_features(events, users, as_of=CUTOFF.date(), btyd=False)
    shanghai = datetime(2024, 7, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    aware = build_features(events, users, as_of=shanghai, btyd=False)
    pd.testing.assert_frame_equal(base, aware)
    later = build_features(events, users, as_of=datetime(2024, 7, 1, 1, tzinfo=UTC), btyd=False)
    assert later.set_index("user_id").loc["a", "frequency"] == 4
    with pytest.raises(ConfigError, match="as_of must be a date"):
        churn_features(events, users, as_of="2024-07-01")  # type: ignore[arg-type]


# ---- no leakage ----------------------------------------------------------------------

_COLUMNS = {
    "event_id": "string",
    "user_id": "string",
    "anonymous_id": "string",
    "account_id": "string",
    "event_type": "string",
    "ts": "timestamp('UTC')",
    "channel": "string",
    "revenue": "float64",
    "currency": "string",
    "order_id": "string",
    "category": "string",
    "properties": "string",
}


def _table(frame: pd.DataFrame) -> ibis.Table:
    df = frame.copy()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["event_id"] = [f"E{i}" for i in range(len(df))]
    df["account_id"] = None
    df["order_id"] = None
    return ibis.memtable(df[list(_COLUMNS)], schema=_COLUMNS)


_USERS = pd.DataFrame(
    {
        "user_id": ["a", "b"],
        "customer_type": ["b2c", "b2b"],
        "signup_ts": pd.to_datetime(["2024-01-01", "2024-06-20"], utc=True),
    }
)
_PROPS = st.sampled_from(
    [
        "{}",
        '{"late_days":3}',
        '{"ticket_id":"T1"}',
        '{"ticket_id":"T2"}',
        '{"score":0}',
        '{"coupon_code":"X","discount":5}',
    ]
)
_FUTURE = st.tuples(
    st.sampled_from(["a", "b", "c", "d", "e", "new"]),
    st.sampled_from(STANDARD_EVENT_TYPES),
    st.integers(0, 200 * 86_400),  # seconds from the cut-off on: 0 is the cut-off itself
    st.one_of(st.none(), st.floats(0, 1000)),
    st.sampled_from(["toys", "books", None]),
    st.sampled_from(["app", "web", None]),
    _PROPS,
)
_SCENARIO = st.tuples(st.lists(_FUTURE, max_size=10), st.lists(st.booleans(), min_size=8))


def _prefixed(frame: pd.DataFrame, k: int, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        out[col] = out[col].map(lambda v: None if v is None or pd.isna(v) else f"s{k}:{v}")
    return out


@functools.cache
def _features_before() -> pd.DataFrame:
    """Features from the hand-made events before the cut-off only."""
    before = events_frame()
    before = before[pd.to_datetime(before["ts"]) < CUTOFF]
    got = churn_features(_table(before), ibis.memtable(_USERS), as_of=CUTOFF).to_pandas()
    return tidy_features(got)


# no shrinking: each example runs a feature query, and a failing example is printed anyway
@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios=st.lists(_SCENARIO, min_size=1, max_size=4))
def test_events_at_or_after_the_cut_off_change_no_feature(
    scenarios: list[tuple[list[tuple], list[bool]]],  # type: ignore[type-arg]
) -> None:
    """Adding events at or after the cut-off, or removing the hand-made ones there, leaves
    every feature unchanged.

    Each scenario is a copy of the hand-made shop under its own user ids (``s0:a``, …),
    so one query checks several scenarios.
    """
    rows, users, want = [], [], []
    everything = events_frame()
    for k, (future, keep) in enumerate(scenarios):
        later = everything[pd.to_datetime(everything["ts"]) >= CUTOFF]
        later = later[[keep[i % len(keep)] for i in range(len(later))]]
        added = pd.DataFrame(
            [
                (u, None, kind, CUTOFF + timedelta(seconds=s), r, c, ch, p, "CNY")
                for u, kind, s, r, c, ch, p in future
            ],
            columns=everything.columns,
        )
        before = everything[pd.to_datetime(everything["ts"]) < CUTOFF]
        mixed = pd.concat([before, later, added], ignore_index=True)
        rows.append(_prefixed(mixed, k, ("user_id", "anonymous_id")))
        users.append(_prefixed(_USERS, k, ("user_id",)))
        want.append(_prefixed(_features_before(), k, ("user_id",)))
    events = _table(pd.concat(rows, ignore_index=True))
    got = churn_features(events, ibis.memtable(pd.concat(users)), as_of=CUTOFF).to_pandas()
    expected = pd.concat(want).sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(tidy_features(got), expected)


def test_the_boundary_rows_exist() -> None:
    """The leakage test is only meaningful if the hand-made data have rows at the cut-off."""
    at_cutoff = [e for e in EVENTS if pd.Timestamp(e[3]) == pd.Timestamp(CUTOFF)]
    assert {e[2] for e in at_cutoff} == {"order", "message_opened"}


def test_simulated_features_ignore_everything_after_the_cut_off(shop: Shop) -> None:
    """On the simulated shop: features (BTYD included) from all the data equal those from
    the data cut at the cut-off."""
    cutoff = TEST_CUTOFF - timedelta(days=60)
    cut = shop.events.filter(shop.events.ts < cutoff)
    full = build_features(shop.events, shop.users, as_of=cutoff)
    trimmed = build_features(cut, shop.users, as_of=cutoff)
    assert len(full) > 500
    assert list(full.columns[-len(BTYD_FEATURES) :]) == list(BTYD_FEATURES)
    pd.testing.assert_frame_equal(full, trimmed)
    alone = btyd_features(cut, as_of=cutoff).sort_values("user_id", ignore_index=True)
    np.testing.assert_allclose(alone["p_alive"], full["p_alive"])
    assert full["p_alive"].between(0, 1).all() and (full["expected_orders"] > 0).all()
