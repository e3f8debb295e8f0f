"""The one comparison every test builds on: two arms' moments → lift and its variance.

Each kind of statistic reduces to the same per-arm moments (:class:`Arms`): the mean
of the analysed metric, its per-unit variance (so ``var / n`` is the variance of the
mean), and for relative lift the control's unadjusted mean with its variance and
covariance. The absolute lift is ``m_t − m_c``; the relative lift ``(m_t − m_c) / b_c``
gets its variance by the delta method,

    Var(Δ/b) ≈ Var(Δ)/b² + Δ²·Var(b)/b⁴ − 2Δ·Cov(Δ, b)/b³,

which for a plain mean (``b = m_c``) is GrowthBook's
``Var(m_t)/m_c² + m_t²·Var(m_c)/m_c⁴``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from liucun.core import InvalidInput
from liucun.experiments.stats._codes import (
    EMPTY_ARM,
    OK,
    TOO_FEW_UNITS,
    ZERO_CONTROL_MEAN,
    ZERO_DENOMINATOR,
    ZERO_VARIANCE,
    Reason,
)
from liucun.experiments.stats._inputs import (
    AnyStat,
    CupedStat,
    FloatArray,
    MeanStat,
    ProportionStat,
    RatioStat,
    Value,
    as_array,
    safe_mean,
    sample_covariance,
    sample_variance,
)

StrArray = NDArray[np.str_]


@dataclass(frozen=True)
class Arms:
    """Per-arm moments of one comparison (``_c`` control, ``_t`` treatment), broadcast."""

    n_c: FloatArray
    n_t: FloatArray
    mean_c: FloatArray
    mean_t: FloatArray
    var_c: FloatArray
    var_t: FloatArray
    raw_mean_c: FloatArray
    raw_mean_t: FloatArray
    base_var_c: FloatArray
    base_cov_c: FloatArray
    zero_den: NDArray[np.bool_]
    scalar: bool


def is_scalar(*stats: object) -> bool:
    """Whether every field of every statistic is a scalar (results are then plain floats)."""
    return all(np.ndim(v) == 0 for s in stats for v in vars(s).values())


def arms(control: AnyStat, treatment: AnyStat) -> Arms:
    """Reduce two statistics of the same kind to the moments the tests need."""
    if type(control) is not type(treatment):
        raise InvalidInput(
            f"control is a {type(control).__name__} but treatment is a "
            f"{type(treatment).__name__}; compare statistics of the same kind"
        )
    scalar = is_scalar(control, treatment)
    if isinstance(control, MeanStat):
        c, t = _mean_moments(control), _mean_moments(cast(MeanStat, treatment))
    elif isinstance(control, ProportionStat):
        c, t = _proportion_moments(control), _proportion_moments(cast(ProportionStat, treatment))
    elif isinstance(control, RatioStat):
        c, t = _ratio_moments(control), _ratio_moments(cast(RatioStat, treatment))
    elif isinstance(control, CupedStat):
        other = cast(CupedStat, treatment)
        theta = cuped_theta_array(control, other)
        c, t = _cuped_moments(control, theta), _cuped_moments(other, theta)
    else:
        raise InvalidInput(
            f"unsupported statistic {type(control).__name__}; use MeanStat, "
            "ProportionStat, RatioStat or CupedStat"
        )
    n_c, mean_c, var_c, raw_c, bvar_c, bcov_c, zden_c = c
    n_t, mean_t, var_t, raw_t, _, _, zden_t = t
    b = np.broadcast_arrays(
        n_c, n_t, mean_c, mean_t, var_c, var_t, raw_c, raw_t, bvar_c, bcov_c, zden_c | zden_t
    )
    return Arms(
        n_c=b[0],
        n_t=b[1],
        mean_c=b[2],
        mean_t=b[3],
        var_c=b[4],
        var_t=b[5],
        raw_mean_c=b[6],
        raw_mean_t=b[7],
        base_var_c=b[8],
        base_cov_c=b[9],
        zero_den=b[10],
        scalar=scalar,
    )


_Moments = tuple[
    FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.bool_]
]


def _mean_moments(s: MeanStat) -> _Moments:
    n, total, sq = as_array(s.n), as_array(s.total), as_array(s.total_sq)
    mean, var = safe_mean(n, total), sample_variance(n, total, sq)
    return n, mean, var, mean, var, var, np.zeros(np.shape(n), dtype=bool)


def _proportion_moments(s: ProportionStat) -> _Moments:
    n = as_array(s.n)
    p = safe_mean(n, as_array(s.successes))
    var = p * (1.0 - p)  # Bernoulli variance, as a z test uses it
    return n, p, var, p, var, var, np.zeros(np.shape(n), dtype=bool)


def _ratio_moments(s: RatioStat) -> _Moments:
    n = as_array(s.n)
    a, b = as_array(s.num_total), as_array(s.den_total)
    mean_a, mean_b = safe_mean(n, a), safe_mean(n, b)
    var_a = sample_variance(n, a, as_array(s.num_total_sq))
    var_b = sample_variance(n, b, as_array(s.den_total_sq))
    cov = sample_covariance(n, a, b, as_array(s.cross_total))
    zero_den = (n > 0) & (b == 0)
    with np.errstate(all="ignore"):
        ratio = np.where(zero_den, np.nan, mean_a / mean_b)
        # delta method: Var(ā/b̄) ≈ (Var a − 2r·Cov(a,b) + r²·Var b) / b̄²  (per unit)
        var = np.maximum((var_a - 2.0 * ratio * cov + ratio * ratio * var_b) / (mean_b**2), 0.0)
    return n, ratio, var, ratio, var, var, zero_den


def _cuped_moments(s: CupedStat, theta: FloatArray) -> _Moments:
    n = as_array(s.n)
    y, x = as_array(s.total), as_array(s.pre_total)
    mean_y, mean_x = safe_mean(n, y), safe_mean(n, x)
    var_y = sample_variance(n, y, as_array(s.total_sq))
    var_x = sample_variance(n, x, as_array(s.pre_total_sq))
    cov = sample_covariance(n, y, x, as_array(s.cross_total))
    adjusted = mean_y - theta * mean_x
    var = np.maximum(var_y + theta * theta * var_x - 2.0 * theta * cov, 0.0)
    # Cov(y − θx, y): how the adjusted mean moves with the relative lift's denominator
    base_cov = var_y - theta * cov
    return n, adjusted, var, mean_y, var_y, base_cov, np.zeros(np.shape(n), dtype=bool)


def cuped_theta_array(control: CupedStat, treatment: CupedStat) -> FloatArray:
    """θ = Cov(y, x) / Var(x) over both arms pooled (0 when x has no variance)."""
    n = as_array(control.n) + as_array(treatment.n)
    y = as_array(control.total) + as_array(treatment.total)
    x = as_array(control.pre_total) + as_array(treatment.pre_total)
    var_x = sample_variance(n, x, as_array(control.pre_total_sq) + as_array(treatment.pre_total_sq))
    cov = sample_covariance(
        n, y, x, as_array(control.cross_total) + as_array(treatment.cross_total)
    )
    with np.errstate(all="ignore"):
        theta = cov / var_x
    return np.where(np.isfinite(theta) & (var_x > 0), theta, 0.0)


def lift(a: Arms, *, relative: bool) -> tuple[FloatArray, FloatArray]:
    """Point estimate of the lift and the variance of that estimate."""
    with np.errstate(all="ignore"):
        diff = a.mean_t - a.mean_c
        var = a.var_t / a.n_t + a.var_c / a.n_c
        if not relative:
            return diff, var
        b = a.raw_mean_c
        var_b = a.base_var_c / a.n_c
        cov = -a.base_cov_c / a.n_c  # Cov(Δ, b): only the control arm's mean moves both
        inv = 1.0 / b  # divide step by step: b², b⁴ under- or overflow for extreme b
        rel = diff * inv
        rel_var = var * inv * inv + rel * rel * (var_b * inv) * inv - 2.0 * rel * (cov * inv) * inv
        return rel, np.maximum(rel_var, 0.0)


def welch_df(a: Arms) -> FloatArray:
    """Welch–Satterthwaite degrees of freedom of the difference of two means."""
    with np.errstate(all="ignore"):
        vc, vt = a.var_c / a.n_c, a.var_t / a.n_t
        u, w = vc / (vc + vt), vt / (vc + vt)  # shares: no under- or overflow in the squares
        return 1.0 / (u * u / (a.n_c - 1.0) + w * w / (a.n_t - 1.0))


def reasons(a: Arms, *, relative: bool) -> StrArray:
    """Reason code of every comparison (first that applies, in :mod:`._codes` order)."""
    _, var_abs = lift(a, relative=False)
    conditions = [
        (a.n_c == 0) | (a.n_t == 0),
        (a.n_c < 2) | (a.n_t < 2),
        a.zero_den,
        ~(var_abs > 0),
        _tiny_control(a) if relative else np.zeros(a.n_c.shape, bool),
    ]
    codes = [EMPTY_ARM, TOO_FEW_UNITS, ZERO_DENOMINATOR, ZERO_VARIANCE, ZERO_CONTROL_MEAN]
    return np.select(conditions, codes, default=OK).astype(np.str_)


def _tiny_control(a: Arms) -> NDArray[np.bool_]:
    """Control mean zero, or so near zero that the relative lift would exceed 10¹²."""
    scale = np.maximum(np.abs(a.mean_t - a.mean_c), np.sqrt(np.nan_to_num(a.var_c)))
    return np.abs(a.raw_mean_c) <= 1e-12 * scale


def estimate_defined(code: StrArray) -> NDArray[np.bool_]:
    """Where the point estimate exists (an arm has one unit, or no variance, is fine)."""
    return np.isin(code, [OK, TOO_FEW_UNITS, ZERO_VARIANCE])


def value(x: Any, defined: Any, scalar: bool) -> Value:
    """A result field: float or ``None`` for scalar inputs, array with NaN otherwise."""
    arr = np.asarray(x, dtype=np.float64)
    ok = np.asarray(defined, dtype=bool) & np.isfinite(arr)
    if scalar:
        return float(arr) if bool(ok) else None
    return np.where(ok, arr, np.nan)


def reason(code: StrArray, scalar: bool) -> Reason | StrArray:
    """A result's reason: one code for scalar inputs, an array of codes otherwise."""
    return str(code) if scalar else code  # type: ignore[return-value]
