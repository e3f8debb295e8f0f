"""Sample-ratio mismatch against scipy.stats.chisquare."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss

from liucun.core import ConfigError, InvalidInput
from liucun.experiments.stats import srm_test


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([5_000, 5_300], [0.5, 0.5]), ([1_010, 980, 2_100], [1, 1, 2]), ([90, 1_000], [0.1, 0.9])],
)
def test_matches_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    r = srm_test(counts, weights)
    w = np.asarray(weights, float)
    expected = sum(counts) * w / w.sum()
    ref = ss.chisquare(counts, expected)
    assert (r.statistic, r.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
    assert r.df == len(counts) - 1 and r.reason == "ok"
    np.testing.assert_allclose(r.expected, expected)
    assert r.mismatch == (ref.pvalue < 0.001)


def test_batch_and_threshold_and_no_units() -> None:
    counts = np.array([[5_000, 5_300], [5_000, 5_010], [0, 0], [4_000, 4_400]])
    r = srm_test(counts, [1, 1])
    for i, row in enumerate(counts[[0, 1, 3]]):
        one = srm_test(row, [1, 1])
        assert r.p_value[[0, 1, 3][i]] == pytest.approx(one.p_value, rel=1e-12)  # type: ignore[index]
    assert list(r.mismatch) == [False, False, False, True]  # type: ignore[arg-type]
    assert list(r.reason) == ["ok", "ok", "no_units", "ok"]  # type: ignore[arg-type]
    assert np.isnan(r.p_value[2])  # type: ignore[index]
    assert srm_test([5_000, 5_300], [1, 1], threshold=0.01).mismatch
    empty = srm_test([0, 0], [1, 1])
    assert (empty.p_value, empty.statistic, empty.mismatch) == (None, None, False)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="every weight must be a positive number"):
        srm_test([10, 10], [1, 0])
    with pytest.raises(InvalidInput, match="weights has 3 entries but counts has 2"):
        srm_test([10, 10], [1, 1, 1])
    with pytest.raises(InvalidInput, match="at least two variants"):
        srm_test([10], [1])
