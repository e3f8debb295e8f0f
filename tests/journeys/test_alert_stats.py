"""The monitors' statistics with numbers: the quasi-Poisson tail against SciPy, the
seasonal baseline on a series with known weekday factors, the false-alarm rate on
noise (Poisson and overdispersed) against alpha, the power against a known drop, and
the ETS forecast on series whose future is known."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from liucun.journeys import CheckConfig, DailySeries, forecast_series, seasonal_check
from liucun.journeys._alert_stats import (
    INSUFFICIENT_HISTORY,
    NO_BASELINE,
    OK,
    median_variance,
    tail_p_value,
    weekday_factors,
)

#: Weekday factors (Monday first) of the b2c preset: weekends are busier.
FACTORS = np.array([0.95, 0.92, 0.92, 0.95, 1.0, 1.3, 1.25])
START = date(2026, 6, 1)  # a Monday
CONFIG = CheckConfig()  # 7-day window, 4 baseline weeks, 8 backtest weeks
DAYS = CONFIG.history_days  # 91


def _series(
    rng: np.random.Generator,
    *,
    rate: float = 0.01,
    exposure: float = 1500.0,
    phi: float = 1.0,
    drop: float = 0.0,
    days: int = DAYS,
) -> DailySeries:
    """Daily counts ~ (quasi-)Poisson with weekday factors; the last 7 days ``drop``."""
    n = np.full(days, exposure) * rng.uniform(0.95, 1.05, days)
    weekday = (np.arange(days) + START.weekday()) % 7
    mean = n * rate * FACTORS[weekday]
    mean[-7:] *= 1 - drop
    # Poisson, or a negative binomial with variance phi * mean
    poisson = phi == 1.0
    y = rng.poisson(mean) if poisson else rng.negative_binomial(mean / (phi - 1), 1 / phi)
    return DailySeries(START, tuple(float(v) for v in y), tuple(float(v) for v in n))


def test_the_tail_is_poisson_and_scales_with_the_dispersion() -> None:
    assert tail_p_value(12, 20.0, 1.0, "drop") == pytest.approx(stats.poisson.cdf(12, 20.0))
    assert tail_p_value(30, 20.0, 1.0, "rise") == pytest.approx(stats.poisson.sf(29, 20.0))
    # quasi-Poisson: O/phi against Poisson(E/phi)
    assert tail_p_value(12, 20.0, 2.0, "drop") == pytest.approx(stats.poisson.cdf(6, 10.0))
    assert tail_p_value(0, 0.0, 1.0, "drop") == 1.0


def test_weekday_factors_are_recovered_and_one_sale_day_does_not_make_a_weekday() -> None:
    weekday = np.arange(84) % 7
    rates = 0.02 * FACTORS[weekday] / FACTORS.mean()
    np.testing.assert_allclose(
        weekday_factors(rates, np.ones(84), weekday), FACTORS / FACTORS.mean()
    )
    rates[10] *= 5  # one Thursday five times as busy: left out as that weekday's highest
    np.testing.assert_allclose(
        weekday_factors(rates, np.ones(84), weekday), FACTORS / FACTORS.mean()
    )


def test_a_seasonal_series_without_change_is_expected_exactly() -> None:
    """Counts that are exposure × rate × weekday factor: the baseline reproduces them,
    whatever weekday the window ends on."""
    for extra in range(7):
        days = DAYS + extra
        weekday = (np.arange(days) + START.weekday()) % 7
        n = 1000.0 + 10 * np.arange(days)  # a growing active base
        y = n * 0.01 * FACTORS[weekday]
        check = seasonal_check(DailySeries(START, tuple(y), tuple(n)), CONFIG)
        assert check.code == OK
        assert check.expected == pytest.approx(check.observed, rel=1e-9)
        assert check.change == pytest.approx(0.0, abs=1e-9)
        assert not check.firing


def test_noise_alerts_no_more_often_than_alpha() -> None:
    """400 null series at alpha = 5 %, no minimum change: the share that fires is at
    most alpha (plus two standard errors), for Poisson and for overdispersed counts
    (variance 3 × mean), where the dispersion is measured from the backtest weeks."""
    config = CheckConfig(alpha=0.05, min_change=0.0)
    limit = 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)
    for phi in (1.0, 3.0):
        rng = np.random.default_rng(7)
        checks = [seasonal_check(_series(rng, phi=phi), config) for _ in range(400)]
        fired = np.mean([c.firing for c in checks])
        assert fired <= limit, (phi, fired)
        if phi == 3.0:
            # the measured noise (the dispersion less the baseline's own share) is about 3
            noise = np.median([c.dispersion for c in checks]) / (1 + median_variance(4))
            assert noise == pytest.approx(3.0, rel=0.15)
            # assuming Poisson noise (phi = 1) would alert far more often
            p_poisson = [tail_p_value(c.observed, c.expected, 1.0, "drop") for c in checks]
            assert np.mean(np.array(p_poisson) <= config.alpha) > 2 * limit


def test_a_known_drop_is_found_and_a_small_one_is_not_called_significant() -> None:
    """A 25 % drop with about 350 expected in the window (a one-sided z of about 4 at
    alpha = 1 %: 95 % power) is found in at least 95 % of 200 series; a 3 % drop never
    fires (below the 5 % minimum change), however significant."""
    rng = np.random.default_rng(11)
    found = [seasonal_check(_series(rng, drop=0.25, exposure=5000), CONFIG) for _ in range(200)]
    assert np.mean([c.firing for c in found]) >= 0.95
    assert np.mean([c.change for c in found]) == pytest.approx(-0.25, abs=0.03)
    small = [seasonal_check(_series(rng, drop=0.03, exposure=1e6), CONFIG) for _ in range(50)]
    assert not any(c.firing for c in small)
    assert all(c.p_value < 1e-3 for c in small[:10])  # significant, but too small to matter


def test_bonferroni_splits_alpha_over_the_scopes() -> None:
    rng = np.random.default_rng(3)
    s = _series(rng, drop=0.2, exposure=600)
    one, eight = seasonal_check(s, CONFIG), seasonal_check(s, CheckConfig(tests=8))
    assert (one.threshold, eight.threshold) == (0.01, 0.01 / 8)
    assert one.p_value == eight.p_value


def test_too_little_history_or_no_baseline_never_fires() -> None:
    rng = np.random.default_rng(1)
    short = _series(rng, days=DAYS - 1)
    assert seasonal_check(short, CONFIG).code == INSUFFICIENT_HISTORY
    zeros = DailySeries(START, (0.0,) * DAYS, (100.0,) * DAYS)
    check = seasonal_check(zeros, CONFIG)
    assert (check.code, check.firing) == (NO_BASELINE, False)


def test_the_forecast_extrapolates_a_trend_and_keeps_a_level() -> None:
    decline = [0.10 - 0.002 * t for t in range(30)]
    f = forecast_series(decline, 9)
    assert f.code == OK and f.converged
    # one step ahead is the next point of the line; nine steps ahead the damped trend
    # stays between the last value and the straight line
    assert f.mean[0] == pytest.approx(0.10 - 0.002 * 30, abs=5e-4)
    assert 0.10 - 0.002 * 38 - 1e-3 <= f.last < 0.10 - 0.002 * 29
    rng = np.random.default_rng(2)
    flat = 0.08 + rng.normal(0, 0.004, 40)
    g = forecast_series(flat, 9)
    assert g.last == pytest.approx(0.08, abs=0.006)
    assert g.lower[-1] < g.last < g.upper[-1]
    assert forecast_series(flat[:9], 9).code == INSUFFICIENT_HISTORY
