"""Sufficient statistics of one arm: the engine's only inputs (it never sees rows).

Each field is a number or a numpy array; arrays broadcast against each other, so one
dataclass can carry a whole grid of experiments × metrics and every function of the
engine computes the grid in one call. A field mixing scalars and arrays broadcasts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liucun.core import InvalidInput

FloatArray = NDArray[np.float64]
#: What a result field holds: a float (or ``None`` when undefined) for scalar inputs, an
#: array (``NaN`` where undefined, see the result's ``reason``) for array inputs.
Value = float | FloatArray | None
Number = float | int | ArrayLike


def as_array(x: Any) -> FloatArray:
    """``x`` as a float64 array (0-d for a scalar)."""
    return np.asarray(x, dtype=np.float64)


def _check(stat: object, *, nonneg: Sequence[str]) -> None:
    """Refuse negative counts or sums of squares and non-finite sums, naming the field."""
    cls = type(stat).__name__
    for f in fields(stat):  # type: ignore[arg-type]
        raw = getattr(stat, f.name)
        try:
            a = as_array(raw)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"{cls}.{f.name} must be a number or an array of numbers, got {raw!r}"
            ) from None
        if not np.all(np.isfinite(a)):
            where = np.argwhere(~np.isfinite(a))
            at = f" at index {tuple(int(i) for i in where[0])}" if a.ndim else ""
            raise InvalidInput(
                f"{cls}.{f.name} must be finite, got {a[tuple(where[0])]}{at}; "
                "drop or fill missing values before computing the statistics"
            )
        if f.name in nonneg and np.any(a < 0):
            where = np.argwhere(a < 0)
            at = f" at index {tuple(int(i) for i in where[0])}" if a.ndim else ""
            raise InvalidInput(f"{cls}.{f.name} must be ≥ 0, got {a[tuple(where[0])]}{at}")


def _sums(values: ArrayLike, axis: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    v = as_array(values)
    return as_array(v.shape[axis] if v.ndim else 1), v.sum(axis=axis), (v * v).sum(axis=axis)


def sample_variance(n: FloatArray, total: FloatArray, total_sq: FloatArray) -> FloatArray:
    """Unbiased variance ``(Σx² − (Σx)²/n) / (n − 1)``; NaN for n < 2, clipped at 0."""
    with np.errstate(all="ignore"):
        var = (total_sq - total * total / n) / (n - 1.0)
    return np.where(n >= 2, np.maximum(var, 0.0), np.nan)


def sample_covariance(n: FloatArray, a: FloatArray, b: FloatArray, ab: FloatArray) -> FloatArray:
    """Unbiased covariance ``(Σab − ΣaΣb/n) / (n − 1)``; NaN for n < 2."""
    with np.errstate(all="ignore"):
        cov = (ab - a * b / n) / (n - 1.0)
    return np.where(n >= 2, cov, np.nan)


def safe_mean(n: FloatArray, total: FloatArray) -> FloatArray:
    """``total / n``, NaN where ``n`` is 0."""
    with np.errstate(all="ignore"):
        return np.where(n > 0, total / n, np.nan)


@dataclass(frozen=True)
class MeanStat:
    """A mean metric in one arm: units ``n``, ``total`` = Σx and ``total_sq`` = Σx².

    Examples
    --------
    >>> s = MeanStat.from_values([1.0, 2.0, 4.0])
    >>> s.n, s.total, s.total_sq
    (3.0, 7.0, 21.0)
    """

    n: Number
    total: Number
    total_sq: Number

    def __post_init__(self) -> None:
        _check(self, nonneg=("n", "total_sq"))

    @classmethod
    def from_values(cls, values: ArrayLike, *, axis: int = -1) -> MeanStat:
        """The statistics of raw per-unit values (along ``axis`` for a 2-d array)."""
        n, s, s2 = _sums(values, axis)
        return cls(n=_py(n), total=_py(s), total_sq=_py(s2))

    @property
    def mean(self) -> FloatArray:
        """Σx / n (NaN for an empty arm)."""
        return safe_mean(as_array(self.n), as_array(self.total))

    @property
    def variance(self) -> FloatArray:
        """Unbiased sample variance (NaN for n < 2)."""
        return sample_variance(as_array(self.n), as_array(self.total), as_array(self.total_sq))


@dataclass(frozen=True)
class ProportionStat:
    """A conversion metric in one arm: ``n`` units of which ``successes`` converted."""

    n: Number
    successes: Number

    def __post_init__(self) -> None:
        _check(self, nonneg=("n", "successes"))
        if np.any(as_array(self.successes) > as_array(self.n)):
            raise InvalidInput("ProportionStat.successes must not exceed n (units in the arm)")

    @classmethod
    def from_values(cls, values: ArrayLike, *, axis: int = -1) -> ProportionStat:
        """The statistics of raw 0/1 per-unit values (along ``axis``)."""
        n, s, _ = _sums(values, axis)
        return cls(n=_py(n), successes=_py(s))

    def as_mean_stat(self) -> MeanStat:
        """The same data as a :class:`MeanStat` of 0/1 values (x² = x)."""
        return MeanStat(n=self.n, total=self.successes, total_sq=self.successes)


@dataclass(frozen=True)
class RatioStat:
    """A ratio metric Σnum / Σden in one arm (e.g. revenue per order, units = users).

    ``num_total`` = Σa, ``num_total_sq`` = Σa², ``den_total`` = Σb, ``den_total_sq`` = Σb²
    and ``cross_total`` = Σab over the arm's ``n`` units; the delta method turns them into
    the ratio's variance.
    """

    n: Number
    num_total: Number
    num_total_sq: Number
    den_total: Number
    den_total_sq: Number
    cross_total: Number

    def __post_init__(self) -> None:
        _check(self, nonneg=("n", "num_total_sq", "den_total_sq"))

    @classmethod
    def from_values(
        cls, numerator: ArrayLike, denominator: ArrayLike, *, axis: int = -1
    ) -> RatioStat:
        """The statistics of raw per-unit numerator and denominator values."""
        n, a, a2 = _sums(numerator, axis)
        _, b, b2 = _sums(denominator, axis)
        ab = (as_array(numerator) * as_array(denominator)).sum(axis=axis)
        return cls(
            n=_py(n),
            num_total=_py(a),
            num_total_sq=_py(a2),
            den_total=_py(b),
            den_total_sq=_py(b2),
            cross_total=_py(ab),
        )


@dataclass(frozen=True)
class CupedStat:
    """A mean metric with a pre-period covariate for CUPED, in one arm.

    ``total``/``total_sq`` are Σy and Σy² of the metric, ``pre_total``/``pre_total_sq``
    Σx and Σx² of the pre-period covariate, ``cross_total`` Σxy.
    """

    n: Number
    total: Number
    total_sq: Number
    pre_total: Number
    pre_total_sq: Number
    cross_total: Number

    def __post_init__(self) -> None:
        _check(self, nonneg=("n", "total_sq", "pre_total_sq"))

    @classmethod
    def from_values(cls, values: ArrayLike, pre: ArrayLike, *, axis: int = -1) -> CupedStat:
        """The statistics of raw per-unit metric values and pre-period covariates."""
        n, y, y2 = _sums(values, axis)
        _, x, x2 = _sums(pre, axis)
        xy = (as_array(values) * as_array(pre)).sum(axis=axis)
        return cls(
            n=_py(n),
            total=_py(y),
            total_sq=_py(y2),
            pre_total=_py(x),
            pre_total_sq=_py(x2),
            cross_total=_py(xy),
        )

    def as_mean_stat(self) -> MeanStat:
        """The metric alone, without its covariate."""
        return MeanStat(n=self.n, total=self.total, total_sq=self.total_sq)


AnyStat = MeanStat | ProportionStat | RatioStat | CupedStat


def _py(a: FloatArray) -> float | FloatArray:
    return float(a) if a.ndim == 0 else a
