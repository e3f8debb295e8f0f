"""Sequential testing: always-valid confidence intervals and p-values.

A team that looks at an experiment every day and stops at the first significant look
inflates false positives far beyond ``alpha`` with fixed-horizon intervals. The
asymptotic confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central limit
theory and asymptotic confidence sequences", eq. 9), the normal-mixture boundary that
GrowthBook's engine uses, covers the true lift at *every* look simultaneously with
probability ≥ ``1 − alpha``. With ``N = n_c + n_t`` units, the lift's standard error
``se`` and mixture parameter ``ρ``, the half-width is

    se · √( 2(Nρ² + 1) / (Nρ²) · ln(√(Nρ² + 1) / α) ),

and ``ρ² = (−2 ln α + ln(−2 ln α + 1)) / n*`` makes the sequence tightest at ``N = n*``,
the tuning parameter (GrowthBook's default: 5,000 units). The always-valid p-value is the
mixture-SPRT one, ``min(1, √(Nρ² + 1) · exp(−z²·Nρ² / (2(Nρ² + 1))))`` with ``z = est/se``,
which is below ``alpha`` exactly when the interval excludes 0.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from liucun.core import ConfigError
from liucun.experiments.stats._core import arms, lift
from liucun.experiments.stats._frequentist import FrequentistResult, build, check_alpha
from liucun.experiments.stats._inputs import AnyStat, FloatArray

#: Default tuning parameter n*: total units at which the sequence is tightest (GrowthBook).
DEFAULT_TUNING: Final = 5_000.0


def mixture_rho2(alpha: float, tuning: float) -> float:
    """ρ² minimising the sequence's width at ``tuning`` total units (ibid., eq. 161)."""
    log_a = -2.0 * np.log(alpha)
    return float((log_a + np.log(log_a + 1.0)) / tuning)


def sequential_test(
    control: AnyStat,
    treatment: AnyStat,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> FrequentistResult:
    """Always-valid interval and p-value of the lift, safe to compute at every look.

    Takes any statistic (:class:`MeanStat`, :class:`ProportionStat`, :class:`RatioStat`,
    :class:`CupedStat`); the lift and its standard error are those of the matching
    fixed-horizon test, widened into a confidence sequence. Pass the cumulative
    statistics of every look as arrays to get the whole monitoring path in one call.

    Parameters
    ----------
    tuning
        n*, the total number of units (both arms) where the interval is narrowest;
        set it near the planned sample size. Default 5,000.
    """
    check_alpha(alpha)
    if not tuning > 0:
        raise ConfigError(
            f"tuning (n*, units where the interval is tightest) must be > 0, got {tuning}"
        )
    a = arms(control, treatment)
    est, var = lift(a, relative=relative)
    half, p = _sequence(est, var, a.n_c + a.n_t, alpha, tuning)
    with np.errstate(all="ignore"):
        se = np.sqrt(var)
        z = est / se
    return build(
        a,
        relative=relative,
        alpha=alpha,
        test="sequential",
        estimate=est,
        std_error=se,
        half_width=half,
        statistic=z,
        p_value=p,
        df=None,
    )


def _sequence(
    est: FloatArray, var: FloatArray, n: FloatArray, alpha: float, tuning: float
) -> tuple[FloatArray, FloatArray]:
    rho2 = mixture_rho2(alpha, tuning)
    g = n * rho2 + 1.0
    with np.errstate(all="ignore"):
        half = np.sqrt(var) * np.sqrt(2.0 * g / (n * rho2) * np.log(np.sqrt(g) / alpha))
        z2 = est * est / var
        p = np.minimum(1.0, np.sqrt(g) * np.exp(-z2 * n * rho2 / (2.0 * g)))
    return half, p
