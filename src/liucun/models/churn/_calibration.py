"""Probability calibration of the churn scores: isotonic or Platt (sigmoid), chosen on data.

:func:`choose_calibration` cross-fits each method on the validation rows (folds split by
customer, so a customer present at several validation cut-offs stays in one fold),
scores the out-of-fold probabilities by Brier score (log loss breaks ties; a remaining
tie goes to the sigmoid, the simpler map) and returns the winner with every score.
:func:`fit_calibrator` then fits the chosen map on all validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from liucun.core import ConfigError, InvalidInput
from liucun.models.evaluation import brier_score, log_loss

CalibrationMethod = Literal["isotonic", "sigmoid"]
#: The calibration maps :func:`choose_calibration` compares.
CALIBRATION_METHODS: tuple[CalibrationMethod, ...] = ("isotonic", "sigmoid")
#: Calibrated probabilities are kept in ``[EPS, 1 - EPS]`` (an isotonic step can reach 0 or
#: 1, which no customer deserves and log loss cannot score).
EPS = 1e-4

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from raw LightGBM scores (log-odds) to probabilities."""

    method: CalibrationMethod
    isotonic: IsotonicRegression | None = None
    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, raw_score: npt.ArrayLike) -> FloatArray:
        raw = np.asarray(raw_score, dtype=np.float64)
        if self.isotonic is not None:
            p = np.asarray(self.isotonic.predict(raw), dtype=np.float64)
        else:
            p = 1.0 / (1.0 + np.exp(-(self.slope * raw + self.intercept)))
        return np.clip(p, EPS, 1.0 - EPS)


@dataclass(frozen=True)
class CalibrationChoice:
    """The chosen method and, per method, the out-of-fold ``brier`` and ``log_loss``."""

    method: CalibrationMethod
    scores: dict[str, dict[str, float]]
    oof: dict[str, FloatArray] = field(repr=False)


def _check(raw_score: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    raw = np.asarray(raw_score, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    if raw.ndim != 1 or raw.shape != target.shape:
        raise InvalidInput(
            f"scores and labels must be 1-D of one length, got {raw.shape}, {target.shape}"
        )
    if not np.all(np.isfinite(raw)):
        raise InvalidInput("scores contain NaN or infinite values")
    if not np.all((target == 0) | (target == 1)):
        raise InvalidInput("labels must be 0/1 (or booleans)")
    if target.min() == target.max():
        raise InvalidInput(
            "calibration needs both churned and retained customers in the validation rows; "
            "use more validation cut-offs or a larger customer base"
        )
    return raw, target


def fit_calibrator(
    method: CalibrationMethod, raw_score: npt.ArrayLike, y: npt.ArrayLike
) -> Calibrator:
    """Fit ``method`` ("isotonic" or "sigmoid": Platt scaling on the log-odds)."""
    raw, target = _check(raw_score, y)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(raw, target)
        return Calibrator("isotonic", isotonic=iso)
    if method == "sigmoid":
        lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)  # plain MLE (Platt 1999)
        lr.fit(raw[:, None], target.astype(np.int64))
        return Calibrator("sigmoid", slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))
    raise ConfigError(f"unknown calibration {method!r}; use one of {CALIBRATION_METHODS}")


def choose_calibration(
    raw_score: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    groups: npt.ArrayLike | None = None,
    methods: tuple[CalibrationMethod, ...] = CALIBRATION_METHODS,
    folds: int = 2,
    random_state: int = 0,
) -> CalibrationChoice:
    """Cross-fit every method and keep the one with the lowest out-of-fold Brier score.

    Parameters
    ----------
    raw_score, y
        Raw validation scores (log-odds) and 0/1 labels.
    groups
        Customer ids: rows of one customer share a fold. Default: one group per row.
    methods
        The candidates.
    folds
        Number of folds (each method is fitted on ``folds - 1`` of them, scored on the
        one left out).
    random_state
        Seed of the fold assignment.
    """
    raw, target = _check(raw_score, y)
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}")
    if not methods or any(m not in CALIBRATION_METHODS for m in methods):
        raise ConfigError(f"methods must be drawn from {CALIBRATION_METHODS}, got {methods}")
    keys = np.arange(raw.size) if groups is None else np.asarray(groups)
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(random_state).permutation(int(inverse.max()) + 1)
    fold = order[inverse] % folds
    for k in range(folds):
        held = fold == k
        if target[~held].min() == target[~held].max():
            raise InvalidInput(
                "a calibration fold holds only one class; the validation rows are too few "
                "(use more validation cut-offs or fewer folds)"
            )
    scores: dict[str, dict[str, float]] = {}
    oof: dict[str, FloatArray] = {}
    for method in methods:
        pred = np.empty_like(raw)
        for k in range(folds):
            held = fold == k
            pred[held] = fit_calibrator(method, raw[~held], target[~held])(raw[held])
        oof[method] = pred
        scores[method] = {
            "brier": brier_score(target, pred),
            "log_loss": log_loss(target, pred),
        }
    # lowest Brier, then log loss; ties go to the sigmoid (listed last, fewer parameters)
    ranked = sorted(
        methods,
        key=lambda m: (
            round(scores[m]["brier"], 12),
            round(scores[m]["log_loss"], 12),
            m != "sigmoid",
        ),
    )
    return CalibrationChoice(method=ranked[0], scores=scores, oof=oof)
