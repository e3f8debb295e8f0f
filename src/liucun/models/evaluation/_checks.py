"""Input checks shared by the evaluation functions: labels, scores, probabilities, shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from liucun.core import InvalidInput
from liucun.models.btyd._base import as_1d

FloatArray = npt.NDArray[np.float64]

#: The top shares of customers at which lift and capture are reported by default.
DEFAULT_FRACTIONS: tuple[float, ...] = (0.05, 0.10, 0.20)


def check_labels(y_true: Any, *, name: str = "y_true") -> FloatArray:
    """Binary outcomes (0/1 or booleans) as floats; refuses anything else."""
    y = as_1d(name, y_true)
    if len(y) == 0:
        raise InvalidInput(f"{name} is empty; there is nothing to evaluate")
    bad = (y != 0) & (y != 1)
    if np.any(bad):
        raise InvalidInput(
            f"{name} must hold 0/1 outcomes (1 = the event, e.g. churned); found "
            f"{y[bad][0]:g} at row {int(np.argmax(bad))}"
        )
    return y


def check_scores(values: Any, n: int, *, name: str = "score") -> FloatArray:
    """Finite scores of length ``n``."""
    s = as_1d(name, values)
    if len(s) != n:
        raise InvalidInput(
            f"{name} has {len(s)} values but there are {n} customers; align the arrays by customer"
        )
    return s


def check_probabilities(values: Any, n: int, *, name: str = "y_prob") -> FloatArray:
    """Scores that must lie in [0, 1]."""
    p = check_scores(values, n, name=name)
    if p.min() < 0 or p.max() > 1:
        raise InvalidInput(
            f"{name} must be probabilities in [0, 1]; found values from {p.min():g} to "
            f"{p.max():g}. Ranking metrics (AUC, PR-AUC, lift) accept any score."
        )
    return p


def both_classes(y: FloatArray, metric: str, *, name: str = "y_true") -> None:
    """Refuse one-class outcomes, on which ranking metrics are undefined."""
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        only = "1 (every customer had the event)" if positives else "0 (no customer had the event)"
        raise InvalidInput(
            f"{metric} is undefined when {name} holds only {only}; evaluate on a period "
            "and population with both outcomes"
        )


def check_fractions(values: Sequence[float]) -> tuple[float, ...]:
    """Top shares in (0, 1], e.g. (0.05, 0.1, 0.2)."""
    out = tuple(float(f) for f in values)
    if not out:
        raise InvalidInput("fractions is empty; pass shares such as (0.05, 0.1, 0.2)")
    for f in out:
        if not (0 < f <= 1):
            raise InvalidInput(f"fractions must lie in (0, 1], got {f:g}; 0.1 means the top 10 %")
    return out


def percent_label(fraction: float) -> str:
    """``0.05 -> "5"``, ``0.125 -> "12.5"``: the suffix of ``lift_5`` style columns."""
    return f"{100 * fraction:g}"
