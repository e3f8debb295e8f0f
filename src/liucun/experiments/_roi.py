"""Retention ROI of a campaign: incremental revenue ÷ incremental cost, with an interval.

Each arm is a :class:`~liucun.experiments.stats.RatioStat` of revenue (numerator) and
cost (denominator) per unit, so the cross-product Σ revenue·cost is at hand. With
``A = m·(ȳ_t − ȳ_c)`` the incremental revenue per treated unit (``m`` the margin, 1 for
revenue ROI) and ``B = c̄_t − c̄_c + k`` the incremental cost (coupons redeemed, plus
``k`` = contact cost per treated unit), ``ROI = A / B``.

- ``method="fieller"`` (default): all ``R`` with ``(A − RB)² ≤ z²·Var(A − RB)``, i.e.
  the roots of ``(B² − z²V_B)R² − 2(AB − z²C)R + (A² − z²V_A) = 0`` — exact for a ratio
  of normal estimates and bounded only when the cost is significantly positive
  (``B² > z²V_B``); otherwise the reason is ``"unbounded_interval"``.
- ``method="delta"``: ``R ± z·√(V_A − 2R·C + R²·V_B) / |B|``.

``V_A = m²(s²_{y,t}/n_t + s²_{y,c}/n_c)``, ``V_B = s²_{c,t}/n_t + s²_{c,c}/n_c`` and
``C = m(s_{yc,t}/n_t + s_{yc,c}/n_c)``. A campaign is flagged when its ROI lower bound is
below ``threshold`` (default 1.2), or when there is no lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import special

from liucun.core import ConfigError
from liucun.experiments.stats import (
    EMPTY_ARM,
    OK,
    TOO_FEW_UNITS,
    UNBOUNDED_INTERVAL,
    ZERO_DENOMINATOR,
    RatioStat,
    Reason,
)
from liucun.experiments.stats._core import StrArray, is_scalar, reason, value
from liucun.experiments.stats._frequentist import check_alpha
from liucun.experiments.stats._inputs import (
    FloatArray,
    Value,
    as_array,
    safe_mean,
    sample_covariance,
    sample_variance,
)

#: ROI lower bound below which a campaign is flagged (revenue per unit of cost).
ROI_THRESHOLD: Final = 1.2
RoiMethod = Literal["fieller", "delta"]


@dataclass(frozen=True)
class RoiResult:
    """ROI of one campaign (or arrays of campaigns).

    ``roi`` is defined unless an arm is empty or the incremental cost is not positive
    (``"zero_denominator"``); the interval needs two units per arm and, for Fieller, a
    significantly positive cost. ``flagged`` is true when ``ci_low < threshold`` or the
    lower bound is undefined. Per-unit ``incremental_revenue`` and ``incremental_cost``
    refer to treated units; ``total_*`` multiply them by the treated count.
    """

    roi: Value
    ci_low: Value
    ci_high: Value
    incremental_revenue: Value
    incremental_cost: Value
    total_incremental_revenue: Value
    total_cost: Value
    flagged: bool | NDArray[np.bool_]
    threshold: float
    reason: Reason | StrArray
    method: RoiMethod
    alpha: float


def _arm(s: RatioStat) -> tuple[FloatArray, ...]:
    n, y, c = as_array(s.n), as_array(s.num_total), as_array(s.den_total)
    return (
        n,
        safe_mean(n, y),
        safe_mean(n, c),
        sample_variance(n, y, as_array(s.num_total_sq)),
        sample_variance(n, c, as_array(s.den_total_sq)),
        sample_covariance(n, y, c, as_array(s.cross_total)),
    )


def campaign_roi(
    control: RatioStat,
    treatment: RatioStat,
    *,
    contact_cost: float = 0.0,
    margin: float = 1.0,
    alpha: float = 0.05,
    threshold: float = ROI_THRESHOLD,
    method: RoiMethod = "fieller",
) -> RoiResult:
    """ROI with a confidence interval from per-arm revenue/cost statistics.

    Parameters
    ----------
    control, treatment
        :class:`RatioStat` of (revenue, cost) per unit in each arm, e.g. from
        :func:`variant_statistics` with ``Metric("roi", "revenue", "ratio",
        denominator="coupon_cost")``.
    contact_cost
        Cost of reaching one treated unit (message, call), added to the coupon cost.
    margin
        Share of revenue that is profit; 1 gives revenue ROI, the gross margin profit ROI.

    Examples
    --------
    >>> c = RatioStat(1000, 20_000.0, 1.2e6, 0.0, 0.0, 0.0)
    >>> t = RatioStat(1000, 26_000.0, 1.6e6, 3_000.0, 30_000.0, 120_000.0)
    >>> r = campaign_roi(c, t)
    >>> round(r.roi, 2), r.flagged
    (2.0, True)
    """
    # long only by its docstring (with a doctest); the body is about 45 lines
    check_alpha(alpha)
    if method not in ("fieller", "delta"):
        raise ConfigError(f"method must be 'fieller' or 'delta', got {method!r}")
    if contact_cost < 0 or not 0 < margin <= 1:
        raise ConfigError(
            f"contact_cost must be ≥ 0 and margin in (0, 1]; got {contact_cost} and {margin}"
        )
    n_c, y_c, c_c, vy_c, vc_c, cov_c = _arm(control)
    n_t, y_t, c_t, vy_t, vc_t, cov_t = _arm(treatment)
    z = special.ndtri(1.0 - alpha / 2.0)
    with np.errstate(all="ignore"):
        a = margin * (y_t - y_c)
        b = c_t - c_c + contact_cost
        va = margin**2 * (vy_t / n_t + vy_c / n_c)
        vb = vc_t / n_t + vc_c / n_c
        cab = margin * (cov_t / n_t + cov_c / n_c)
        roi = a / b
        if method == "delta":
            half = z * np.sqrt(np.maximum(va - 2 * roi * cab + roi * roi * vb, 0.0)) / np.abs(b)
            low, high = roi - half, roi + half
            bounded = np.isfinite(half)
        else:
            qa, qb = b * b - z * z * vb, a * b - z * z * cab
            disc = np.maximum(qb * qb - qa * (a * a - z * z * va), 0.0)
            bounded = qa > 0
            low, high = (qb - np.sqrt(disc)) / qa, (qb + np.sqrt(disc)) / qa
    code = np.select(
        [(n_c == 0) | (n_t == 0), ~(b > 0), (n_c < 2) | (n_t < 2), ~bounded],
        [EMPTY_ARM, ZERO_DENOMINATOR, TOO_FEW_UNITS, UNBOUNDED_INTERVAL],
        default=OK,
    ).astype(np.str_)
    scalar = is_scalar(control, treatment)
    has_roi = np.isin(code, [OK, TOO_FEW_UNITS, UNBOUNDED_INTERVAL])
    ok = code == OK
    has_arms = (n_c > 0) & (n_t > 0)
    flagged = ~ok | ~(low >= threshold)
    return RoiResult(
        roi=value(roi, has_roi, scalar),
        ci_low=value(low, ok, scalar),
        ci_high=value(high, ok, scalar),
        incremental_revenue=value(a, has_arms, scalar),
        incremental_cost=value(b, has_arms, scalar),
        total_incremental_revenue=value(a * n_t, has_arms, scalar),
        total_cost=value(b * n_t, has_arms, scalar),
        flagged=bool(flagged) if scalar else flagged,
        threshold=threshold,
        reason=reason(code, scalar),
        method=method,
        alpha=alpha,
    )
