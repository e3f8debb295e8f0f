"""Calibration: Platt against statsmodels, and the choice between isotonic and sigmoid."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from liucun.core import ConfigError, InvalidInput
from liucun.models.churn import choose_calibration, fit_calibrator
from liucun.models.churn._calibration import EPS
from liucun.models.evaluation import brier_score


def _logistic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true churn probability is sigmoid(2 s − 1)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 1.5, n)
    return s, rng.random(n) < 1.0 / (1.0 + np.exp(-(2.0 * s - 1.0)))


def _step(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true churn probability jumps from 0.1 to 0.9 at 0 (no sigmoid fits)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-3.0, 3.0, n)
    return s, rng.random(n) < np.where(s < 0, 0.1, 0.9)


def test_platt_is_the_logistic_regression_on_the_score() -> None:
    s, y = _logistic(5000, 5)
    cal = fit_calibrator("sigmoid", s, y)
    want = sm.Logit(y.astype(float), sm.add_constant(s)).fit(disp=0).params
    np.testing.assert_allclose([cal.intercept, cal.slope], want, rtol=1e-6)
    p = cal(np.array([0.0, 0.5]))
    np.testing.assert_allclose(
        p, 1 / (1 + np.exp(-(cal.slope * np.array([0, 0.5]) + cal.intercept)))
    )


def test_isotonic_is_monotone_and_clipped() -> None:
    s, y = _step(2000, 1)
    cal = fit_calibrator("isotonic", s, y)
    grid = np.linspace(-10, 10, 201)  # beyond the fitted range too
    p = cal(grid)
    assert np.all(np.diff(p) >= 0)
    assert p.min() >= EPS and p.max() <= 1 - EPS
    assert p[0] == cal(np.array([s.min()]))[0] and p[-1] == cal(np.array([s.max()]))[0]
    # isotonic regression keeps the total: fitted probabilities sum to the churners
    assert cal(s).sum() == pytest.approx(y.sum(), abs=1.0)
    assert cal(np.array([-2.0, 2.0])) == pytest.approx([0.1, 0.9], abs=0.05)


def test_a_step_shaped_truth_chooses_isotonic() -> None:
    s, y = _step(4000, 0)
    choice = choose_calibration(s, y, random_state=0)
    assert choice.method == "isotonic"
    assert choice.scores["isotonic"]["brier"] < choice.scores["sigmoid"]["brier"] - 0.02
    # the scores are those of the out-of-fold predictions
    for method, pred in choice.oof.items():
        assert choice.scores[method]["brier"] == pytest.approx(brier_score(y, pred))


@pytest.mark.parametrize("seed", [0, 2])
def test_a_logistic_truth_with_few_rows_chooses_sigmoid(seed: int) -> None:
    """Isotonic regression overfits 400 rows; Platt's two parameters do not."""
    s, y = _logistic(400, seed)
    choice = choose_calibration(s, y, random_state=0)
    assert choice.method == "sigmoid"
    assert choice.scores["sigmoid"]["brier"] < choice.scores["isotonic"]["brier"]


def test_ties_go_to_the_sigmoid_and_one_method_may_be_forced() -> None:
    s, y = _logistic(400, 0)
    forced = choose_calibration(s, y, methods=("isotonic",))
    assert forced.method == "isotonic" and set(forced.scores) == {"isotonic"}
    both = choose_calibration(s, y, methods=("sigmoid", "isotonic"))
    assert both.method == "sigmoid"


def test_rows_of_one_customer_share_a_fold() -> None:
    """Each customer appears twice (two validation cut-offs): with groups, both copies are
    predicted by the same out-of-fold calibrator, so they get the same probability."""
    s, y = _logistic(300, 3)
    s2, y2 = np.r_[s, s], np.r_[y, y]
    ids = np.r_[np.arange(300), np.arange(300)]
    grouped = choose_calibration(s2, y2, groups=ids, random_state=1)
    for pred in grouped.oof.values():
        np.testing.assert_array_equal(pred[:300], pred[300:])
    loose = choose_calibration(s2, y2, random_state=1)
    assert any(not np.array_equal(p[:300], p[300:]) for p in loose.oof.values())


def test_bad_inputs_are_refused() -> None:
    s, y = _logistic(100, 0)
    with pytest.raises(InvalidInput, match="both churned and retained"):
        choose_calibration(s, np.ones(100))
    with pytest.raises(InvalidInput, match="0/1"):
        fit_calibrator("sigmoid", s, np.full(100, 2.0))
    with pytest.raises(InvalidInput, match="one length"):
        fit_calibrator("sigmoid", s, y[:50])
    with pytest.raises(ConfigError, match="unknown calibration"):
        fit_calibrator("beta", s, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="folds"):
        choose_calibration(s, y, folds=1)
    with pytest.raises(ConfigError, match="methods"):
        choose_calibration(s, y, methods=("beta",))  # type: ignore[arg-type]
