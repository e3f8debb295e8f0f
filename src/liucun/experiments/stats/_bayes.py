"""Bayesian (normal approximation) chance to win and expected loss, as GrowthBook reports.

The lift's sampling distribution is approximately ``N(est, se²)``; with a flat prior the
posterior of the true lift δ is that same normal, and with a normal prior ``N(μ₀, τ²)``
it is the precision-weighted combination. From the posterior ``N(μ, σ²)``:

- chance to win ``P(δ > 0) = Φ(μ/σ)``;
- expected loss of shipping the treatment ``E[max(0, −δ)] = σφ(μ/σ) − μΦ(−μ/σ)``, and of
  keeping the control ``E[max(0, δ)] = σφ(μ/σ) + μΦ(μ/σ)``;
- the ``1 − alpha`` credible interval ``μ ± z_{1−α/2}·σ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from liucun.core import ConfigError
from liucun.experiments.stats._codes import OK, Reason
from liucun.experiments.stats._core import (
    StrArray,
    arms,
    estimate_defined,
    lift,
    reason,
    reasons,
    value,
)
from liucun.experiments.stats._frequentist import check_alpha
from liucun.experiments.stats._inputs import AnyStat, Value


@dataclass(frozen=True)
class NormalPrior:
    """A normal prior ``N(mean, variance)`` on the lift (on the scale of the analysis)."""

    mean: float = 0.0
    variance: float = 0.09

    def __post_init__(self) -> None:
        if not self.variance > 0:
            raise ConfigError(f"NormalPrior.variance must be > 0, got {self.variance}")


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summary of the lift; fields as in :class:`FrequentistResult`.

    Attributes
    ----------
    estimate
        Posterior mean of the lift (the observed lift under a flat prior).
    ci_low, ci_high
        ``1 − alpha`` credible interval.
    std_error
        Posterior standard deviation.
    chance_to_win
        ``P(lift > 0)``.
    expected_loss
        Expected loss of shipping the treatment, ``E[max(0, −lift)]``.
    expected_loss_control
        Expected loss of keeping the control, ``E[max(0, lift)]``.
    """

    estimate: Value
    ci_low: Value
    ci_high: Value
    std_error: Value
    chance_to_win: Value
    expected_loss: Value
    expected_loss_control: Value
    control_mean: Value
    treatment_mean: Value
    reason: Reason | StrArray
    relative: bool
    alpha: float


def bayesian_test(
    control: AnyStat,
    treatment: AnyStat,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    prior: NormalPrior | None = None,
) -> BayesianResult:
    """Chance to win, expected loss and credible interval of the lift (normal approximation).

    ``prior=None`` is a flat prior (GrowthBook's default); any statistic type is accepted.
    """
    check_alpha(alpha)
    a = arms(control, treatment)
    est, var = lift(a, relative=relative)
    with np.errstate(all="ignore"):
        if prior is not None:
            precision = 1.0 / var + 1.0 / prior.variance
            est = (est / var + prior.mean / prior.variance) / precision
            var = 1.0 / precision
        sd = np.sqrt(var)
        x = est / sd
        density = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
        win = special.ndtr(x)
        loss_t = sd * density - est * special.ndtr(-x)
        loss_c = sd * density + est * win
    half = special.ndtri(1.0 - alpha / 2.0) * sd
    code = reasons(a, relative=relative)
    ok, s = code == OK, a.scalar
    return BayesianResult(
        estimate=value(est, estimate_defined(code), s),
        ci_low=value(est - half, ok, s),
        ci_high=value(est + half, ok, s),
        std_error=value(sd, ok, s),
        chance_to_win=value(win, ok, s),
        expected_loss=value(np.maximum(loss_t, 0.0), ok, s),
        expected_loss_control=value(np.maximum(loss_c, 0.0), ok, s),
        control_mean=value(a.raw_mean_c, a.n_c > 0, s),
        treatment_mean=value(a.raw_mean_t, a.n_t > 0, s),
        reason=reason(code, s),
        relative=relative,
        alpha=alpha,
    )
