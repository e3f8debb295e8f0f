"""Fixed-horizon tests: Welch t (means), two-proportion z, ratio (delta method), CUPED.

Intervals and p-values follow GrowthBook's engine (gbstats ``TwoSidedTTest``): the lift's
standard error from the per-arm variances, the Student t quantile with Welch–
Satterthwaite degrees of freedom, and for relative lift the delta-method variance with
the same degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from liucun.core import ConfigError, InvalidInput
from liucun.experiments.stats._codes import OK, Reason
from liucun.experiments.stats._core import (
    Arms,
    StrArray,
    arms,
    cuped_theta_array,
    estimate_defined,
    is_scalar,
    lift,
    reason,
    reasons,
    value,
    welch_df,
)
from liucun.experiments.stats._inputs import (
    AnyStat,
    CupedStat,
    FloatArray,
    MeanStat,
    ProportionStat,
    RatioStat,
    Value,
)

TestKind = Literal["welch_t", "two_proportion_z", "ratio_t", "cuped_t", "sequential"]


@dataclass(frozen=True)
class FrequentistResult:
    """One comparison of treatment against control.

    Fields are floats for scalar inputs and arrays for array inputs. Where ``reason`` is
    not ``"ok"`` the undefined fields are ``None`` (scalar) or ``NaN`` (arrays):
    ``estimate`` exists for ``"ok"``, ``"too_few_units"`` and ``"zero_variance"``; the
    interval, p-value, standard error, statistic and df only for ``"ok"``.

    Attributes
    ----------
    estimate
        Treatment − control (absolute) or (treatment − control) / control (relative).
    ci_low, ci_high
        Two-sided ``1 − alpha`` confidence interval of the estimate.
    p_value
        Two-sided p-value of "no difference".
    std_error
        Standard error of the estimate.
    statistic
        t or z statistic (estimate / standard error; pooled z for proportions).
    df
        Welch–Satterthwaite degrees of freedom (``None``/NaN for z and sequential tests).
    control_mean, treatment_mean
        The arms' metric means (ratios for a ratio metric; unadjusted for CUPED).
    reason
        ``"ok"`` or the code from :mod:`liucun.experiments.stats` that explains a gap.
    relative, alpha, test
        The options the result was computed with.
    """

    estimate: Value
    ci_low: Value
    ci_high: Value
    p_value: Value
    std_error: Value
    statistic: Value
    df: Value
    control_mean: Value
    treatment_mean: Value
    reason: Reason | StrArray
    relative: bool
    alpha: float
    test: TestKind


def check_alpha(alpha: float) -> None:
    """Refuse a significance level outside (0, 1)."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")


def _require(kind: type, control: AnyStat, treatment: AnyStat, func: str) -> None:
    for name, stat in (("control", control), ("treatment", treatment)):
        if not isinstance(stat, kind):
            raise InvalidInput(
                f"{func} takes {kind.__name__} arms, but {name} is a {type(stat).__name__}; "
                "use proportion_test for ProportionStat, ratio_test for RatioStat and "
                "cuped_ttest for CupedStat"
            )


def build(
    a: Arms,
    *,
    relative: bool,
    alpha: float,
    test: TestKind,
    estimate: FloatArray,
    std_error: FloatArray,
    half_width: FloatArray,
    statistic: FloatArray,
    p_value: FloatArray,
    df: FloatArray | None,
) -> FrequentistResult:
    """Assemble a result, blanking what each reason code leaves undefined."""
    code = reasons(a, relative=relative)
    ok, est_ok, s = code == OK, estimate_defined(code), a.scalar
    return FrequentistResult(
        estimate=value(estimate, est_ok, s),
        ci_low=value(estimate - half_width, ok, s),
        ci_high=value(estimate + half_width, ok, s),
        p_value=value(np.clip(p_value, 0.0, 1.0), ok, s),
        std_error=value(std_error, ok, s),
        statistic=value(statistic, ok, s),
        df=value(np.full(np.shape(estimate), np.nan) if df is None else df, ok, s),
        control_mean=value(a.raw_mean_c, a.n_c > 0, s),
        treatment_mean=value(a.raw_mean_t, a.n_t > 0, s),
        reason=reason(code, s),
        relative=relative,
        alpha=alpha,
        test=test,
    )


def _t_test(a: Arms, *, relative: bool, alpha: float, test: TestKind) -> FrequentistResult:
    est, var = lift(a, relative=relative)
    df = welch_df(a)
    with np.errstate(all="ignore"):
        se = np.sqrt(var)
        t = est / se
        p = 2.0 * special.stdtr(df, -np.abs(t))
        q = special.stdtrit(df, 1.0 - alpha / 2.0)
    return build(
        a,
        relative=relative,
        alpha=alpha,
        test=test,
        estimate=est,
        std_error=se,
        half_width=q * se,
        statistic=t,
        p_value=p,
        df=df,
    )


