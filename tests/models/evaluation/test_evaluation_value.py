"""CLV accuracy: MAE, RMSE, correlations, aggregate error and the decile table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from liucun.core import InvalidInput
from liucun.models.evaluation import (
    CONSTANT_ACTUAL,
    CONSTANT_PREDICTION,
    ZERO_ACTUAL_TOTAL,
    decile_table,
    value_accuracy,
)


def test_value_accuracy_by_hand() -> None:
    predicted, actual = [1.0, 2.0, 3.0, 6.0], [0.0, 2.0, 5.0, 5.0]
    acc = value_accuracy(predicted, actual)
    assert acc.customers == 4
    assert acc.mae == pytest.approx((1 + 0 + 2 + 1) / 4)
    assert acc.rmse == pytest.approx(np.sqrt((1 + 0 + 4 + 1) / 4))
    assert acc.total_predicted == 12.0 and acc.total_actual == 12.0
    assert acc.aggregate_error_pct == 0.0
    assert acc.pearson == pytest.approx(stats.pearsonr(predicted, actual).statistic)
    assert acc.spearman == pytest.approx(stats.spearmanr(predicted, actual).statistic)
    assert acc.reasons == ()
    low = value_accuracy([1.0, 1.0], [2.0, 3.0])
    assert low.aggregate_error_pct == pytest.approx(-60.0)  # 2 predicted for 5 actual
    assert set(acc.as_dict()) >= {"mae", "rmse", "pearson", "aggregate_error_pct"}


def test_undefined_statistics_carry_reason_codes() -> None:
    flat = value_accuracy([2.0, 2.0, 2.0], [0.0, 1.0, 3.0])
    assert flat.pearson is None and flat.spearman is None
    assert flat.reasons == (CONSTANT_PREDICTION,)
    nothing = value_accuracy([0.5, 1.0], [0.0, 0.0])
    assert nothing.aggregate_error_pct is None and nothing.pearson is None
    assert nothing.reasons == (CONSTANT_ACTUAL, ZERO_ACTUAL_TOTAL)
    assert nothing.mae == pytest.approx(0.75)


def test_decile_table_by_hand() -> None:
    predicted = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 3.0])
    actual = np.array([4.0, 0.0, 6.0, 1.0, 2.0, 0.0])
    table = decile_table(predicted, actual, groups=3)
    assert list(table["group"]) == [1, 2, 3]
    assert list(table["customers"]) == [2, 2, 2]
    # group 1: predictions 5, 4; group 2: the tied 3s (row order); group 3: 2, 1
    np.testing.assert_allclose(table["mean_predicted"], [4.5, 3.0, 1.5])
    np.testing.assert_allclose(table["mean_actual"], [5.0, 1.0, 0.5])
    np.testing.assert_allclose(table["total_actual"], [10.0, 2.0, 1.0])
    np.testing.assert_allclose(table["min_predicted"], [4.0, 3.0, 1.0])
    np.testing.assert_allclose(table["max_predicted"], [5.0, 3.0, 2.0])


def test_decile_table_sizes_differ_by_at_most_one() -> None:
    rng = np.random.default_rng(2)
    p = rng.gamma(1.0, 1.0, 1003)
    table = decile_table(p, p + rng.normal(0, 0.1, p.size))
    assert len(table) == 10
    assert table["customers"].sum() == 1003
    assert table["customers"].max() - table["customers"].min() <= 1
    assert np.all(np.diff(table["mean_predicted"]) < 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: value_accuracy([1.0], [1.0, 2.0]), "predicted has 1 values but there are 2"),
        (lambda: value_accuracy([], []), "actual is empty"),
        (lambda: decile_table([1.0, 2.0], [1.0, 2.0], groups=3), "more than the 2 customers"),
        (lambda: decile_table([1.0, 2.0], [1.0, 2.0], groups=0), "positive whole number"),
    ],
)
def test_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=match):
        call()
