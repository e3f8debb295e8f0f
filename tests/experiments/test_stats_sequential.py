"""Always-valid intervals: coverage under daily peeking by seeded simulation, the
mixture-SPRT p-value, and the duality of interval and p-value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from liucun.core import ConfigError
from liucun.experiments.stats import (
    DEFAULT_TUNING,
    MeanStat,
    ProportionStat,
    sequential_test,
    welch_ttest,
)
from liucun.experiments.stats._sequential import mixture_rho2

SEQUENCES, LOOKS, PER_LOOK = 500, 50, 100


def _cumulative_arm(rng: np.random.Generator) -> MeanStat:
    """A/A data (skewed, like revenue), cumulated over looks: shape (sequences, looks)."""
    x = rng.exponential(size=(SEQUENCES, LOOKS, PER_LOOK))
    n = np.broadcast_to(np.arange(1, LOOKS + 1) * float(PER_LOOK), (SEQUENCES, LOOKS))
    return MeanStat(n.copy(), x.sum(-1).cumsum(-1), (x * x).sum(-1).cumsum(-1))


def test_coverage_under_repeated_peeking() -> None:
    """500 A/A experiments, each looked at 50 times: the confidence sequence covers the
    true lift (0) at every look in ≥ 95 % of them; fixed-horizon intervals do not."""
    rng = np.random.default_rng(2024)
    control, treatment = _cumulative_arm(rng), _cumulative_arm(rng)

    def coverage(r) -> float:  # type: ignore[no-untyped-def]
        return float(((r.ci_low <= 0) & (r.ci_high >= 0)).all(axis=-1).mean())

    seq = sequential_test(control, treatment)
    naive = welch_ttest(control, treatment)
    assert coverage(seq) >= 0.95
    assert coverage(naive) < 0.80  # peeking at a fixed-horizon interval: ~2/3 coverage
    # the p-values agree: stopping at the first p < 0.05 is safe only for the sequence
    assert float((seq.p_value < 0.05).any(axis=-1).mean()) <= 0.05  # type: ignore[operator]
    assert float((naive.p_value < 0.05).any(axis=-1).mean()) > 0.20  # type: ignore[operator]


def test_p_value_is_the_mixture_sprt_and_dual_to_the_interval() -> None:
    """Johari et al. (2017): Λ = √(V/(V+τ²))·exp(τ²θ̂²/(2V(V+τ²))), p = min(1, 1/Λ), with
    V = se² and τ² = ρ²·N·V."""
    rng = np.random.default_rng(8)
    n_c, n_t = rng.integers(50, 20_000, 200).astype(float), rng.integers(50, 20_000, 200)
    mu_c, mu_t = rng.normal(10, 0.3, 200), rng.normal(10, 0.3, 200)
    c = MeanStat(n_c, mu_c * n_c, (mu_c**2 + 4.0) * n_c)
    t = MeanStat(n_t, mu_t * n_t, (mu_t**2 + 4.0) * n_t)
    r = sequential_test(c, t, alpha=0.1, tuning=2_000)
    v = r.std_error**2  # type: ignore[operator]
    tau2 = mixture_rho2(0.1, 2_000) * (n_c + n_t) * v
    lam = np.sqrt(v / (v + tau2)) * np.exp(tau2 * r.estimate**2 / (2 * v * (v + tau2)))  # type: ignore[operator]
    np.testing.assert_allclose(r.p_value, np.minimum(1, 1 / lam), rtol=1e-9)  # type: ignore[arg-type]
    excludes_zero = (r.ci_low > 0) | (r.ci_high < 0)  # type: ignore[operator]
    np.testing.assert_array_equal(excludes_zero, r.p_value < 0.1)  # type: ignore[operator]
    assert 20 < excludes_zero.sum() < 180  # both outcomes occur: the check can fail


def test_interval_is_wider_than_fixed_horizon_and_tightest_near_tuning() -> None:
    c, t = MeanStat(2_500, 25_000.0, 260_000.0), MeanStat(2_500, 25_500.0, 270_000.0)
    seq, fixed = sequential_test(c, t), welch_ttest(c, t)
    width = seq.ci_high - seq.ci_low  # type: ignore[operator]
    assert width > fixed.ci_high - fixed.ci_low  # type: ignore[operator]
    assert seq.estimate == fixed.estimate and seq.test == "sequential" and seq.df is None

    def factor(rho2: float, n: float = DEFAULT_TUNING, alpha: float = 0.05) -> float:
        g = n * rho2 + 1
        return float(np.sqrt(2 * g / (n * rho2) * np.log(np.sqrt(g) / alpha)))

    best = optimize.minimize_scalar(lambda x: factor(np.exp(x)), bounds=(-20, 0), method="bounded")
    assert factor(mixture_rho2(0.05, DEFAULT_TUNING)) <= best.fun * (1 + 1e-3)
    assert seq.ci_high - seq.estimate == pytest.approx(
        factor(mixture_rho2(0.05, 5_000)) * seq.std_error
    )  # type: ignore[operator]


def test_any_statistic_and_edge_cases() -> None:
    r = sequential_test(ProportionStat(1_000, 100), ProportionStat(1_000, 150), relative=True)
    assert r.reason == "ok" and r.estimate == pytest.approx(0.5)
    empty = sequential_test(MeanStat(0, 0.0, 0.0), MeanStat(3, 3.0, 5.0))
    assert (empty.reason, empty.ci_low, empty.p_value) == ("empty_arm", None, None)
    with pytest.raises(ConfigError, match="tuning"):
        sequential_test(MeanStat(3, 3.0, 5.0), MeanStat(3, 3.0, 5.0), tuning=0)
