"""The statistics of the monitors: a seasonal baseline with a noise-aware test, and the
retention forecast. Pure functions over daily (or weekly) summary numbers; no I/O.

**Seasonal check** (:func:`seasonal_check`; docs/alerts.md gives the reasoning). A
monitored metric is a daily count ``y`` (returning customers, converted viewers, coupon
cost) over a daily exposure ``n`` (the active customers, the viewers; 1 for a plain
total), so its rate is ``y / n``. For each day the *baseline rate* is the median of the
rates on the same weekday of the ``baseline_weeks`` weeks before it (a seasonal naive
forecast made robust: one sale day or outage in those weeks does not move it), and the
day's *expected* count is that rate times the day's own exposure. The check compares the
last ``window_days`` days: observed ``O = Σ y``, expected ``E = Σ expected``.

The noise is measured, not assumed: over the ``backtest_weeks`` weeks before the window,
each day's Pearson residual ``(y − expected) / √expected`` is taken and the dispersion
``φ`` is their robust variance (1.4826 × MAD, squared), never below ``unit`` — 1 for
counts (Poisson), ``E[X²]/E[X]`` for sums of amounts (compound Poisson). The baseline
is itself estimated, from ``K`` weekly blocks: its error adds about ``v_K · φE · W/7`` to
the variance of ``O − E`` (``v_K`` the variance of the median of ``K`` standard normal
draws, :func:`median_variance`), so ``φ`` is inflated by ``1 + v_K · W/7``. Under the
null ``O`` is then quasi-Poisson with mean ``E`` and variance ``φE``: ``O/φ`` is
compared with a Poisson of mean ``E/φ`` (the scaled-Poisson approximation). A
check fires when the relative change ``O/E − 1`` reaches ``min_change`` in its direction
*and* its one-sided p-value is at most ``alpha / tests`` (Bonferroni over the scopes a
monitor tests in one run), so a small shop's noise does not alert and a big shop's
trivial wobble does not either. This is the design of the Farrington outbreak-detection
algorithm (Farrington et al. 1996: comparable periods as the baseline, quasi-Poisson
with estimated overdispersion), with same-weekday weeks as the comparable periods.

An open alert is kept while its check *holds* (half the minimum change and p ≤
:data:`HOLD_P`) and resolved below that, so a metric on the edge does not flap.

**Forecast** (:func:`forecast_series`): exponential smoothing with additive errors and an
additive damped trend (statsmodels ``ETSModel``; damped trends are the robust default for
business series, Gardner & McKenzie 1985), its prediction interval from the model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
from scipy import special

#: Outcome codes of a check (stable: the CLI and API show them).
OK = "ok"
INSUFFICIENT_HISTORY = "insufficient_history"
NO_BASELINE = "no_baseline"
#: A fired check is kept open while its p-value stays at or below this (hysteresis).
HOLD_P = 0.1
#: Fewest residual days that measure the noise.
MIN_RESIDUALS = 14
#: 1 / Φ⁻¹(3/4): the MAD of a normal sample times this estimates its standard deviation.
MAD_TO_SD = 1.4826

Direction = Literal["drop", "rise"]


@dataclass(frozen=True)
class DailySeries:
    """Consecutive days from ``start``: ``values`` (count or amount per day) and their
    ``exposure`` (None: every day's exposure is 1, the metric is the total itself)."""

    start: date
    values: tuple[float, ...]
    exposure: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.exposure is not None and len(self.exposure) != len(self.values):
            raise ValueError("values and exposure must have the same length")

    @property
    def end(self) -> date:
        """The day after the last one."""
        return self.start + timedelta(days=len(self.values))


@dataclass(frozen=True)
class CheckConfig:
    """How :func:`seasonal_check` compares (see the module docstring)."""

    window_days: int = 7
    baseline_weeks: int = 4
    backtest_weeks: int = 8
    direction: Direction = "drop"
    min_change: float = 0.05
    alpha: float = 0.01
    tests: int = 1
    unit: float = 1.0

    @property
    def history_days(self) -> int:
        """Days of series a check needs (window, backtest and their baselines)."""
        return self.window_days + 7 * (self.backtest_weeks + self.baseline_weeks)


@dataclass(frozen=True)
class SeasonalCheck:
    """The result of one check. ``code`` is :data:`OK`, :data:`INSUFFICIENT_HISTORY`
    (too few days, or days without a baseline) or :data:`NO_BASELINE` (nothing was
    expected in the window); only an ``ok`` check can fire. ``first_day`` and
    ``last_day`` bound the window (inclusive); ``observed`` and ``expected`` are its
    sums, ``observed_rate`` and ``baseline_rate`` the same over its exposure, ``change``
    is ``observed / expected − 1``, ``dispersion`` the φ used, ``p_value`` one-sided in
    the check's direction, ``threshold`` ``alpha / tests``."""

    code: str
    first_day: date | None = None
    last_day: date | None = None
    observed: float = math.nan
    expected: float = math.nan
    observed_rate: float = math.nan
    baseline_rate: float = math.nan
    change: float = math.nan
    dispersion: float = math.nan
    p_value: float = math.nan
    threshold: float = math.nan
    firing: bool = False
    holding: bool = False
    residual_days: int = 0


def weekday_factors(rates: np.ndarray, exposure: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """The seven weekday factors (mean 1) of daily ``rates`` over ``exposure``: per weekday
    the ratio of sums, leaving out that weekday's highest and lowest day when it has five
    or more (so one sale day or outage does not make a weekday); 1 for a weekday with no
    exposure.

    >>> r = np.array([1.0, 1, 1, 1, 1, 2, 2] * 6)
    >>> [round(float(f), 3) for f in weekday_factors(r, np.ones(42), np.arange(42) % 7)]
    [0.778, 0.778, 0.778, 0.778, 0.778, 1.556, 1.556]
    """
    raw = np.ones(7)
    for w in range(7):
        pick = (weekdays == w) & (exposure > 0) & np.isfinite(rates)
        r, n = rates[pick], exposure[pick]
        if len(r) >= 5:
            order = np.argsort(r, kind="stable")
            r, n = r[order][1:-1], n[order][1:-1]
        if n.sum() > 0:
            raw[w] = float(np.sum(r * n) / np.sum(n))
    mean = float(np.mean(raw))
    return raw / mean if mean > 0 else np.ones(7)


def expected_counts(
    values: np.ndarray,
    exposure: np.ndarray,
    first_weekday: int,
    days: range,
    *,
    weeks: int,
    fit: slice,
) -> np.ndarray:
    """The seasonal baseline of the days ``days`` (NaN elsewhere): exposure × weekday
    factor × level, where the factors are :func:`weekday_factors` over the days ``fit``
    and the level is the median over the ``weeks`` 7-day blocks before the day of each
    block's deseasonalised rate (its count over its seasonally weighted exposure)."""
    n_days = len(values)
    weekdays = (np.arange(n_days) + first_weekday) % 7
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(exposure > 0, values / exposure, np.nan)
    factors = weekday_factors(rates[fit], exposure[fit], weekdays[fit])
    weighted = exposure * factors[weekdays]
    out = np.full(n_days, np.nan)
    need = max(2, math.ceil(weeks / 2))
    for d in days:
        levels = []
        for k in range(1, weeks + 1):
            lo, hi = d - 7 * k, d - 7 * k + 7
            if lo < 0:
                break
            den = float(weighted[lo:hi].sum())
            if den > 0:
                levels.append(float(values[lo:hi].sum()) / den)
        if len(levels) >= need:
            out[d] = exposure[d] * factors[weekdays[d]] * float(np.median(levels))
    return out


def seasonal_check(series: DailySeries, config: CheckConfig) -> SeasonalCheck:
    """Compare the last ``window_days`` days of ``series`` with their seasonal baseline
    (module docstring). Days with no exposure add nothing to either side."""
    c = config
    y = np.asarray(series.values, dtype=float)
    n = np.ones_like(y) if series.exposure is None else np.asarray(series.exposure, dtype=float)
    if len(y) < c.history_days:
        return SeasonalCheck(INSUFFICIENT_HISTORY)
    w0 = len(y) - c.window_days
    lo = w0 - 7 * c.backtest_weeks
    expected = expected_counts(
        y,
        n,
        series.start.weekday(),
        range(lo, len(y)),
        weeks=c.baseline_weeks,
        fit=slice(w0 - 7 * (c.backtest_weeks + c.baseline_weeks), w0),
    )
    window = slice(w0, len(y))
    first, last = series.start + timedelta(days=w0), series.start + timedelta(days=len(y) - 1)
    exposed = n[window] > 0
    if np.any(np.isnan(expected[window][exposed])):
        return SeasonalCheck(INSUFFICIENT_HISTORY, first, last)
    observed = float(np.sum(y[window][exposed]))
    e = float(np.nansum(expected[window][exposed]))
    total_n = float(np.sum(n[window][exposed]))
    if e <= 0:
        return SeasonalCheck(NO_BASELINE, first, last, observed=observed, expected=e)
    back_e, back_y = expected[lo:w0], y[lo:w0]
    keep = np.isfinite(back_e) & (back_e > 0)
    residuals = (back_y[keep] - back_e[keep]) / np.sqrt(back_e[keep])
    if len(residuals) < MIN_RESIDUALS:
        return SeasonalCheck(INSUFFICIENT_HISTORY, first, last, residual_days=len(residuals))
    spread = MAD_TO_SD * float(np.median(np.abs(residuals - np.median(residuals))))
    phi = max(float(c.unit), spread**2)
    # the baseline is an estimate too: its level (a median of weekly blocks) adds
    # about median_variance(K) x phi x W / 7 to the variance of O - E
    phi *= 1.0 + median_variance(c.baseline_weeks) * c.window_days / 7
    p = tail_p_value(observed, e, phi, c.direction)
    change = observed / e - 1.0
    signed = -change if c.direction == "drop" else change
    threshold = c.alpha / max(1, c.tests)
    return SeasonalCheck(
        OK,
        first,
        last,
        observed=observed,
        expected=e,
        observed_rate=observed / total_n if total_n else math.nan,
        baseline_rate=e / total_n if total_n else math.nan,
        change=change,
        dispersion=phi,
        p_value=p,
        threshold=threshold,
        firing=bool(signed >= c.min_change and p <= threshold),
        holding=bool(signed >= c.min_change / 2 and p <= max(HOLD_P, threshold)),
        residual_days=len(residuals),
    )


#: Variance of the median of K standard normal draws (K = 2 … 6; simulated, 4e5 draws);
#: from 7 on, the asymptotic pi / 2K, which is slightly larger.
_MEDIAN_VARIANCE = {2: 0.5, 3: 0.449, 4: 0.298, 5: 0.288, 6: 0.215}


def median_variance(k: int) -> float:
    """Variance of the median of ``k`` independent standard normal draws.

    >>> median_variance(2), round(median_variance(10), 4)
    (0.5, 0.1571)
    """
    return _MEDIAN_VARIANCE.get(k, math.pi / (2 * max(k, 1)))


def tail_p_value(
    observed: float, expected: float, dispersion: float, direction: Direction
) -> float:
    """One-sided p-value of ``observed`` under a quasi-Poisson of mean ``expected`` and
    variance ``dispersion × expected``: ``O/φ`` against a Poisson of mean ``E/φ``.

    With ``dispersion = 1`` it is the Poisson tail itself:

    >>> from scipy.stats import poisson
    >>> bool(abs(tail_p_value(3, 10.0, 1.0, "drop") - poisson.cdf(3, 10.0)) < 1e-12)
    True
    >>> bool(abs(tail_p_value(18, 10.0, 1.0, "rise") - poisson.sf(17, 10.0)) < 1e-12)
    True
    """
    if expected <= 0:
        return 1.0
    phi = max(dispersion, 1e-12)
    x, mu = observed / phi, expected / phi
    if direction == "drop":
        # P(Y <= floor(x)) = Q(floor(x) + 1, mu), the regularized upper incomplete gamma
        return float(special.gammaincc(math.floor(x) + 1, mu))
    k = math.ceil(x - 1e-9)
    if k <= 0:
        return 1.0
    # P(Y >= k) = P(k, mu), the regularized lower incomplete gamma
    return float(special.gammainc(k, mu))


# -- forecast --------------------------------------------------------------------------

#: Fewest points the forecast is fitted on.
MIN_FORECAST_POINTS = 10


@dataclass(frozen=True)
class Forecast:
    """``mean``, ``lower`` and ``upper`` (the ``level`` prediction interval) for steps
    1 … horizon after the last point; ``code`` :data:`OK` or
    :data:`INSUFFICIENT_HISTORY`; ``converged`` is the optimiser's own word."""

    code: str
    mean: tuple[float, ...] = ()
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    level: float = 0.8
    points: int = 0
    converged: bool = False
    model: str = "ETS(A,Ad,N)"

    @property
    def last(self) -> float:
        """The forecast at the horizon (NaN without one)."""
        return self.mean[-1] if self.mean else math.nan


def forecast_series(values: Sequence[float], horizon: int, *, level: float = 0.8) -> Forecast:
    """Forecast ``horizon`` steps past ``values`` with exponential smoothing (additive
    errors, additive damped trend, no seasonality: ETS(A,Ad,N), fitted by maximum
    likelihood with statsmodels) and its ``level`` prediction interval.

    >>> f = forecast_series([0.10 - 0.002 * t for t in range(30)], 5)
    >>> f.code, f.mean[0] < 0.10 - 0.002 * 29
    ('ok', True)
    """
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(y) < MIN_FORECAST_POINTS or horizon < 1:
        return Forecast(INSUFFICIENT_HISTORY, level=level, points=len(y))
    if float(np.ptp(y)) == 0.0:  # a constant series: nothing to smooth
        flat = (float(y[-1]),) * horizon
        return Forecast(OK, flat, flat, flat, level, len(y), True)
    import pandas as pd

    model = ETSModel(pd.Series(y), error="add", trend="add", damped_trend=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = model.fit(disp=False, maxiter=2000)
        frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(
            alpha=1 - level
        )
    converged = bool(getattr(fit, "mle_retvals", {}).get("converged", True))
    return Forecast(
        OK,
        tuple(float(v) for v in frame["mean"].to_numpy()),
        tuple(float(v) for v in frame["pi_lower"].to_numpy()),
        tuple(float(v) for v in frame["pi_upper"].to_numpy()),
        level,
        len(y),
        converged,
    )
