"""The campaign training frame: point-in-time features, per-unit outcome windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from liucun.core import ConfigError, InvalidInput
from liucun.models.uplift import (
    FEATURES,
    assignments_from_exposures,
    campaign_training_frame,
    fit_campaign_uplift,
    pre_campaign_features,
)
from liucun.schema import arrow_schema

START = datetime(2026, 7, 1, tzinfo=UTC)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _events(rows: list[tuple]) -> ibis.Table:
    schema = arrow_schema("events")
    cols: dict[str, list] = {f.name: [] for f in schema}
    for i, (user, kind, ts, revenue, channel, props) in enumerate(rows):
        values = {
            "event_id": f"e{i}",
            "user_id": user,
            "event_type": kind,
            "ts": _ts(ts),
            "revenue": revenue,
            "currency": "CNY" if revenue is not None else None,
            "channel": channel,
            "properties": props,
            "ingested_at": START,
            "load_id": "test",
        }
        for name in cols:
            cols[name].append(values.get(name))
    return ibis.memtable(pa.table(cols, schema=schema))


COUPON = '{"coupon_code": "SAVE15", "discount": 15.0}'
BEFORE = [
    ("A", "order", "2026-03-02T10:00", 100.0, "app", COUPON),
    ("A", "refund", "2026-03-10T10:00", 100.0, None, None),
    ("A", "message_opened", "2026-04-15T10:00", None, None, None),
    ("A", "visit", "2026-05-01T10:00", None, "app", None),
    ("A", "order", "2026-06-11T00:00", 50.0, "app", "{}"),
    ("A", "visit", "2026-06-20T10:00", None, "app", None),
    ("A", "order", "2026-06-30T23:00", 30.0, "web", None),
    ("B", "visit", "2026-06-25T00:00", None, "web", None),
    ("D", "order", "2026-06-01T00:00", 10.0, "web", None),
]
AFTER = [
    ("A", "visit", "2026-07-01T00:00", None, "app", None),
    ("A", "order", "2026-07-01T00:00", 20.0, "app", None),
    ("A", "order", "2026-07-30T23:59", 25.0, "app", None),
    ("A", "order", "2026-07-31T00:00", 99.0, "app", None),
    ("B", "order", "2026-07-01T03:00", 99.0, "web", None),
    ("B", "order", "2026-07-31T04:00", 40.0, "web", None),
    ("D", "order", "2026-07-02T00:00", 10.0, "web", None),
]
USERS = ibis.memtable(
    pd.DataFrame(
        {
            "user_id": ["A", "B", "C", "D"],
            "signup_ts": pd.to_datetime(
                ["2026-01-01", "2026-08-01", "2025-07-01", "2026-01-01"], utc=True
            ),
            "acquisition_channel": ["organic", "social", "paid_search", "organic"],
            "customer_type": ["b2c"] * 4,
            "country": ["CN"] * 4,
        }
    )
)
ASSIGNMENTS = ibis.memtable(
    pd.DataFrame(
        {
            "user_id": ["A", "B", "C"],
            "treated": [True, False, True],
            "propensity": [0.5, 0.5, 0.5],
            "campaign_start_ts": [START, START + timedelta(hours=5), START],
            "note": ["x", "y", "z"],
        }
    )
)


def test_frame_by_hand() -> None:
    frame = (
        campaign_training_frame(_events(BEFORE + AFTER), ASSIGNMENTS, users=USERS)
        .to_pandas()
        .set_index("user_id")
    )
    assert list(frame.index) == ["A", "B", "C"]  # D was not in the campaign
    assert list(frame.columns[:4]) == ["treated", "propensity", "campaign_start_ts", "note"]
    a, b, c = frame.loc["A"], frame.loc["B"], frame.loc["C"]
    assert (a.frequency, a.monetary, a.revenue_90d) == (3, 60.0, 80.0)
    assert (a.orders_30d, a.orders_90d, a.visits_30d, a.opens_90d, a.refunds) == (2, 2, 1, 1, 1)
    assert a.recency_days == pytest.approx(1 / 24)
    assert a.buyer_days == pytest.approx(120 + 14 / 24)  # 2026-03-02 10:00 → 07-01
    assert a.tenure_days == pytest.approx(181.0)
    assert a.coupon_share == pytest.approx(1 / 3)
    assert (a.preferred_channel, a.acquisition_channel) == ("app", "organic")
    # the start instant is inside the window, its end is not
    assert (a.outcome_orders, a.outcome_revenue) == (2, 45.0)
    # B's window starts five hours later; its sign-up after the cut-off is not used
    assert (b.frequency, b.outcome_orders, b.outcome_revenue) == (0, 1, 40.0)
    assert pd.isna(b.recency_days) and pd.isna(b.monetary) and pd.isna(b.coupon_share)
    assert b.tenure_days == pytest.approx(6.0)
    # C has no events at all
    assert (c.frequency, c.visits_30d, c.outcome_orders, c.outcome_revenue) == (0, 0, 0, 0.0)
    assert c.tenure_days == pytest.approx(365.0)


def test_features_never_see_the_campaign() -> None:
    """Everything after the cut-off can change without changing a feature."""
    before = pre_campaign_features(_events(BEFORE), ASSIGNMENTS, as_of=START, users=USERS)
    after = pre_campaign_features(_events(BEFORE + AFTER), ASSIGNMENTS, as_of=START, users=USERS)
    pd.testing.assert_frame_equal(
        before.to_pandas().sort_values("user_id").reset_index(drop=True),
        after.to_pandas().sort_values("user_id").reset_index(drop=True),
    )
    assert tuple(after.columns) == ("user_id", *FEATURES)


def test_frame_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="window_days"):
        campaign_training_frame(_events(BEFORE), ASSIGNMENTS, window_days=0)
    with pytest.raises(InvalidInput, match=r"lack column\(s\) \['propensity'\]"):
        campaign_training_frame(_events(BEFORE), ASSIGNMENTS.drop("propensity"))
    empty = ASSIGNMENTS.filter(ASSIGNMENTS.user_id == "nobody")
    with pytest.raises(InvalidInput, match="no units"):
        campaign_training_frame(_events(BEFORE), empty)
    with pytest.raises(ConfigError, match="outcome must be 'orders' or 'revenue'"):
        fit_campaign_uplift(_events(BEFORE), ASSIGNMENTS, outcome="margin")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="held_out_share"):
        fit_campaign_uplift(_events(BEFORE), ASSIGNMENTS, held_out_share=1.0)


def test_assignments_from_the_exposure_log() -> None:
    schema = arrow_schema("exposures")
    rows = [
        ("x1", "exp", "user", "U1", "treatment", 0.3, "2026-07-01T00:00"),
        ("x2", "exp", "user", "U1", "control", 0.7, "2026-07-02T00:00"),  # later: ignored
        ("x3", "exp", "user", "U2", "control", 0.7, "2026-07-01T01:00"),
        ("x4", "exp", "user", "U3", "holdout", 0.1, "2026-07-01T02:00"),
        ("x5", "other", "user", "U4", "treatment", 0.5, "2026-07-01T00:00"),
        ("x6", "exp", "account", "A1", "treatment", 0.3, "2026-07-01T00:00"),
    ]
    cols = {f.name: [] for f in schema}  # type: ignore[var-annotated]
    for eid, exp, unit_type, unit, variant, prob, ts in rows:
        values = {
            "exposure_id": eid,
            "experiment": exp,
            "unit_type": unit_type,
            "unit_id": unit,
            "variant": variant,
            "probability": prob,
            "holdout": variant == "holdout",
            "ts": _ts(ts),
            "load_id": "t",
        }
        for name in cols:
            cols[name].append(values.get(name))
    log = ibis.memtable(pa.table(cols, schema=schema))
    got = assignments_from_exposures(log, "exp").to_pandas().set_index("user_id").sort_index()
    assert got.treated.tolist() == [True, False, False]
    assert got.propensity.tolist() == pytest.approx([0.3, 0.3, 0.9])
    assert got.campaign_start_ts.iloc[0] == START
    with pytest.raises(ConfigError, match="at least one variant"):
        assignments_from_exposures(log, "exp", treatment_variants=())
