"""Welch t, two-proportion z, ratio and CUPED tests against SciPy, statsmodels and the
delta method computed independently from the raw data (gradient × covariance × gradient)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from liucun.core import ConfigError, InvalidInput
from liucun.experiments.stats import (
    CupedStat,
    MeanStat,
    ProportionStat,
    RatioStat,
    cuped_theta,
    cuped_ttest,
    proportion_test,
    ratio_test,
    welch_ttest,
)

TOL = {"rtol": 1e-9, "atol": 1e-12}


def _delta(grad: np.ndarray, cov: np.ndarray) -> float:
    return float(grad @ cov @ grad)


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.gamma(2.0, 5.0, 400), rng.gamma(2.2, 5.0, 300)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_welch_matches_scipy_ttest_ind(
    samples: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    c, t = samples
    r = welch_ttest(MeanStat.from_values(c), MeanStat.from_values(t), alpha=alpha)
    ref = ss.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(1 - alpha)
    np.testing.assert_allclose(
        [r.estimate, r.ci_low, r.ci_high, r.p_value, r.statistic, r.df],
        [t.mean() - c.mean(), ci.low, ci.high, ref.pvalue, ref.statistic, ref.df],
        **TOL,
    )
    assert r.reason == "ok" and r.test == "welch_t"
    assert (r.control_mean, r.treatment_mean) == pytest.approx((c.mean(), t.mean()), rel=1e-12)


def test_welch_relative_is_gbstats_delta_method(samples: tuple[np.ndarray, np.ndarray]) -> None:
    c, t = samples
    r = welch_ttest(MeanStat.from_values(c), MeanStat.from_values(t), relative=True)
    mc, mt = c.mean(), t.mean()
    # f(m_t, m_c) = m_t / m_c − 1; independent arms: diagonal covariance of the means
    grad = np.array([1 / mc, -mt / mc**2])
    var = _delta(grad, np.diag([t.var(ddof=1) / t.size, c.var(ddof=1) / c.size]))
    df = ss.ttest_ind(t, c, equal_var=False).df
    q = ss.t.ppf(0.975, df)
    est = mt / mc - 1
    np.testing.assert_allclose(
        [r.estimate, r.std_error, r.ci_low, r.ci_high, r.p_value],
        [est, np.sqrt(var), est - q * np.sqrt(var), est + q * np.sqrt(var),
         2 * ss.t.sf(abs(est) / np.sqrt(var), df)],
        **TOL,
    )  # fmt: skip


@pytest.mark.parametrize(("sc", "nc", "st_", "nt"), [(120, 1000, 150, 1000), (30, 400, 22, 350)])
def test_proportion_test_matches_statsmodels(sc: int, nc: int, st_: int, nt: int) -> None:
    r = proportion_test(ProportionStat(nc, sc), ProportionStat(nt, st_))
    z, p = proportions_ztest([st_, sc], [nt, nc])
    low, high = confint_proportions_2indep(st_, nt, sc, nc, method="wald", compare="diff")
    np.testing.assert_allclose(
        [r.estimate, r.statistic, r.p_value, r.ci_low, r.ci_high],
        [st_ / nt - sc / nc, z, p, low, high],
        **TOL,
    )
    assert r.df is None and r.test == "two_proportion_z"


def test_proportion_relative_interval_by_delta_method() -> None:
    sc, nc, st_, nt = 120, 1000, 150, 900
    pc, pt = sc / nc, st_ / nt
    r = proportion_test(ProportionStat(nc, sc), ProportionStat(nt, st_), relative=True)
    grad = np.array([1 / pc, -pt / pc**2])
    var = _delta(grad, np.diag([pt * (1 - pt) / nt, pc * (1 - pc) / nc]))
    z = ss.norm.ppf(0.975)
    np.testing.assert_allclose(
        [r.estimate, r.ci_low, r.ci_high, r.p_value],
        [pt / pc - 1, pt / pc - 1 - z * np.sqrt(var), pt / pc - 1 + z * np.sqrt(var),
         proportions_ztest([st_, sc], [nt, nc])[1]],
        **TOL,
    )  # fmt: skip


def test_mean_stat_of_zero_one_values_is_a_welch_test_of_proportions() -> None:
    rng = np.random.default_rng(3)
    c, t = (rng.random(500) < 0.2).astype(float), (rng.random(450) < 0.25).astype(float)
    pc, pt = ProportionStat.from_values(c), ProportionStat.from_values(t)
    r = welch_ttest(pc.as_mean_stat(), pt.as_mean_stat())
    assert r.p_value == pytest.approx(ss.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-9)


def _ratio_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    out = []
    for n, aov in ((600, 50.0), (650, 55.0)):
        orders = rng.poisson(2.0, n) + 1.0
        revenue = orders * rng.gamma(4.0, aov / 4.0, n)
        out.append((revenue, orders))
    return out[0], out[1]


@pytest.mark.parametrize("relative", [False, True])
def test_ratio_test_is_the_delta_method(relative: bool) -> None:
    (ac, bc), (at, bt) = _ratio_data()
    r = ratio_test(RatioStat.from_values(ac, bc), RatioStat.from_values(at, bt), relative=relative)

    def arm(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        ma, mb = a.mean(), b.mean()
        grad = np.array([1 / mb, -ma / mb**2])
        return ma / mb, _delta(grad, np.cov(a, b) / a.size)  # Var of the ratio estimate

    (rc, vc), (rt, vt) = arm(ac, bc), arm(at, bt)
    df = (vc + vt) ** 2 / (vc**2 / (ac.size - 1) + vt**2 / (at.size - 1))
    if relative:
        est, var = rt / rc - 1, _delta(np.array([1 / rc, -rt / rc**2]), np.diag([vt, vc]))
    else:
        est, var = rt - rc, vt + vc
    q = ss.t.ppf(0.975, df)
    np.testing.assert_allclose(
        [r.estimate, r.std_error, r.df, r.ci_low, r.ci_high, r.p_value],
        [est, np.sqrt(var), df, est - q * np.sqrt(var), est + q * np.sqrt(var),
         2 * ss.t.sf(abs(est / np.sqrt(var)), df)],
        **TOL,
    )  # fmt: skip
    assert (r.control_mean, r.treatment_mean) == pytest.approx((rc, rt), rel=1e-12)


@pytest.fixture
def cuped_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(17)
    n_c, n_t = 800, 700
    pre = rng.gamma(2.0, 30.0, n_c + n_t)
    arm = np.r_[np.zeros(n_c), np.ones(n_t)]
    post = 0.7 * pre + rng.normal(0, 20, pre.size) + 5.0 * arm + 10.0
    return {"pre": pre, "post": post, "arm": arm}


def test_cuped_equals_welch_on_ols_adjusted_outcome(cuped_data: dict[str, np.ndarray]) -> None:
    pre, post, arm = cuped_data["pre"], cuped_data["post"], cuped_data["arm"]
    c, t = arm == 0, arm == 1
    sc, st_ = CupedStat.from_values(post[c], pre[c]), CupedStat.from_values(post[t], pre[t])
    # θ: the OLS slope of the outcome on the covariate over both arms pooled
    theta = sm.OLS(post, sm.add_constant(pre)).fit().params[1]
    assert cuped_theta(sc, st_) == pytest.approx(theta, rel=1e-9)
    adjusted = post - theta * pre
    ref = ss.ttest_ind(adjusted[t], adjusted[c], equal_var=False)
    ci = ref.confidence_interval(0.95)
    r = cuped_ttest(sc, st_)
    np.testing.assert_allclose(
        [r.estimate, r.ci_low, r.ci_high, r.p_value, r.df],
        [adjusted[t].mean() - adjusted[c].mean(), ci.low, ci.high, ref.pvalue, ref.df],
        **TOL,
    )
    # close to the ANCOVA coefficient, and a much tighter interval than without CUPED
    ancova = sm.OLS(post, sm.add_constant(np.c_[arm, pre])).fit()
    assert r.estimate == pytest.approx(ancova.params[1], abs=0.5 * ancova.bse[1])
    plain = welch_ttest(sc.as_mean_stat(), st_.as_mean_stat())
    rho = np.corrcoef(post - 5.0 * arm, pre)[0, 1]  # variance shrinks by 1 − ρ²
    assert r.std_error / plain.std_error == pytest.approx(np.sqrt(1 - rho**2), rel=0.05)  # type: ignore[operator]


def test_cuped_relative_by_delta_method(cuped_data: dict[str, np.ndarray]) -> None:
    pre, post, arm = cuped_data["pre"], cuped_data["post"], cuped_data["arm"]
    c, t = arm == 0, arm == 1
    sc, st_ = CupedStat.from_values(post[c], pre[c]), CupedStat.from_values(post[t], pre[t])
    theta = cuped_theta(sc, st_)
    assert isinstance(theta, float)
    adj_c, adj_t = post[c] - theta * pre[c], post[t] - theta * pre[t]
    # f(a_t, a_c, y_c) = (a_t − a_c) / y_c; a_c and y_c come from the same control units
    a_t, a_c, y_c = adj_t.mean(), adj_c.mean(), post[c].mean()
    cov = np.zeros((3, 3))
    cov[0, 0] = adj_t.var(ddof=1) / adj_t.size
    cov[1:, 1:] = np.cov(adj_c, post[c]) / adj_c.size
    grad = np.array([1 / y_c, -1 / y_c, -(a_t - a_c) / y_c**2])
    r = cuped_ttest(sc, st_, relative=True)
    assert r.estimate == pytest.approx((a_t - a_c) / y_c, rel=1e-9)
    assert r.std_error == pytest.approx(np.sqrt(_delta(grad, cov)), rel=1e-9)


def test_constant_covariate_gives_theta_zero_and_plain_welch() -> None:
    rng = np.random.default_rng(2)
    yc, yt = rng.normal(0, 1, 50), rng.normal(0.3, 1, 60)
    sc = CupedStat.from_values(yc, np.full(50, 3.0))
    st_ = CupedStat.from_values(yt, np.full(60, 3.0))
    assert cuped_theta(sc, st_) == 0.0
    r, plain = cuped_ttest(sc, st_), welch_ttest(sc.as_mean_stat(), st_.as_mean_stat())
    assert (r.estimate, r.p_value) == pytest.approx((plain.estimate, plain.p_value), rel=1e-12)


values = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False), min_size=2, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(values, values, st.booleans())
def test_properties_of_welch(c: list[float], t: list[float], relative: bool) -> None:
    sc, st_ = MeanStat.from_values(c), MeanStat.from_values(t)
    r = welch_ttest(sc, st_, relative=relative)
    if r.reason != "ok":
        assert r.p_value is None and r.ci_low is None
        return
    assert r.p_value is not None and r.ci_low is not None and r.ci_high is not None
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_low <= r.estimate <= r.ci_high  # type: ignore[operator]
    if not relative:
        s = welch_ttest(st_, sc)  # swapping the arms negates the estimate and the interval
        assert s.estimate == pytest.approx(-r.estimate, rel=1e-9, abs=1e-9)  # type: ignore[operator]
        assert s.ci_low == pytest.approx(-r.ci_high, rel=1e-9, abs=1e-9)
        assert s.p_value == pytest.approx(r.p_value, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.integers(2, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
)
def test_properties_of_proportion_test(c: tuple[int, int], t: tuple[int, int]) -> None:
    r = proportion_test(ProportionStat(*c), ProportionStat(*t))
    s = proportion_test(ProportionStat(*t), ProportionStat(*c))
    assert r.reason == s.reason
    if r.reason == "ok":
        assert 0.0 <= r.p_value <= 1.0  # type: ignore[operator]
        assert r.ci_low <= r.estimate <= r.ci_high  # type: ignore[operator]
        assert s.p_value == pytest.approx(r.p_value, rel=1e-12)
    assert s.estimate == pytest.approx(-r.estimate)  # type: ignore[operator]


def test_edge_cases_give_reason_codes_not_nan() -> None:
    ok = MeanStat(10, 50.0, 300.0)
    empty = welch_ttest(MeanStat(0, 0.0, 0.0), ok)
    assert (empty.reason, empty.estimate, empty.p_value, empty.control_mean) == (
        "empty_arm", None, None, None,
    )  # fmt: skip
    assert empty.treatment_mean == 5.0
    one = welch_ttest(MeanStat(1, 4.0, 16.0), ok)
    assert (one.reason, one.estimate, one.ci_low, one.df) == ("too_few_units", 1.0, None, None)
    flat = welch_ttest(MeanStat(5, 10.0, 20.0), MeanStat(4, 12.0, 36.0))
    assert (flat.reason, flat.estimate, flat.p_value) == ("zero_variance", 1.0, None)
    zero = welch_ttest(MeanStat(5, 0.0, 0.0), ok, relative=True)
    assert (zero.reason, zero.estimate, zero.ci_high) == ("zero_control_mean", None, None)
    # one arm without variance is fine: Welch df falls back to the other arm's n − 1
    half = welch_ttest(MeanStat(5, 10.0, 20.0), ok)
    assert half.reason == "ok" and half.df == pytest.approx(9.0)
    no_den = ratio_test(
        RatioStat(3, 5.0, 9.0, 0.0, 0.0, 0.0), RatioStat(3, 5.0, 9.0, 3.0, 3.0, 5.0)
    )
    assert (no_den.reason, no_den.estimate, no_den.control_mean) == ("zero_denominator", None, None)
    none_conv = proportion_test(ProportionStat(100, 0), ProportionStat(100, 0))
    assert (none_conv.reason, none_conv.estimate, none_conv.p_value) == ("zero_variance", 0.0, None)


def test_edge_cases_in_arrays_are_nan_with_codes() -> None:
    n = np.array([0.0, 1.0, 5.0, 8.0])
    r = welch_ttest(
        MeanStat(n, np.array([0.0, 2.0, 10.0, 8.0]), np.array([0.0, 4.0, 20.0, 20.0])),
        MeanStat(
            np.array([8.0, 8, 4, 8]), np.array([16.0, 16, 12, 16]), np.array([50.0, 50, 36, 50])
        ),
    )
    assert list(r.reason) == ["empty_arm", "too_few_units", "zero_variance", "ok"]  # type: ignore[arg-type]
    np.testing.assert_array_equal(np.isnan(r.p_value), [True, True, True, False])  # type: ignore[arg-type]
    np.testing.assert_array_equal(np.isnan(r.estimate), [True, False, False, False])  # type: ignore[arg-type]


def test_bad_inputs_raise_sentences() -> None:
    with pytest.raises(InvalidInput, match=r"MeanStat.n must be ≥ 0, got -1.0"):
        MeanStat(-1, 0.0, 0.0)
    with pytest.raises(InvalidInput, match=r"MeanStat.total must be finite.*index \(1,\)"):
        MeanStat(np.array([2, 2]), np.array([1.0, np.nan]), np.array([1.0, 1.0]))
    with pytest.raises(InvalidInput, match="successes must not exceed n"):
        ProportionStat(3, 4)
    with pytest.raises(InvalidInput, match="use proportion_test for ProportionStat"):
        welch_ttest(ProportionStat(3, 1), ProportionStat(3, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="alpha must be between 0 and 1"):
        welch_ttest(MeanStat(3, 1.0, 1.0), MeanStat(3, 1.0, 1.0), alpha=5)
