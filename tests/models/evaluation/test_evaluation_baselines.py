"""Baseline churn scores and holdout outcomes on a tiny hand-checked shop."""

from __future__ import annotations

from datetime import date

import ibis
import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.models.btyd import BetaGeoModel
from liucun.models.evaluation import (
    BASELINES,
    baseline_scores,
    btyd_p_dead,
    holdout_outcomes,
    recency_days,
)

CUTOFF = date(2024, 2, 14)
ORDERS = [
    ("u1", "2024-01-01 10:00", 10.0),
    ("u1", "2024-01-15 10:00", 20.0),
    ("u1", "2024-02-10 10:00", 30.0),
    ("u1", "2024-03-01 10:00", 40.0),  # holdout
    ("u2", "2024-01-05 10:00", 50.0),
    ("u2", "2024-03-10 10:00", 15.0),  # holdout
    ("u3", "2024-01-20 10:00", 5.0),
    ("u3", "2024-02-01 10:00", 5.0),
    ("u4", "2024-03-01 10:00", 99.0),  # first order after the cut-off
]
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture
def events() -> ibis.Table:
    frame = pd.DataFrame(ORDERS, columns=["user_id", "ts", "revenue"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["event_type"] = "order"
    return ibis.memtable(frame)


def test_baseline_scores_by_hand(events: ibis.Table) -> None:
    model = BetaGeoModel.from_params(PUBLISHED)
    got = baseline_scores(events, cutoff=CUTOFF, model=model).set_index("user_id")
    assert list(got.index) == ["u1", "u2", "u3"]  # u4 had not bought yet
    assert set(BASELINES) <= set(got.columns)
    # days from the last order's day to the cut-off day
    assert got["recency_days"].to_dict() == pytest.approx({"u1": 4.0, "u2": 40.0, "u3": 13.0})
    # RFM quintiles on 3 customers (rank * 5 // 3 + 1): R u2 1, u3 2, u1 4; F u2 1, u3 2,
    # u1 4; M (60, 50, 10) u3 1, u2 2, u1 4 -> 15 - (R + F + M)
    assert got["rfm_score"].to_dict() == {"u1": 3, "u2": 11, "u3": 10}
    want = 1 - model.p_alive(got["frequency"], got["recency"], got["T"])
    np.testing.assert_allclose(got["btyd_p_dead"], want, rtol=1e-12)
    assert got.loc["u2", "btyd_p_dead"] == 0.0  # no repeat purchase: BG/NBD says alive


def test_recency_and_p_dead_from_a_summary() -> None:
    summary = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.0], "T": [5.0, 4.0]})
    np.testing.assert_allclose(recency_days(summary), [35.0, 7.0])
    np.testing.assert_allclose(recency_days(summary, time_unit_days=1), [5.0, 1.0])
    model = BetaGeoModel.from_params(PUBLISHED)
    np.testing.assert_allclose(
        btyd_p_dead(summary, model), 1 - model.p_alive([0, 2], [0.0, 3.0], [5.0, 4.0])
    )
    with pytest.raises(InvalidInput, match=r"lacks column\(s\) \['T'\].*customer_summary"):
        recency_days(summary.drop(columns=["T"]))


def test_holdout_outcomes(events: ibis.Table) -> None:
    got = holdout_outcomes(events, cutoff=CUTOFF, horizon_days=30, data_end=date(2024, 3, 31))
    assert got.to_dict("list") == {
        "user_id": ["u1", "u2", "u3"],
        "holdout_orders": [1, 1, 0],
        "holdout_spend": [40.0, 15.0, 0.0],
        "churned": [False, False, True],
    }
    # a shorter horizon misses u2's order on March 10
    short = holdout_outcomes(events, cutoff=CUTOFF, horizon_days=20)
    assert short["churned"].tolist() == [False, True, True]


def test_holdout_past_the_data_is_refused(events: ibis.Table) -> None:
    with pytest.raises(InvalidInput, match=r"runs past the end of the data \(2024-03-10\)"):
        holdout_outcomes(events, cutoff=CUTOFF, horizon_days=30)
    with pytest.raises(InvalidInput, match="horizon_days"):
        holdout_outcomes(events, cutoff=CUTOFF, horizon_days=0)
    with pytest.raises(InvalidInput, match="no customer bought on or before 2023-01-01"):
        baseline_scores(events, cutoff=date(2023, 1, 1))
