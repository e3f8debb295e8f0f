"""Accuracy of per-customer value forecasts: orders or spend, predicted vs actual.

Used for CLV on a holdout period (predicted vs actual holdout orders and spend) and,
on simulated data, for predicted vs true expected orders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from liucun.core import InvalidInput
from liucun.models.btyd._base import as_1d
from liucun.models.evaluation._checks import check_scores

#: Reason codes for a statistic that is not defined on the data at hand.
CONSTANT_PREDICTION = "constant_prediction"
CONSTANT_ACTUAL = "constant_actual"
ZERO_ACTUAL_TOTAL = "zero_actual_total"


@dataclass(frozen=True)
class ValueAccuracy:
    """How close per-customer forecasts are to what happened.

    ``pearson``/``spearman`` are ``None`` when one side is constant and
    ``aggregate_error_pct`` when the actual total is 0; ``reasons`` then holds the codes
    (:data:`CONSTANT_PREDICTION`, :data:`CONSTANT_ACTUAL`, :data:`ZERO_ACTUAL_TOTAL`).
    ``aggregate_error_pct`` is ``100 × (total predicted − total actual) ÷ total actual``:
    negative means the forecast is too low.
    """

    customers: int
    mae: float
    rmse: float
    pearson: float | None
    spearman: float | None
    total_predicted: float
    total_actual: float
    aggregate_error_pct: float | None
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for a table row or JSON)."""
        return asdict(self)


def _pair(predicted: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    a = as_1d("actual", actual)
    if len(a) == 0:
        raise InvalidInput("actual is empty; there is nothing to evaluate")
    return check_scores(predicted, len(a), name="predicted"), a


def value_accuracy(predicted: Any, actual: Any) -> ValueAccuracy:
    """MAE, RMSE, Pearson and Spearman correlation and the aggregate error of a forecast.

    Examples
    --------
    >>> acc = value_accuracy([1.0, 2.0, 3.0], [1.0, 1.0, 4.0])
    >>> round(acc.mae, 4), acc.aggregate_error_pct
    (0.6667, 0.0)
    """
    p, a = _pair(predicted, actual)
    err = p - a
    reasons: list[str] = []
    if np.ptp(p) == 0:
        reasons.append(CONSTANT_PREDICTION)
    if np.ptp(a) == 0:
        reasons.append(CONSTANT_ACTUAL)
    pearson = spearman = None
    if not reasons and len(a) > 1:
        pearson = float(stats.pearsonr(p, a).statistic)
        spearman = float(stats.spearmanr(p, a).statistic)
    total_p, total_a = float(p.sum()), float(a.sum())
    if total_a == 0:
        reasons.append(ZERO_ACTUAL_TOTAL)
    return ValueAccuracy(
        customers=len(a),
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        pearson=pearson,
        spearman=spearman,
        total_predicted=total_p,
        total_actual=total_a,
        aggregate_error_pct=None if total_a == 0 else 100.0 * (total_p - total_a) / total_a,
        reasons=tuple(reasons),
    )


def decile_table(predicted: Any, actual: Any, *, groups: int = 10) -> pd.DataFrame:
    """Customers ranked by prediction into equal groups: mean predicted vs mean actual.

    Group 1 holds the highest predictions. Ranks are by prediction, ties in row order (a
    stable sort), and group sizes differ by at most one.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``group, customers, min_predicted, max_predicted,
        mean_predicted, mean_actual, total_predicted, total_actual``. The data of a
        decile chart: a good forecast has the two means close and falling together.
    """
    p, a = _pair(predicted, actual)
    if isinstance(groups, bool) or int(groups) != groups or groups < 1:
        raise InvalidInput(f"groups must be a positive whole number, got {groups!r}")
    if groups > len(p):
        raise InvalidInput(f"groups ({groups}) is more than the {len(p)} customers; use fewer")
    order = np.argsort(-p, kind="stable")
    group = np.empty(len(p), dtype=np.int64)
    for g, rows in enumerate(np.array_split(order, int(groups)), start=1):
        group[rows] = g
    frame = pd.DataFrame({"group": group, "predicted": p, "actual": a})
    out = frame.groupby("group").agg(
        customers=("predicted", "size"),
        min_predicted=("predicted", "min"),
        max_predicted=("predicted", "max"),
        mean_predicted=("predicted", "mean"),
        mean_actual=("actual", "mean"),
        total_predicted=("predicted", "sum"),
        total_actual=("actual", "sum"),
    )
    return out.reset_index()
