"""Metrics of a score against binary outcomes: AUC, PR-AUC, Brier, log loss, calibration.

Each is a pure function of two 1-D arrays (``y_true`` 0/1, a score) and agrees with
scikit-learn's function of the same purpose to rounding (tests pin 1e-12). Inputs are
checked; a problem raises :class:`~liucun.core.InvalidInput` naming the argument.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from liucun.core import InvalidInput
from liucun.models.evaluation._checks import (
    FloatArray,
    both_classes,
    check_labels,
    check_probabilities,
    check_scores,
)

BinStrategy = Literal["quantile", "uniform"]

#: Default number of calibration bins.
DEFAULT_BINS = 10
#: Default binning: equal mass (deciles of the predictions). Churn probabilities bunch
#: up at one end, so equal-width bins would leave a few crowded bins and many nearly
#: empty ones whose noise dominates the error (Nixon et al. 2019, "Measuring
#: calibration in deep learning").
DEFAULT_STRATEGY: BinStrategy = "quantile"
#: Log loss clips probabilities to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`` (float64's
#: machine epsilon, as scikit-learn does), so a confident miss costs about 36, not ∞.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)


def roc_auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney statistic with mid-ranks), so it equals
    ``sklearn.metrics.roc_auc_score``. Invariant to any strictly increasing transform
    of ``score``.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    both_classes(y, "AUC")
    ranks = stats.rankdata(s)
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y_true: Any, score: Any) -> float:
    """Average precision: ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds.

    The step-wise area under the precision-recall curve without interpolation, as
    ``sklearn.metrics.average_precision_score``. A random score gets about the positive
    rate; a perfect one gets 1.

    Examples
    --------
    >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    if y.sum() == 0:
        raise InvalidInput(
            "PR-AUC is undefined when y_true holds no positive (no customer had the event)"
        )
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # the last row of each group of tied scores is a threshold
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last]
    seen = (np.arange(1, len(y) + 1))[last]
    precision = tp / seen
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (lower is better).

    Examples
    --------
    >>> round(brier_score([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob, len(y))
    return float(np.mean((p - y) ** 2))


def log_loss(y_true: Any, y_prob: Any, *, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood of the outcomes; probabilities clipped to [eps, 1 - eps].

    Examples
    --------
    >>> round(log_loss([0, 1], [0.2, 0.6]), 6)
    0.366985
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob, len(y))
    if not (0 < eps < 0.5):
        raise InvalidInput(f"eps must lie in (0, 0.5), got {eps:g}")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _bins(p: FloatArray, n_bins: int, strategy: str) -> tuple[FloatArray, np.ndarray]:
    """Bin edges and each row's bin, exactly as ``sklearn.calibration.calibration_curve``.

    Bins are ``[e0, e1], (e1, e2], ...``; equal-mass edges are percentiles of ``p``, so
    tied predictions always share a bin (some bins can then be empty).
    """
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise InvalidInput(f"n_bins must be a positive whole number, got {n_bins!r}")
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, int(n_bins) + 1) * 100)
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    else:
        raise InvalidInput(
            f"strategy must be 'quantile' (equal mass) or 'uniform' (equal width), got {strategy!r}"
        )
    return edges, np.searchsorted(edges[1:-1], p)


def calibration_curve(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    strategy: BinStrategy = DEFAULT_STRATEGY,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Predicted vs observed event rate per bin: the data of a reliability diagram.

    Parameters
    ----------
    y_true
        0/1 outcomes.
    y_prob
        Predicted probabilities of the outcome.
    n_bins
        Number of bins (empty ones are left out).
    strategy
        ``"quantile"`` (default; equal numbers of customers) or ``"uniform"`` (equal
        widths on [0, 1]); the same bins as ``sklearn.calibration.calibration_curve``.
    confidence
        Level of the Wilson interval around each observed rate.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin`` (0-based), ``lower, upper`` (edges),
        ``customers``, ``events``, ``mean_predicted``, ``observed_rate`` and its interval
        ``observed_low, observed_high``. A calibrated model has ``mean_predicted`` close to
        ``observed_rate`` in every bin.
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob, len(y))
    if not (0 < confidence < 1):
        raise InvalidInput(f"confidence must lie in (0, 1), got {confidence:g}")
    edges, ids = _bins(p, n_bins, strategy)
    k = len(edges) - 1
    total = np.bincount(ids, minlength=k)
    events = np.bincount(ids, weights=y, minlength=k)
    pred = np.bincount(ids, weights=p, minlength=k)
    keep = total > 0
    n = total[keep].astype(np.float64)
    e = np.asarray(events[keep], dtype=np.float64)
    rate = e / n
    low, high = wilson_interval(e, n, confidence)
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep),
            "lower": edges[:-1][keep],
            "upper": edges[1:][keep],
            "customers": total[keep],
            "events": np.round(e).astype(np.int64),
            "mean_predicted": pred[keep] / n,
            "observed_rate": rate,
            "observed_low": low,
            "observed_high": high,
        }
    )


def wilson_interval(
    events: FloatArray, n: FloatArray, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval of the proportions ``events / n`` (all ``n`` > 0)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rate = events / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    strategy: BinStrategy = DEFAULT_STRATEGY,
) -> float:
    """``ECE = sum_b (n_b / n) |observed_b - predicted_b|`` over the bins of
    :func:`calibration_curve`.

    0 for perfect calibration. Defaults to 10 equal-mass bins (see
    :data:`DEFAULT_STRATEGY`); ``strategy="uniform"`` gives the equal-width ECE of Guo et
    al. (2017).

    Examples
    --------
    >>> expected_calibration_error([0, 1, 0, 1], [0.0, 0.0, 1.0, 1.0], n_bins=2)
    0.5
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob, len(y))
    _, ids = _bins(p, n_bins, strategy)
    total = np.bincount(ids)
    gap = np.abs(np.bincount(ids, weights=y) - np.bincount(ids, weights=p))
    return float(gap[total > 0].sum() / len(y))
