"""Lift and capture among the customers a score ranks highest.

A retention team contacts the top 5, 10 or 20 % of customers by churn risk: *capture*
is the share of all churners found there, *lift* how much richer in churners that group
is than the base (``lift = capture / fraction``; 1 for a random score).

Ties are handled deterministically and independently of row order: the top group holds
exactly ``fraction × n`` customers, and a group of tied scores straddling the cut counts
in proportion (each tied customer a fraction of one), which is the expected result of
breaking the ties at random.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from liucun.core import InvalidInput
from liucun.models.evaluation._checks import (
    DEFAULT_FRACTIONS,
    FloatArray,
    check_fractions,
    check_labels,
    check_scores,
)


def _captured(y: FloatArray, s: FloatArray, shares: Sequence[float]) -> FloatArray:
    """Positives among the top ``share × n`` customers, for each share."""
    if y.sum() == 0:
        raise InvalidInput(
            "lift and capture are undefined when y_true holds no positive "
            "(no customer had the event)"
        )
    values, inverse = np.unique(-s, return_inverse=True)  # groups from highest score
    count = np.bincount(inverse, minlength=len(values)).astype(np.float64)
    pos = np.bincount(inverse, weights=y, minlength=len(values))
    before = np.r_[0.0, np.cumsum(count)[:-1]]
    pos_before = np.r_[0.0, np.cumsum(pos)[:-1]]
    out = np.empty(len(shares))
    for i, share in enumerate(shares):
        k = share * len(y)
        g = int(np.searchsorted(before + count, k))  # the tie group holding the cut
        g = min(g, len(values) - 1)
        out[i] = pos_before[g] + (k - before[g]) * pos[g] / count[g]
    return out


def capture(y_true: Any, score: Any, fraction: float) -> float:
    """Share of all positives found among the top ``fraction`` of customers by ``score``.

    Examples
    --------
    >>> capture([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 0.2)
    0.3333333333333333
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    (f,) = check_fractions([fraction])
    return float(_captured(y, s, [f])[0] / y.sum())


def lift(y_true: Any, score: Any, fraction: float) -> float:
    """Positive rate among the top ``fraction`` of customers ÷ the overall positive rate.

    Examples
    --------
    >>> round(lift([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 0.2), 4)
    1.6667
    """
    return capture(y_true, score, fraction) / fraction


def gains_table(
    y_true: Any, score: Any, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> pd.DataFrame:
    """Capture and lift at several top shares, one row per share.

    Columns: ``fraction, customers`` (``fraction × n``, possibly fractional),
    ``positives`` (captured, possibly fractional through ties), ``capture, precision,
    lift``.
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    shares = check_fractions(fractions)
    got = _captured(y, s, shares)
    k = np.asarray(shares) * len(y)
    return pd.DataFrame(
        {
            "fraction": shares,
            "customers": k,
            "positives": got,
            "capture": got / y.sum(),
            "precision": got / k,
            "lift": got / y.sum() / np.asarray(shares),
        }
    )
