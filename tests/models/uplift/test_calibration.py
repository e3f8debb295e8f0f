"""BLP calibration of predicted effects, checked against statsmodels and by simulation."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from uplift_data import campaign

from liucun.core import InvalidInput
from liucun.models.uplift import (
    DRLearner,
    TLearner,
    XLearner,
    calibrate_uplift,
    cross_fit_predict,
)


def test_matches_statsmodels_weighted_least_squares_with_hc1() -> None:
    rng = np.random.default_rng(50)
    n = 400
    s = rng.normal(size=n)
    e = rng.uniform(0.2, 0.8, n)
    t = rng.random(n) < e
    y = 1.0 + 0.5 * s + t * (0.3 + 0.8 * s) + rng.standard_normal(n) * (1 + 0.5 * np.abs(s))
    got = calibrate_uplift(y, t, s, propensity=e)
    d = t - e
    Z = np.column_stack([np.ones(n), s, d, d * (s - s.mean())])
    ref = sm.WLS(y, Z, weights=1 / (e * (1 - e))).fit(cov_type="HC1")
    np.testing.assert_allclose([got.ate, got.slope], ref.params[2:], rtol=1e-9)
    np.testing.assert_allclose([got.ate_se, got.slope_se], ref.bse[2:], rtol=1e-9)
    assert got.p_value == pytest.approx(ref.pvalues[3] / 2, rel=1e-6)  # one-sided


def test_slope_measures_how_well_predictions_are_sized() -> None:
    """Score = 5·τ + noise is spread too wide: the population slope of τ on the score is
    cov(τ, S) / var(S); the BLP estimate covers it. Score = τ gives a slope of 1."""
    c = campaign(20_000, seed=51)
    rng = np.random.default_rng(52)
    wide = 5 * c.tau + rng.normal(0, 1.0, c.tau.size)
    want = np.cov(c.tau, wide)[0, 1] / wide.var(ddof=1)
    got = calibrate_uplift(c.y, c.treated, wide)
    assert abs(got.slope - want) < 3 * got.slope_se
    assert got.slope < 0.3 and got.p_value < 1e-6
    exact = calibrate_uplift(c.y, c.treated, c.tau)
    assert abs(exact.slope - 1.0) < 3 * exact.slope_se
    assert abs(exact.ate - c.tau.mean()) < 3 * exact.ate_se
    calibrated = got.apply(wide)
    assert calibrated.std() == pytest.approx(got.slope * wide.std())
    assert np.abs(calibrated - c.tau).mean() < np.abs(wide - c.tau).mean() / 3


def test_constant_scores_and_clipping() -> None:
    c = campaign(500, seed=53)
    flat = calibrate_uplift(c.y, c.treated, np.ones(500))
    assert flat.slope == 0.0 and np.isnan(flat.slope_se)
    assert flat.ate == pytest.approx(c.y[c.treated].mean() - c.y[~c.treated].mean())
    flipped = calibrate_uplift(c.y, c.treated, -c.tau)
    assert flipped.slope < 0
    np.testing.assert_allclose(flipped.apply(-c.tau), flipped.ate)  # clipped to 0
    assert not np.allclose(flipped.apply(-c.tau, shrink_only=False), flipped.ate)
    with pytest.raises(InvalidInput, match="at least 5 units"):
        calibrate_uplift([1, 0, 1], [1, 0, 1], [1, 2, 3])


def test_cross_fit_predict_uses_models_that_did_not_see_the_unit() -> None:
    from liucun.models.uplift._learners import _stratified_folds

    c = campaign(800, seed=54)
    learner = TLearner(n_estimators=10, min_child_samples=20, num_threads=1, random_state=3)
    got = cross_fit_predict(learner, c.X, c.treated, c.y, n_folds=3)
    fold = _stratified_folds(c.treated, 3, 3)
    for f in range(3):
        held = fold == f
        alone = TLearner(**learner.get_params()).fit(c.X[~held], c.treated[~held], c.y[~held])
        np.testing.assert_array_equal(got[held], alone.predict(c.X[held]))
    assert not hasattr(learner, "outcome_")  # the template stays unfitted
    with pytest.raises(InvalidInput, match="n_folds must be"):
        cross_fit_predict(learner, c.X, c.treated, c.y, n_folds=1)


@pytest.mark.parametrize("learner", [TLearner, XLearner, DRLearner])
def test_get_params_round_trips(learner: type) -> None:
    m = learner(n_estimators=9, params={"lambda_l2": 1.0}, num_threads=1)
    assert type(m)(**m.get_params()).get_params() == m.get_params()
    assert m.get_params()["n_estimators"] == 9
    assert ("n_folds" in m.get_params()) == (learner is DRLearner)
