"""Labels at the window's edges, the rolling cut-offs and the stacked training set."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from churn_shop import CUTOFF, TEST_CUTOFF, Shop
from hypothesis import given
from hypothesis import strategies as st

from liucun.core import ConfigError, InvalidInput
from liucun.models.churn import (
    BTYD_FEATURES,
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    build_features,
    churn_labels,
    rolling_cutoffs,
)


def test_labels_at_the_edges_of_the_window(tiny) -> None:  # type: ignore[no-untyped-def]
    """a orders exactly at the cut-off (inside), b exactly at cut-off + 90 days (outside),
    e a minute before that (inside); c's first order is at the cut-off (not a customer)."""
    events, _ = tiny
    got = churn_labels(events, as_of=CUTOFF, horizon_days=90).set_index("user_id").churned
    assert got.to_dict() == {"a": False, "b": True, "e": False}
    # one day shorter: e's order (Sep 28 23:59) falls outside too
    short = churn_labels(events, as_of=CUTOFF, horizon_days=89).set_index("user_id").churned
    assert short.to_dict() == {"a": False, "b": True, "e": True}


def test_labels_refuse_windows_past_the_data_and_odd_cut_offs(tiny) -> None:  # type: ignore[no-untyped-def]
    events, _ = tiny
    with pytest.raises(InvalidInput, match="runs past the end of the data"):
        churn_labels(events, as_of=CUTOFF, horizon_days=90, data_end=date(2024, 9, 28))
    assert len(churn_labels(events, as_of=CUTOFF, data_end=date(2024, 9, 29))) == 3
    with pytest.raises(ConfigError, match="midnight"):
        churn_labels(events, as_of=CUTOFF + timedelta(hours=1))
    with pytest.raises(ConfigError, match="horizon_days"):
        churn_labels(events, as_of=CUTOFF, horizon_days=0)


def test_rolling_cut_offs_by_hand() -> None:
    plan = rolling_cutoffs(
        datetime(2024, 1, 1, 10),
        datetime(2025, 1, 1, 7),  # rounded down to midnight
        horizon_days=90,
        step_days=30,
        n_cutoffs=4,
        min_history_days=120,
    )
    assert plan.validation == (datetime(2024, 10, 3),)  # 2025-01-01 − 90 days
    # label windows end by the validation cut-off: 90, 120, 150 days before it; the fourth
    # (180 days: 2024-04-06) has less than 120 days of history and is dropped
    assert plan.train == (datetime(2024, 5, 6), datetime(2024, 6, 5), datetime(2024, 7, 5))


@given(
    span=st.integers(200, 1500),
    horizon=st.integers(1, 200),
    step=st.integers(1, 60),
    n=st.integers(1, 10),
    n_val=st.integers(1, 4),
    history=st.integers(0, 120),
)
def test_rolling_cut_offs_keep_windows_apart(
    span: int, horizon: int, step: int, n: int, n_val: int, history: int
) -> None:
    """Every label window ends by the data end; training windows end by the first
    validation cut-off; each cut-off has the history asked for."""
    start, end = datetime(2024, 1, 1), datetime(2024, 1, 1) + timedelta(days=span)
    try:
        plan = rolling_cutoffs(
            start,
            end,
            horizon_days=horizon,
            step_days=step,
            n_cutoffs=n,
            n_validation_cutoffs=n_val,
            min_history_days=history,
        )
    except ConfigError as exc:
        assert "load more history" in str(exc)
        return
    h = timedelta(days=horizon)
    assert max(plan.validation) + h == end
    assert len(plan.validation) == n_val and 1 <= len(plan.train) <= n
    assert all(c + h <= min(plan.validation) for c in plan.train)
    assert all(c >= start + timedelta(days=history) for c in (*plan.train, *plan.validation))
    gaps = {b - a for a, b in zip(plan.train, plan.train[1:], strict=False)}
    assert gaps <= {timedelta(days=step)}


def test_rolling_cut_offs_say_when_the_data_are_too_short() -> None:
    with pytest.raises(ConfigError, match="too short"):
        rolling_cutoffs(date(2024, 1, 1), date(2024, 4, 1), horizon_days=90)
    with pytest.raises(ConfigError, match="no training cut-off fits"):
        rolling_cutoffs(date(2024, 1, 1), date(2024, 8, 1), horizon_days=90)
    with pytest.raises(ConfigError, match="step_days"):
        rolling_cutoffs(date(2024, 1, 1), date(2025, 8, 1), step_days=0)


def test_training_set_stacks_point_in_time_rows(shop: Shop) -> None:
    data = shop.data
    assert data.data_end == TEST_CUTOFF
    assert data.validation_cutoffs == (TEST_CUTOFF - timedelta(days=90),)
    assert data.train_cutoffs == tuple(
        TEST_CUTOFF - timedelta(days=d) for d in (270, 240, 210, 180)
    )
    assert data.features == (*NUMERIC_FEATURES, *BTYD_FEATURES, *CATEGORICAL_FEATURES)
    frame = data.frame
    assert set(frame["cutoff"]) == {pd.Timestamp(c) for c in data.train_cutoffs} | {
        pd.Timestamp(data.validation_cutoffs[0])
    }
    assert len(data.train) + len(data.validation) == len(frame)
    assert not frame.duplicated(["user_id", "cutoff"]).any()
    # the validation rows are exactly the features and labels as of that cut-off
    cut = data.validation_cutoffs[0]
    want = build_features(shop.events, shop.users, as_of=cut)
    labels = churn_labels(shop.events, as_of=cut)
    want = want.merge(labels, on="user_id")
    got = data.validation.drop(columns="cutoff").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)
    rates = frame.groupby("cutoff")["churned"].mean()
    assert rates.between(0.3, 0.95).all()


def test_training_set_refuses_a_data_end_past_the_data(shop: Shop) -> None:
    from liucun.models.churn import build_training_set

    with pytest.raises(ConfigError, match="after the data"):
        build_training_set(shop.events, shop.users, data_end=date(2027, 1, 1))
