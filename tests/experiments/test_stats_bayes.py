"""Bayesian chance to win and expected loss against numerical integration of the normal
posterior, and the conjugate normal prior in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss
from scipy import integrate

from liucun.core import ConfigError
from liucun.experiments.stats import (
    MeanStat,
    NormalPrior,
    ProportionStat,
    bayesian_test,
    proportion_test,
    welch_ttest,
)

C = MeanStat(800, 8_000.0, 8_000 * 10.0 + 800 * 16.0)  # mean 10, variance ≈ 16
CASES = [MeanStat(700, 7_210.0, 7_210 * 10.3 + 700 * 17.0), MeanStat(900, 8_730.0, 90_000.0)]


def _loss(mu: float, sd: float, sign: float) -> float:
    """E[max(0, sign·δ)] for δ ~ N(mu, sd²), by quadrature."""
    value, _ = integrate.quad(
        lambda d: max(0.0, sign * d) * ss.norm.pdf(d, mu, sd), mu - 12 * sd, mu + 12 * sd,
        points=[0.0], epsabs=1e-14, epsrel=1e-12, limit=200,
    )  # fmt: skip
    return value


@pytest.mark.parametrize("treatment", CASES)
@pytest.mark.parametrize("relative", [False, True])
def test_flat_prior_posterior_is_the_sampling_normal(treatment: MeanStat, relative: bool) -> None:
    b = bayesian_test(C, treatment, relative=relative)
    f = welch_ttest(C, treatment, relative=relative)
    mu, sd = f.estimate, f.std_error
    assert isinstance(mu, float) and isinstance(sd, float)
    assert (b.estimate, b.std_error) == pytest.approx((mu, sd), rel=1e-12)
    assert b.chance_to_win == pytest.approx(ss.norm.sf(0, mu, sd), rel=1e-9)
    assert b.expected_loss == pytest.approx(_loss(mu, sd, -1.0), rel=1e-8, abs=1e-13)
    assert b.expected_loss_control == pytest.approx(_loss(mu, sd, 1.0), rel=1e-8, abs=1e-13)
    low, high = ss.norm.interval(0.95, mu, sd)
    assert (b.ci_low, b.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_normal_prior_is_conjugate() -> None:
    prior = NormalPrior(mean=0.0, variance=0.3**2)
    b = bayesian_test(C, CASES[0], relative=True, prior=prior)
    f = welch_ttest(C, CASES[0], relative=True)
    v = f.std_error**2  # type: ignore[operator]
    post_var = 1 / (1 / v + 1 / prior.variance)
    post_mean = post_var * (f.estimate / v + prior.mean / prior.variance)  # type: ignore[operator]
    assert (b.estimate, b.std_error) == pytest.approx((post_mean, np.sqrt(post_var)), rel=1e-12)
    assert abs(b.estimate) < abs(f.estimate)  # type: ignore[arg-type]  # shrunk toward 0
    with pytest.raises(ConfigError, match="variance must be > 0"):
        NormalPrior(variance=0.0)


def test_chance_to_win_mirrors_one_sided_p_value_and_edge_cases() -> None:
    c, t = ProportionStat(5_000, 500), ProportionStat(5_000, 560)
    b = bayesian_test(c, t)
    z = proportion_test(c, t)
    assert b.chance_to_win == pytest.approx(ss.norm.cdf(z.estimate / z.std_error), rel=1e-12)  # type: ignore[operator]
    assert b.chance_to_win > 0.95 and b.expected_loss < b.expected_loss_control  # type: ignore[operator]
    flat = bayesian_test(MeanStat(4, 8.0, 16.0), MeanStat(4, 8.0, 16.0))
    assert (flat.reason, flat.estimate, flat.chance_to_win) == ("zero_variance", 0.0, None)