def welch_ttest(
    control: MeanStat, treatment: MeanStat, *, relative: bool = False, alpha: float = 0.05
) -> FrequentistResult:
    """Welch's t-test of a mean metric, with a confidence interval for the lift.

    ``se² = s²_t/n_t + s²_c/n_c``, ``df`` by Welch–Satterthwaite, interval
    ``estimate ± t_{1−α/2, df} · se``, p-value ``2·P(T_df > |estimate/se|)``. With
    ``relative=True`` the estimate is ``m_t/m_c − 1`` and its variance comes from the
    delta method (same df), as in GrowthBook. Matches
    ``scipy.stats.ttest_ind(equal_var=False)`` on the raw values.

    Examples
    --------
    >>> r = welch_ttest(MeanStat(100, 1000.0, 12000.0), MeanStat(100, 1100.0, 14000.0))
    >>> round(r.estimate, 6), round(r.p_value, 4), r.reason
    (1.0, 0.1127, 'ok')
    """
    check_alpha(alpha)
    _require(MeanStat, control, treatment, "welch_ttest")
    return _t_test(arms(control, treatment), relative=relative, alpha=alpha, test="welch_t")


def ratio_test(
    control: RatioStat, treatment: RatioStat, *, relative: bool = False, alpha: float = 0.05
) -> FrequentistResult:
    """Welch t-test of a ratio metric (Σnum / Σden per arm) with delta-method variances.

    Each arm's ratio ``r = ā / b̄`` has per-unit variance
    ``(s²_a − 2r·s_ab + r²·s²_b) / b̄²``; the comparison is then :func:`welch_ttest`'s.
    """
    check_alpha(alpha)
    _require(RatioStat, control, treatment, "ratio_test")
    return _t_test(arms(control, treatment), relative=relative, alpha=alpha, test="ratio_t")


def cuped_ttest(
    control: CupedStat, treatment: CupedStat, *, relative: bool = False, alpha: float = 0.05
) -> FrequentistResult:
    """Welch t-test of a mean metric after CUPED adjustment with a pre-period covariate.

    ``θ = Cov(y, x) / Var(x)`` over both arms pooled (:func:`cuped_theta`); each arm is
    analysed as ``y − θx``: adjusted mean ``ȳ − θx̄`` and variance
    ``s²_y + θ²s²_x − 2θ·s_xy``. The absolute lift is the difference of adjusted means;
    the relative lift divides it by the control's unadjusted mean (delta method). The
    same as a Welch test of ``y − θ̂x`` with θ̂ the pooled OLS slope.
    """
    check_alpha(alpha)
    _require(CupedStat, control, treatment, "cuped_ttest")
    return _t_test(arms(control, treatment), relative=relative, alpha=alpha, test="cuped_t")


def cuped_theta(control: CupedStat, treatment: CupedStat) -> Value:
    """The CUPED coefficient θ pooled over both arms (0 when the covariate is constant)."""
    theta = cuped_theta_array(control, treatment)
    return float(theta) if is_scalar(control, treatment) else theta


def proportion_test(
    control: ProportionStat,
    treatment: ProportionStat,
    *,
    relative: bool = False,
    alpha: float = 0.05,
) -> FrequentistResult:
    """Two-proportion z test with a Wald confidence interval.

    The p-value is the pooled z test of equal proportions (as statsmodels'
    ``proportions_ztest``), the same for absolute and relative lift since the null
    hypothesis is the same; the interval is the unpooled Wald interval
    ``p_t − p_c ± z_{1−α/2}·√(p_t q_t/n_t + p_c q_c/n_c)`` (statsmodels'
    ``confint_proportions_2indep(method="wald")``), or its delta-method version for
    relative lift.
    """
    check_alpha(alpha)
    _require(ProportionStat, control, treatment, "proportion_test")
    a = arms(control, treatment)
    est, var = lift(a, relative=relative)
    with np.errstate(all="ignore"):
        pooled = (a.mean_c * a.n_c + a.mean_t * a.n_t) / (a.n_c + a.n_t)
        se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / a.n_c + 1.0 / a.n_t))
        z = (a.mean_t - a.mean_c) / se0
        p = 2.0 * special.ndtr(-np.abs(z))
        se = np.sqrt(var)
    q = special.ndtri(1.0 - alpha / 2.0)
    return build(
        a,
        relative=relative,
        alpha=alpha,
        test="two_proportion_z",
        estimate=est,
        std_error=se,
        half_width=q * se,
        statistic=z,
        p_value=p,
        df=None,
    )
