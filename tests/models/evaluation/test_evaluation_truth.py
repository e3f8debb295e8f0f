"""Predictions against a simulated shop's truth, on a hand-made truth table."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.models.evaluation import TRUTH_HORIZONS, against_truth, roc_auc, simulated_truth


def _truth() -> pd.DataFrame:
    """Three people; p2 registered twice (d2 is the duplicate, holding 40 % of orders)."""
    rows = {
        "user_id": ["p1", "p2", "d2", "p3"],
        "canonical_user_id": ["p1", "p2", "p2", "p3"],
        "alive_at_end": [True, False, False, True],
    }
    for h in TRUTH_HORIZONS:
        rows[f"expected_orders_{h}d"] = [h / 30, 0.0, 0.0, 2 * h / 30]
        rows[f"expected_spend_{h}d"] = [10 * h / 30, 0.0, 0.0, 5 * h / 30]
    frame = pd.DataFrame(rows)
    frame.loc[1, "expected_orders_90d"] = 0.6  # a dead person can't expect orders, but the
    frame.loc[2, "expected_orders_90d"] = 0.4  # split still has to add up
    return frame


def test_simulated_truth_sums_a_person_and_follows_the_warehouse_ids() -> None:
    truth = simulated_truth(_truth())
    assert list(truth.index) == ["p1", "p2", "p3"]
    assert truth.loc["p2", "expected_orders_90d"] == pytest.approx(1.0)
    assert truth["alive_at_end"].tolist() == [True, False, True]
    # the warehouse kept the duplicate's id d2 for person p2
    identities = ibis.memtable(
        pd.DataFrame(
            {
                "alias_type": ["user_id", "user_id", "user_id"],
                "alias": ["p2", "d2", "p1"],
                "user_id": ["d2", "d2", "p1"],
                "valid_to": pd.Series([None, None, None], dtype="datetime64[us, UTC]"),
            }
        )
    )
    mapped = simulated_truth(_truth(), identities)
    assert list(mapped.index) == ["d2", "p1", "p3"]
    assert mapped.loc["d2", "expected_orders_90d"] == pytest.approx(1.0)


def test_against_truth() -> None:
    truth = simulated_truth(_truth())
    got = against_truth(
        ["p3", "p1", "p2"],
        truth,
        p_alive=[0.9, 0.6, 0.3],
        expected_orders=[5.0, 3.0, 1.0],
        expected_spend=[10.0, 20.0, 0.0],
        horizon_days=90,
    )
    assert (got.customers, got.horizon_days) == (3, 90)
    assert got.mean_p_alive == pytest.approx(0.6)
    assert got.share_alive == pytest.approx(2 / 3)
    assert got.alive.at["p_alive", "auc"] == 1.0
    assert got.alive.at["p_alive", "brier"] == pytest.approx((0.01 + 0.16 + 0.09) / 3)
    # true 90-day orders: p3 6, p1 3, p2 1
    assert got.orders.mae == pytest.approx((1 + 0 + 0) / 3)
    assert got.orders.total_actual == pytest.approx(10.0)
    assert got.spend is not None and got.spend.total_actual == pytest.approx(15 + 30)
    assert roc_auc([1, 1, 0], [0.9, 0.6, 0.3]) == got.alive.at["p_alive", "auc"]


def test_against_truth_errors() -> None:
    truth = simulated_truth(_truth())
    kwargs = {"p_alive": [0.5], "expected_orders": [1.0]}
    with pytest.raises(InvalidInput, match=r"one of \(30, 90, 180, 365\)"):
        against_truth(["p1"], truth, horizon_days=60, **kwargs)
    with pytest.raises(InvalidInput, match=r"1 customer\(s\) are not in the truth, e.g. 'zz'"):
        against_truth(["zz"], truth, horizon_days=90, **kwargs)
    with pytest.raises(InvalidInput, match="p_alive must be probabilities"):
        against_truth(["p1"], truth, horizon_days=90, p_alive=[2.0], expected_orders=[1.0])
    with pytest.raises(InvalidInput, match="truth lacks"):
        simulated_truth(pd.DataFrame({"user_id": ["a"]}))
    assert np.isnan(
        against_truth(["p1"], truth, horizon_days=90, **kwargs).alive.at["p_alive", "auc"]
    )
