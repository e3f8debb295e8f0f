"""Holm and Benjamini–Hochberg against statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from liucun.core import ConfigError
from liucun.experiments.stats import adjust_p_values, benjamini_hochberg, holm

SM = {"holm": "holm", "bh": "fdr_bh"}


P_VALUES = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=30)


def _check(p: list[float], method: str, alpha: float) -> None:
    r = adjust_p_values(p, method=method, alpha=alpha)  # type: ignore[arg-type]
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=SM[method])
    np.testing.assert_allclose(r.p_adjusted, adjusted, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(r.reject, reject)


@settings(max_examples=150, deadline=None)
@given(P_VALUES, st.sampled_from([0.05, 0.1]))
def test_bh_matches_multipletests(p: list[float], alpha: float) -> None:
    _check(p, "bh", alpha)


# statsmodels' Holm calls gc.collect() every time (~0.1 s): fewer examples
@settings(max_examples=20, deadline=None)
@given(P_VALUES, st.sampled_from([0.05, 0.1]))
def test_holm_matches_multipletests(p: list[float], alpha: float) -> None:
    _check(p, "holm", alpha)


def test_rows_are_separate_families_and_nan_is_left_out() -> None:
    rng = np.random.default_rng(4)
    grid = rng.random((8, 10)) ** 3
    grid[3, [2, 7]] = np.nan
    for fn, method in ((holm, "holm"), (benjamini_hochberg, "fdr_bh")):
        r = fn(grid)
        for i, row in enumerate(grid):
            keep = ~np.isnan(row)
            expected = multipletests(row[keep], method=method)[1]
            np.testing.assert_allclose(r.p_adjusted[i, keep], expected, rtol=1e-12)
        assert np.isnan(r.p_adjusted[3, [2, 7]]).all() and not r.reject[3, [2, 7]].any()
    assert holm(0.02).p_adjusted == pytest.approx(0.02)
    with pytest.raises(ConfigError, match="method must be 'holm' or 'bh'"):
        adjust_p_values([0.1], method="bonferroni")  # type: ignore[arg-type]
