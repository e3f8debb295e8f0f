"""Power, minimum detectable effect and sample size of two-sided two-arm tests.

``n_control`` units in control and ``ratio · n_control`` in treatment.

Means (``method="z"``, statsmodels' ``NormalIndPower``): with ``se = sd·√(1/n_c + 1/n_t)``
and ``z = z_{1−α/2}``, ``power = Φ(δ/se − z) + Φ(−δ/se − z)`` (both tails). With
``method="t"`` (statsmodels' ``TTestIndPower``) the tails are those of the noncentral t
with ``n_c + n_t − 2`` df and noncentrality ``δ/se``.

Proportions (statsmodels' ``power_proportions_2indep``): the pooled z test, with the
pooled variance under the null and the unpooled one under the alternative:
``power = Φ((δ − z·se₀)/se₁) + Φ((−δ − z·se₀)/se₁)``.

Sample size and MDE invert the power by bisection, element-wise over arrays, to
machine precision; round a sample size up to whole units yourself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from liucun.core import ConfigError
from liucun.experiments.stats._codes import OK, UNREACHABLE, Reason
from liucun.experiments.stats._core import StrArray, reason, value
from liucun.experiments.stats._frequentist import check_alpha
from liucun.experiments.stats._inputs import FloatArray, Value, as_array

PowerMethod = Literal["z", "t"]
_ITERATIONS = 200


@dataclass(frozen=True)
class PowerResult:
    """A power calculation: all four quantities, whichever one was solved for.

    ``effect`` is absolute (for proportions: treatment rate − baseline). Where the
    requested power cannot be reached (``reason == "unreachable"``) the solved field is
    ``None``/NaN.
    """

    power: Value
    effect: Value
    n_control: Value
    n_treatment: Value
    alpha: float
    reason: Reason | StrArray


def _check(alpha: float, ratio: ArrayLike, method: str, power: ArrayLike | None = None) -> None:
    check_alpha(alpha)
    if np.any(as_array(ratio) <= 0):
        raise ConfigError(
            f"ratio (treatment units per control unit) must be > 0, got {as_array(ratio).tolist()}"
        )
    if method not in ("z", "t"):
        raise ConfigError(f"method must be 'z' (normal) or 't' (Student), got {method!r}")
    if power is not None and np.any((as_array(power) <= alpha) | (as_array(power) >= 1)):
        raise ConfigError(
            f"power must be between alpha ({alpha}) and 1, e.g. 0.8; got {as_array(power).tolist()}"
        )


def _positive(name: str, x: ArrayLike) -> FloatArray:
    a = as_array(x)
    if np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise ConfigError(f"{name} must be a positive number, got {a.tolist()}")
    return a


def _means_power(
    effect: FloatArray,
    sd: FloatArray,
    n_c: FloatArray,
    ratio: FloatArray,
    alpha: float,
    method: str,
) -> FloatArray:
    n_t = n_c * ratio
    nc = np.abs(effect) / (sd * np.sqrt(1.0 / n_c + 1.0 / n_t))
    if method == "z":
        z = special.ndtri(1.0 - alpha / 2.0)
        return special.ndtr(nc - z) + special.ndtr(-nc - z)
    df = n_c + n_t - 2.0
    crit = special.stdtrit(df, 1.0 - alpha / 2.0)
    return (1.0 - special.nctdtr(df, nc, crit)) + special.nctdtr(df, nc, -crit)


def _prop_power(
    effect: FloatArray, base: FloatArray, n_c: FloatArray, ratio: FloatArray, alpha: float
) -> FloatArray:
    n_t = n_c * ratio
    p_t = base + effect
    pooled = (base * n_c + p_t * n_t) / (n_c + n_t)
    with np.errstate(all="ignore"):
        se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t))
        se1 = np.sqrt(base * (1.0 - base) / n_c + p_t * (1.0 - p_t) / n_t)
        z = special.ndtri(1.0 - alpha / 2.0)
        d = np.abs(effect)
        return special.ndtr((d - z * se0) / se1) + special.ndtr((-d - z * se0) / se1)


def _bisect(
    f: Callable[[FloatArray], FloatArray],
    target: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    *,
    log: bool,
) -> FloatArray:
    """Root of the increasing ``f(x) = target`` in ``[lo, hi]``, element-wise."""
    lo, hi = (np.log(lo), np.log(hi)) if log else (lo, hi)
    for _ in range(_ITERATIONS):
        mid = 0.5 * (lo + hi)
        below = f(np.exp(mid) if log else mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(np.float64).eps * np.maximum(np.abs(hi), 1e-300)):
            break
    x = 0.5 * (lo + hi)
    return np.exp(x) if log else x


def _result(
    power: ArrayLike,
    effect: ArrayLike,
    n_c: ArrayLike,
    ratio: ArrayLike,
    alpha: float,
    reachable: ArrayLike,
    scalar: bool,
) -> PowerResult:
    pw, ef, nc, r, ok = np.broadcast_arrays(
        as_array(power), as_array(effect), as_array(n_c), as_array(ratio), np.asarray(reachable)
    )
    code = np.where(ok, OK, UNREACHABLE).astype(np.str_)
    return PowerResult(
        power=value(pw, True, scalar),
        effect=value(ef, True, scalar),
        n_control=value(nc, True, scalar),
        n_treatment=value(nc * r, True, scalar),
        alpha=alpha,
        reason=reason(code, scalar),
    )


def _scalar(*xs: ArrayLike) -> bool:
    return all(np.ndim(x) == 0 for x in xs)


def power_means(
    effect: ArrayLike,
    *,
    sd: ArrayLike,
    n_control: ArrayLike,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
    method: PowerMethod = "z",
) -> PowerResult:
    """Power to detect an absolute difference ``effect`` in a mean with per-unit ``sd``."""
    _check(alpha, ratio, method)
    sd_, n = _positive("sd", sd), _positive("n_control", n_control)
    eff, r = as_array(effect), as_array(ratio)
    pw = _means_power(eff, sd_, n, r, alpha, method)
    return _result(pw, eff, n, r, alpha, True, _scalar(effect, sd, n_control, ratio))


def sample_size_means(
    effect: ArrayLike,
    *,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
    method: PowerMethod = "z",
) -> PowerResult:
    """Control units needed to detect ``effect`` with the given ``power`` (exact, not rounded)."""
    _check(alpha, ratio, method, power)
    sd_, r, target = _positive("sd", sd), as_array(ratio), as_array(power)
    eff = as_array(effect)
    reachable = eff != 0
    d = np.where(reachable, np.abs(eff), 1.0)
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(target)
    guess = (z * sd_ / d) ** 2 * (1.0 + 1.0 / r)  # one-tail normal approximation
    shape = np.broadcast(guess, target).shape
    # the z power falls to alpha as n → 0; the t test needs n_c + n_t > 2 (df > 0)
    lo = np.broadcast_to(1e-6 * guess if method == "z" else 2.0 / (1.0 + r) + 1e-6, shape)
    hi = 4.0 * guess + 16.0
    n = _bisect(lambda n: _means_power(d, sd_, n, r, alpha, method), target, lo, hi, log=True)
    n = np.where(reachable, n, np.nan)
    return _result(target, eff, n, r, alpha, reachable, _scalar(effect, sd, power, ratio))


def mde_means(
    *,
    sd: ArrayLike,
    n_control: ArrayLike,
    power: ArrayLike = 0.8,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
    method: PowerMethod = "z",
) -> PowerResult:
    """Smallest absolute difference in means detected with ``power`` at ``n_control`` units."""
    _check(alpha, ratio, method, power)
    sd_, n, r, target = (
        _positive("sd", sd),
        _positive("n_control", n_control),
        as_array(ratio),
        as_array(power),
    )
    se = sd_ * np.sqrt(1.0 / n + 1.0 / (n * r))
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(target)
    hi = np.broadcast_to(4.0 * z * se + 10.0 * se, np.broadcast(se, target).shape)
    if method == "t":
        hi = hi * 50.0
    lo = np.zeros_like(hi)
    eff = _bisect(lambda e: _means_power(e, sd_, n, r, alpha, method), target, lo, hi, log=False)
    return _result(target, eff, n, r, alpha, True, _scalar(sd, n_control, power, ratio))


def _check_rate(baseline: FloatArray) -> None:
    if np.any(~((baseline > 0) & (baseline < 1))):
        raise ConfigError(f"baseline must be a rate strictly between 0 and 1, got {baseline}")


def power_proportions(
    effect: ArrayLike,
    *,
    baseline: ArrayLike,
    n_control: ArrayLike,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
) -> PowerResult:
    """Power of the pooled two-proportion z test to detect ``baseline → baseline + effect``."""
    _check(alpha, ratio, "z")
    base, eff, n, r = (
        as_array(baseline),
        as_array(effect),
        _positive("n_control", n_control),
        as_array(ratio),
    )
    _check_rate(base)
    _check_rate(base + eff)
    pw = _prop_power(eff, base, n, r, alpha)
    return _result(pw, eff, n, r, alpha, True, _scalar(effect, baseline, n_control, ratio))


def sample_size_proportions(
    effect: ArrayLike,
    *,
    baseline: ArrayLike,
    power: ArrayLike = 0.8,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
) -> PowerResult:
    """Control units needed to detect ``baseline → baseline + effect`` with ``power``."""
    _check(alpha, ratio, "z", power)
    base, eff, r, target = as_array(baseline), as_array(effect), as_array(ratio), as_array(power)
    _check_rate(base)
    _check_rate(base + eff)
    reachable = eff != 0
    d = np.where(reachable, eff, 1e-3)
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(target)
    var = base * (1 - base) + (base + d) * (1 - base - d) / r + 0.25 * (1.0 + 1.0 / r)
    guess = z * z * var / (d * d)
    lo = np.broadcast_to(np.minimum(1.0, 0.01 * guess), np.broadcast(guess, target).shape)
    n = _bisect(
        lambda n: _prop_power(d, base, n, r, alpha), target, lo, 4.0 * guess + 16.0, log=True
    )
    n = np.where(reachable, n, np.nan)
    return _result(target, eff, n, r, alpha, reachable, _scalar(effect, baseline, power, ratio))


def mde_proportions(
    *,
    baseline: ArrayLike,
    n_control: ArrayLike,
    power: ArrayLike = 0.8,
    ratio: ArrayLike = 1.0,
    alpha: float = 0.05,
) -> PowerResult:
    """Smallest upward change of a rate detected with ``power`` at ``n_control`` units.

    ``"unreachable"`` when even a rate of 100 % in treatment would not give the power.
    """
    _check(alpha, ratio, "z", power)
    base, n, r, target = (
        as_array(baseline),
        _positive("n_control", n_control),
        as_array(ratio),
        as_array(power),
    )
    _check_rate(base)
    top = (1.0 - base) * (1.0 - 1e-12)
    reachable = _prop_power(top, base, n, r, alpha) >= target
    lo = np.zeros(np.broadcast(top, target, n, r).shape)
    hi = np.broadcast_to(top, lo.shape)
    eff = _bisect(lambda e: _prop_power(e, base, n, r, alpha), target, lo, hi, log=False)
    eff = np.where(reachable, eff, np.nan)
    return _result(target, eff, n, r, alpha, reachable, _scalar(baseline, n_control, power, ratio))
