"""The shop's calendar: how busy each local hour is, and its time change.

Time in the simulator is a float number of days since the window start, on each
customer's *local* clock (``t_utc = t_local - utc_offset_hours / 24``). The rate of every
behaviour is a base rate times a calendar multiplier ``m(t)`` — weekday factor × hour of
day profile × sale-day spike — piecewise constant per local hour. Its integral
``M(t) = ∫ m`` maps calendar time to "operational" time, where the process is
homogeneous; arrivals are drawn there and mapped back with ``M⁻¹``. This is exact (the
time-change theorem) and needs no rejected candidates, unlike thinning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from liucun.simulate._presets import Preset

FloatArray = np.ndarray


@dataclass(frozen=True)
class Calendar:
    """Cumulative calendar intensity on a grid of local hours.

    ``first_day`` is the grid's first day relative to the window start (negative: the
    grid reaches back before the window for older customers); ``day_mult`` holds each
    day's multiplier and ``cum`` the integral at every hour boundary, in days.
    """

    first_day: int
    day_mult: FloatArray
    knots: FloatArray
    cum: FloatArray

    def integral(self, t: FloatArray) -> FloatArray:
        """``M(t)``: operational time at local time ``t`` (days since window start)."""
        return np.interp(t, self.knots, self.cum)

    def inverse(self, u: FloatArray) -> FloatArray:
        """``M⁻¹(u)``: the local time at which operational time reaches ``u``."""
        return np.interp(u, self.cum, self.knots)

    def mass(self, a: FloatArray, b: FloatArray) -> FloatArray:
        """``M(b) - M(a)``, clipped at zero."""
        return np.maximum(self.integral(b) - self.integral(a), 0.0)

    def sample(self, rng: np.random.Generator, a: FloatArray, b: FloatArray) -> FloatArray:
        """One time in each ``[a, b)``, distributed like the calendar intensity."""
        ma, mb = self.integral(a), self.integral(b)
        t = self.inverse(ma + rng.random(np.shape(a)) * (mb - ma))
        return np.clip(t, a, np.nextafter(b, a))


def day_multipliers(preset: Preset, dates: np.ndarray) -> FloatArray:
    """Weekday factor × sale-day spike for each ``datetime64[D]`` date (local)."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    months = dates.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    dom = (dates.astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64) + 1
    week = np.asarray(preset.weekday_factors, dtype=np.float64)
    mult = week[weekday] / week.mean()
    for m, d, spike in preset.sale_days:
        mult = np.where((month == m) & (dom == d), mult * spike, mult)
    if preset.black_friday_mult != 1.0:
        black_friday = (month == 11) & (weekday == 4) & (dom >= 23) & (dom <= 29)
        mult = np.where(black_friday, mult * preset.black_friday_mult, mult)
    return mult


def build_calendar(preset: Preset, start: dt.date, first_day: int, last_day: int) -> Calendar:
    """Calendar covering local days ``first_day`` … ``last_day`` (relative to ``start``)."""
    rel = np.arange(first_day, last_day + 1, dtype=np.int64)
    dates = np.datetime64(start, "D") + rel
    day_mult = day_multipliers(preset, dates)
    hours = np.asarray(preset.hour_profile, dtype=np.float64)
    hours = hours / hours.mean()
    rate = (day_mult[:, None] * hours[None, :]).ravel() / 24.0
    cum = np.concatenate([[0.0], np.cumsum(rate)])
    knots = first_day + np.arange(rate.size + 1, dtype=np.float64) / 24.0
    return Calendar(first_day=first_day, day_mult=day_mult, knots=knots, cum=cum)
