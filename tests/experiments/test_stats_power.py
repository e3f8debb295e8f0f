"""Power, sample size and MDE against statsmodels' NormalIndPower, TTestIndPower and
power_proportions_2indep (statsmodels' nobs1 is our treatment arm, ratio the inverse)."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import power_proportions_2indep

from liucun.core import ConfigError
from liucun.experiments.stats import (
    mde_means,
    mde_proportions,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)

MEANS = [(0.1, 1.0, 1_000, 1.0, 0.05), (2.5, 12.0, 300, 2.0, 0.1), (-0.3, 2.0, 80, 0.5, 0.01)]


@pytest.mark.parametrize(("effect", "sd", "n", "ratio", "alpha"), MEANS)
@pytest.mark.parametrize(("method", "oracle"), [("z", NormalIndPower()), ("t", TTestIndPower())])
def test_power_of_means(effect, sd, n, ratio, alpha, method, oracle) -> None:  # type: ignore[no-untyped-def]
    r = power_means(effect, sd=sd, n_control=n, ratio=ratio, alpha=alpha, method=method)
    ref = oracle.power(effect_size=effect / sd, nobs1=n, alpha=alpha, ratio=ratio)
    assert r.power == pytest.approx(ref, rel=1e-9)
    assert r.n_treatment == pytest.approx(n * ratio) and r.reason == "ok"


@pytest.mark.parametrize(("effect", "sd", "n", "ratio", "alpha"), MEANS)
@pytest.mark.parametrize(("method", "oracle"), [("z", NormalIndPower()), ("t", TTestIndPower())])
def test_sample_size_and_mde_of_means_invert_the_power(
    effect, sd, n, ratio, alpha, method, oracle
) -> None:  # type: ignore[no-untyped-def]
    need = sample_size_means(effect, sd=sd, power=0.8, ratio=ratio, alpha=alpha, method=method)
    assert isinstance(need.n_control, float)
    ref = oracle.power(effect_size=effect / sd, nobs1=need.n_control, alpha=alpha, ratio=ratio)
    assert ref == pytest.approx(0.8, rel=1e-9)
    solved = oracle.solve_power(effect_size=effect / sd, power=0.8, alpha=alpha, ratio=ratio)
    assert need.n_control == pytest.approx(solved, rel=1e-6)
    mde = mde_means(sd=sd, n_control=n, power=0.9, ratio=ratio, alpha=alpha, method=method)
    ref = oracle.power(effect_size=mde.effect / sd, nobs1=n, alpha=alpha, ratio=ratio)  # type: ignore[operator]
    assert ref == pytest.approx(0.9, rel=1e-9)


PROPS = [
    (0.10, 0.01, 5_000, 1.0, 0.05),
    (0.3, -0.05, 900, 3.0, 0.1),
    (0.02, 0.004, 20_000, 0.5, 0.05),
]


@pytest.mark.parametrize(("base", "effect", "n", "ratio", "alpha"), PROPS)
def test_proportions_match_power_proportions_2indep(base, effect, n, ratio, alpha) -> None:  # type: ignore[no-untyped-def]
    def oracle(effect: float, n_control: float) -> float:
        res = power_proportions_2indep(
            effect, base, nobs1=n_control * ratio, ratio=1 / ratio, alpha=alpha
        )
        return float(res.power)

    r = power_proportions(effect, baseline=base, n_control=n, ratio=ratio, alpha=alpha)
    assert r.power == pytest.approx(oracle(effect, n), rel=1e-9)
    need = sample_size_proportions(effect, baseline=base, power=0.8, ratio=ratio, alpha=alpha)
    assert oracle(effect, need.n_control) == pytest.approx(0.8, rel=1e-9)  # type: ignore[arg-type]
    mde = mde_proportions(baseline=base, n_control=n, power=0.8, ratio=ratio, alpha=alpha)
    assert mde.effect > 0  # type: ignore[operator]
    assert oracle(mde.effect, n) == pytest.approx(0.8, rel=1e-9)  # type: ignore[arg-type]


def test_vectorized_planning_and_unreachable_cases() -> None:
    effects = np.array([0.01, 0.02, 0.05, 0.0])
    many = sample_size_means(effects, sd=1.0)
    for i, e in enumerate(effects[:3]):
        assert many.n_control[i] == pytest.approx(sample_size_means(e, sd=1.0).n_control, rel=1e-12)  # type: ignore[index]
    assert list(many.reason) == ["ok", "ok", "ok", "unreachable"]  # type: ignore[arg-type]
    assert np.isnan(many.n_control[3])  # type: ignore[index]
    none = sample_size_means(0.0, sd=1.0)
    assert (none.n_control, none.reason) == (None, "unreachable")
    # 20 units per arm cannot detect a move from 99 % with 99 % power: no rate above 100 %
    tiny = mde_proportions(baseline=0.99, n_control=20, power=0.99)
    assert (tiny.effect, tiny.reason) == (None, "unreachable")


def test_bad_plans_are_refused() -> None:
    with pytest.raises(ConfigError, match="power must be between alpha"):
        sample_size_means(0.1, sd=1.0, power=1.2)
    with pytest.raises(ConfigError, match="sd must be a positive number"):
        power_means(0.1, sd=0.0, n_control=10)
    with pytest.raises(ConfigError, match="baseline must be a rate strictly between 0 and 1"):
        power_proportions(0.5, baseline=0.7, n_control=100)
    with pytest.raises(ConfigError, match="method must be 'z'"):
        power_means(0.1, sd=1.0, n_control=10, method="exact")  # type: ignore[arg-type]
