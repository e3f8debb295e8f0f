"""Campaign ROI: the delta method and Fieller's interval against closed forms from the
raw data, coverage of the true ROI by seeded simulation, a bootstrap, and flagging."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss
from scipy import optimize

from liucun.core import ConfigError
from liucun.experiments import ROI_THRESHOLD, campaign_roi
from liucun.experiments.stats import RatioStat

Z = ss.norm.ppf(0.975)


def _campaign(rng: np.random.Generator, n: int, size: tuple[int, ...] = ()):  # type: ignore[no-untyped-def]
    """Control buys with p 0.20, treatment 0.25; a purchase is worth Gamma(2, 25) (mean 50);
    60 % of treated buyers redeem a 10-unit coupon. True ROI = (0.05·50) / (0.25·0.6·10)."""
    shape = (*size, n)
    buy_c, buy_t = rng.random(shape) < 0.20, rng.random(shape) < 0.25
    y_c = np.where(buy_c, rng.gamma(2.0, 25.0, shape), 0.0)
    y_t = np.where(buy_t, rng.gamma(2.0, 25.0, shape), 0.0)
    cost_t = np.where(buy_t & (rng.random(shape) < 0.6), 10.0, 0.0)
    return (y_c, np.zeros(shape)), (y_t, cost_t)


TRUE_ROI = (0.05 * 50.0) / (0.25 * 0.6 * 10.0)


def _moments(y_c, c_c, y_t, c_t, margin=1.0, contact=0.0):  # type: ignore[no-untyped-def]
    a = margin * (y_t.mean() - y_c.mean())
    b = c_t.mean() - c_c.mean() + contact
    cov_t, cov_c = np.cov(y_t, c_t), np.cov(y_c, c_c)
    va = margin**2 * (cov_t[0, 0] / y_t.size + cov_c[0, 0] / y_c.size)
    vb = cov_t[1, 1] / y_t.size + cov_c[1, 1] / y_c.size
    cab = margin * (cov_t[0, 1] / y_t.size + cov_c[0, 1] / y_c.size)
    return a, b, va, vb, cab


@pytest.mark.parametrize(("margin", "contact"), [(1.0, 0.0), (0.4, 0.5)])
def test_delta_and_fieller_match_closed_forms(margin: float, contact: float) -> None:
    (y_c, c_c), (y_t, c_t) = _campaign(np.random.default_rng(1), 3_000)
    sc, st = RatioStat.from_values(y_c, c_c), RatioStat.from_values(y_t, c_t)
    a, b, va, vb, cab = _moments(y_c, c_c, y_t, c_t, margin, contact)
    roi = a / b
    # delta method: gradient (1/B, −A/B²) of A/B
    grad = np.array([1 / b, -a / b**2])
    se = np.sqrt(grad @ np.array([[va, cab], [cab, vb]]) @ grad)
    d = campaign_roi(sc, st, margin=margin, contact_cost=contact, method="delta")
    assert (d.roi, d.ci_low, d.ci_high) == pytest.approx(
        (roi, roi - Z * se, roi + Z * se), rel=1e-9
    )

    # Fieller: the two R where (A − RB)² = z²·(V_A − 2R·C + R²·V_B), found by root search
    def g(r: float) -> float:
        return (a - r * b) ** 2 - Z**2 * (va - 2 * r * cab + r * r * vb)

    low, high = optimize.brentq(g, roi - 50 * se, roi), optimize.brentq(g, roi, roi + 50 * se)
    f = campaign_roi(sc, st, margin=margin, contact_cost=contact)
    assert (f.roi, f.ci_low, f.ci_high) == pytest.approx((roi, low, high), rel=1e-9)
    assert f.incremental_cost == pytest.approx(b) and f.total_cost == pytest.approx(b * 3_000)
    assert f.incremental_revenue == pytest.approx(a)


def test_intervals_cover_the_true_roi() -> None:
    """400 simulated campaigns, computed in one vectorized call per method."""
    (y_c, c_c), (y_t, c_t) = _campaign(np.random.default_rng(7), 2_000, (400,))
    sc, st = RatioStat.from_values(y_c, c_c), RatioStat.from_values(y_t, c_t)
    for method in ("fieller", "delta"):
        r = campaign_roi(sc, st, method=method)  # type: ignore[arg-type]
        covered = (r.ci_low <= TRUE_ROI) & (r.ci_high >= TRUE_ROI)  # type: ignore[operator]
        assert 0.92 <= covered.mean() <= 0.98, (method, covered.mean())
        one = campaign_roi(
            RatioStat.from_values(y_c[5], c_c[5]),
            RatioStat.from_values(y_t[5], c_t[5]),
            method=method,
        )  # type: ignore[arg-type]
        assert (one.ci_low, one.ci_high) == pytest.approx((r.ci_low[5], r.ci_high[5]), rel=1e-12)  # type: ignore[index]


def test_fieller_agrees_with_a_percentile_bootstrap() -> None:
    rng = np.random.default_rng(3)
    (y_c, c_c), (y_t, c_t) = _campaign(rng, 4_000)
    r = campaign_roi(RatioStat.from_values(y_c, c_c), RatioStat.from_values(y_t, c_t))
    boots = []
    for _ in range(2_000):
        i, j = rng.integers(0, 4_000, 4_000), rng.integers(0, 4_000, 4_000)
        boots.append((y_t[j].mean() - y_c[i].mean()) / (c_t[j].mean() - c_c[i].mean()))
    low, high = np.quantile(boots, [0.025, 0.975])
    assert r.ci_low == pytest.approx(low, rel=0.05)
    assert r.ci_high == pytest.approx(high, rel=0.05)


def test_flags_and_reason_codes() -> None:
    c = RatioStat(1_000, 20_000.0, 1.2e6, 0.0, 0.0, 0.0)
    good = RatioStat(1_000, 30_000.0, 2.0e6, 3_000.0, 30_000.0, 150_000.0)
    r = campaign_roi(c, good)
    assert r.reason == "ok" and r.ci_low > ROI_THRESHOLD and not r.flagged  # type: ignore[operator]
    assert campaign_roi(c, good, threshold=r.ci_low + 0.01).flagged  # type: ignore[operator]
    # no extra coupon cost in treatment: ROI undefined
    free = campaign_roi(c, RatioStat(1_000, 30_000.0, 2.0e6, 0.0, 0.0, 0.0))
    assert (free.reason, free.roi, free.ci_low, free.flagged) == (
        "zero_denominator",
        None,
        None,
        True,
    )
    # a cost that is not significantly positive: Fieller's interval is unbounded
    noisy = RatioStat(20, 600.0, 60_000.0, 10.0, 1_000.0, 500.0)
    u = campaign_roi(c, noisy)
    assert u.reason == "unbounded_interval" and u.roi is not None and u.ci_low is None and u.flagged
    empty = campaign_roi(RatioStat(0, 0.0, 0.0, 0.0, 0.0, 0.0), good)
    assert (empty.reason, empty.incremental_revenue) == ("empty_arm", None)
    with pytest.raises(ConfigError, match="method must be 'fieller' or 'delta'"):
        campaign_roi(c, good, method="bootstrap")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="margin in"):
        campaign_roi(c, good, margin=0.0)
