"""Are predicted effects the right size? The best linear predictor (BLP) of the CATE.

Boosted effect models rank customers better than they size them: on noisy retention
data their predictions are often spread ten times wider than the true effects, and a
policy that trusts them promises profit it will not earn. Chernozhukov, Demirer, Duflo
and Fernández-Val (2018, "Generic machine learning inference on heterogeneous treatment
effects") calibrate a score ``S`` on randomized data not used to fit it by the weighted
least-squares regression

    Y = α₀ + α₁·S + β₁·(T − e) + β₂·(T − e)·(S − S̄) + ε,   weights 1 / (e(1 − e))

where ``β₁`` is the average effect and ``β₂`` the slope of the true effect on the score:
``β₂ = 1`` for well-sized predictions, ``0 < β₂ < 1`` for over-spread ones and ``β₂ = 0``
when the score carries no information about the effect (a test of heterogeneity).
``β₁ + β₂·(S − S̄)`` is then the calibrated effect. Standard errors are
heteroskedasticity-robust (HC1).

:func:`cross_fit_predict` gives out-of-fold predictions on the training data, so a model
can be calibrated without a separate hold-out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from liucun.core import InvalidInput
from liucun.models.uplift._evaluation import randomized_inputs
from liucun.models.uplift._inputs import (
    Features,
    FloatArray,
    as_float,
    as_propensity,
    as_treatment,
    n_rows,
)
from liucun.models.uplift._learners import UpliftLearner, _rows, _stratified_folds


@dataclass(frozen=True)
class UpliftCalibration:
    """Result of :func:`calibrate_uplift`: ``ate`` (β₁) and ``slope`` (β₂) with standard
    errors, ``p_value`` of the one-sided test β₂ ≤ 0 (no heterogeneity found), and the
    mean score ``score_mean`` (S̄)."""

    n: int
    ate: float
    ate_se: float
    slope: float
    slope_se: float
    p_value: float
    score_mean: float

    def apply(self, score: Any, *, shrink_only: bool = True) -> FloatArray:
        """Calibrated effects ``ate + slope·(score − score_mean)``.

        With ``shrink_only`` the slope is clipped to [0, 1]: calibration may shrink
        predictions towards the average effect but never stretches or flips them.
        """
        s = as_float("score", score)
        slope = min(max(self.slope, 0.0), 1.0) if shrink_only else self.slope
        return self.ate + slope * (s - self.score_mean)


def calibrate_uplift(
    y: Any, treatment: Any, score: Any, *, propensity: Any = None
) -> UpliftCalibration:
    """Best linear predictor of the effect given ``score``, on randomized data.

    Parameters
    ----------
    y, treatment, propensity
        Outcome, assignment and its probability (default: the treated share).
    score
        Predicted effects for these units from a model that did not see them
        (held-out data, or :func:`cross_fit_predict`).
    """
    yy, t, s, e = randomized_inputs(y, treatment, score, propensity)
    n = s.size
    if n < 5:
        raise InvalidInput(f"calibration needs at least 5 units, got {n}")
    d = t - e
    centred = s - s.mean()
    Z = np.column_stack([np.ones(n), s, d, d * centred])
    w = 1.0 / (e * (1.0 - e))
    zw = Z * w[:, None]
    gram = Z.T @ zw
    if np.linalg.matrix_rank(gram) < Z.shape[1]:
        # a constant score: no slope can be estimated; keep the average effect
        Z, zw = Z[:, [0, 2]], zw[:, [0, 2]]
        gram = Z.T @ zw
    beta = np.linalg.solve(gram, zw.T @ yy)
    resid = yy - Z @ beta
    bread = np.linalg.inv(gram)
    meat = (zw * resid[:, None] ** 2).T @ zw
    k = Z.shape[1]
    cov = bread @ meat @ bread * n / (n - k)
    se = np.sqrt(np.diag(cov))
    if k == 4:
        slope, slope_se = float(beta[3]), float(se[3])
        ate, ate_se = float(beta[2]), float(se[2])
        p = float(stats.norm.sf(slope / slope_se)) if slope_se > 0 else math.nan
    else:
        slope, slope_se, p = 0.0, math.nan, math.nan
        ate, ate_se = float(beta[1]), float(se[1])
    return UpliftCalibration(
        n=n,
        ate=ate,
        ate_se=ate_se,
        slope=slope,
        slope_se=slope_se,
        p_value=p,
        score_mean=float(s.mean()),
    )


def cross_fit_predict(
    learner: UpliftLearner,
    X: Features,
    treatment: Any,
    y: Any,
    *,
    propensity: Any = None,
    n_folds: int = 2,
) -> FloatArray:
    """Out-of-fold effect predictions: each unit is predicted by a copy of ``learner``
    fitted on the other folds (stratified by arm, drawn with ``learner.random_state``)."""
    n = n_rows(X)
    t = as_treatment(treatment, n)
    yy = as_float("y", y, n)
    e = as_propensity(propensity, t)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise InvalidInput(f"n_folds must be a whole number ≥ 2, got {n_folds!r}")
    fold = _stratified_folds(t, n_folds, learner.random_state)
    out = np.empty(n)
    for f in range(n_folds):
        held = fold == f
        model = type(learner)(**learner.get_params(deep=False))
        model.fit(_rows(X, ~held), t[~held], yy[~held], propensity=e[~held])
        out[held] = model.predict(_rows(X, held))
    return out
