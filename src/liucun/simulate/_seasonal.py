"""Seasonal buyers: customers who buy once a year, around the same day each year.

A share of the buying customers (``Preset.seasonal_share``, off by default) does not buy as
a Poisson process: each has a *season* — a day of the year drawn uniformly — and buys once
a year in a short spell around it: a first order within a few days of the day (normal jitter, sd
:data:`SEASON_JITTER_DAYS`, clipped to ±:data:`SEASON_MAX_JITTER_DAYS`), then Poisson(
:data:`SEASON_EXTRA_ORDERS`) more (at most :data:`SEASON_MAX_EXTRA`), each 2–8 days after
the previous one; starting with the first season after sign-up. After each season a
seasonal buyer drops out with probability :data:`SEASON_DROPOUT`. The truth's expected
orders count the season centres in the horizon times :func:`spell_orders` (the centre
stands for the spell: a spell straddling the horizon's end is counted whole or not at
all). So the median gap of such a customer can be a few days while their rhythm is a year.
Between two seasons such a customer is silent for about a year and still alive, which is
what a lifecycle stage must not call churned (issue 11).

The draws come from their own stream (``SeedSequence([seed, chunk, SEASONAL_STREAM])``), so
a simulation without seasonal buyers is byte-identical to one from before this option, and
switching it on changes only the seasonal customers' orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liucun.simulate._population import Population
from liucun.simulate._process import (
    SLOW_GIVEN_TICKET,
    TICKET_IF_LATE,
    TICKET_IF_ON_TIME,
    Lifetimes,
    Orders,
)

YEAR_DAYS = 365.25
SEASON_JITTER_DAYS = 6.0
SEASON_MAX_JITTER_DAYS = 15.0
SEASON_DROPOUT = 0.08
#: Extra orders in a season after its first (Poisson mean, at most SEASON_MAX_EXTRA), each
#: a uniform 2–8 days after the previous one: a season is a short buying spell.
SEASON_EXTRA_ORDERS = 0.8
SEASON_MAX_EXTRA = 3
SEASON_SPELL_STEP_DAYS = (2.0, 8.0)
#: The third word of a chunk's seasonal seed sequence.
SEASONAL_STREAM = 0x5EA5


@dataclass(frozen=True)
class Seasons:
    """Per row of the chunk: seasonal or not, and the season (local days since the window
    start of one season's centre; NaN when not seasonal)."""

    seasonal: np.ndarray
    centre: np.ndarray

    def next_centres(self, after: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The first season centre strictly after ``after``, per row (of ``rows``)."""
        centre = self.centre if rows is None else self.centre[rows]
        k = np.floor((after - centre) / YEAR_DAYS) + 1.0
        return centre + k * YEAR_DAYS


def no_seasons(n: int) -> Seasons:
    return Seasons(np.zeros(n, dtype=bool), np.full(n, np.nan))


def make_seasons(pop: Population, share: float, rng: np.random.Generator) -> Seasons:
    """Pick the seasonal buyers among the buying customers (not duplicate registrations)."""
    n = pop.n
    if share <= 0:
        return no_seasons(n)
    buyer = ~pop.is_dup & (pop.lam > 0)
    seasonal = buyer & (rng.random(n) < share)
    centre = np.where(seasonal, rng.random(n) * YEAR_DAYS, np.nan)
    # a duplicate registration belongs to its person: same season
    dup = np.flatnonzero(pop.is_dup)
    seasonal[dup] = seasonal[pop.person[dup]]
    centre[dup] = centre[pop.person[dup]]
    return Seasons(seasonal, centre)


def seasonal_orders(
    pop: Population,
    orders: Orders,
    life: Lifetimes,
    seasons: Seasons,
    rng: np.random.Generator,
    *,
    days: int,
) -> tuple[Orders, Lifetimes]:
    """``orders`` and ``life`` with the seasonal buyers' Poisson orders replaced by yearly
    ones (module docstring)."""
    rows = np.flatnonzero(seasons.seasonal & ~pop.is_dup)
    if rows.size == 0:
        return orders, life
    end_local = days + pop.off
    first = seasons.next_centres(pop.signup[rows] - SEASON_MAX_JITTER_DAYS, rows)
    parts: list[tuple[np.ndarray, ...]] = []
    alive = life.alive_at_end.copy()
    death_t = life.death_t.copy()
    n_orders = life.n_orders.copy()
    n_orders[rows] = 0
    death_t[rows] = np.nan
    active, centre, k = rows, first, np.zeros(rows.size, dtype=np.int64)
    while active.size:
        jitter = np.clip(
            SEASON_JITTER_DAYS * rng.standard_normal(active.size),
            -SEASON_MAX_JITTER_DAYS,
            SEASON_MAX_JITTER_DAYS,
        )
        t = np.maximum(centre + jitter, pop.signup[active])
        stop = t >= end_local[active]
        alive[active[stop]] = True
        go = ~stop
        r, t0, k0, c_k = active[go], t[go], k[go], centre[go]
        # a season is a spell: the first order, then a few more, days apart
        extra = np.minimum(rng.poisson(SEASON_EXTRA_ORDERS, r.size), SEASON_MAX_EXTRA)
        spell = np.repeat(np.arange(r.size), extra + 1)
        start = np.repeat(np.cumsum(extra + 1) - (extra + 1), extra + 1)
        within = np.arange(spell.size) - start
        steps = np.where(within > 0, rng.uniform(*SEASON_SPELL_STEP_DAYS, spell.size), 0.0)
        total = np.cumsum(steps)
        t_o = t0[spell] + total - total[start]
        inside = t_o < end_local[r[spell]]
        cut = np.bincount(spell, weights=~inside, minlength=r.size) > 0  # the window ends
        gone = (rng.random(r.size) < SEASON_DROPOUT) & ~cut  # drops out after the season
        spell, within, t_o = spell[inside], within[inside], t_o[inside]
        rs = r[spell]
        last = np.r_[spell[1:] != spell[:-1], True]
        late = rng.random(rs.size) < pop.late_prob[rs]
        ticket = rng.random(rs.size) < np.where(late, TICKET_IF_LATE, TICKET_IF_ON_TIME)
        slow = ticket & (rng.random(rs.size) < SLOW_GIVEN_TICKET)
        dies = last & gone[spell]
        parts.append((rs, t_o, k0[spell] + within, late, ticket, slow, dies))
        death_t[rs[dies]] = t_o[dies]
        alive[r[gone]] = False
        np.add.at(n_orders, rs, 1)
        keep = ~gone
        count = np.bincount(spell, minlength=r.size)
        active, centre, k = r[keep], c_k[keep] + YEAR_DAYS, (k0 + count)[keep]
    alive[rows[~np.isnan(death_t[rows])]] = False
    keep = ~np.isin(orders.row, rows)
    cols = [
        np.concatenate([np.asarray(a)[keep]] + [p[i] for p in parts])
        for i, a in enumerate(
            (orders.row, orders.t, orders.k, orders.late, orders.ticket, orders.slow, orders.dies)
        )
    ]
    merged = Orders(
        row=cols[0].astype(np.int64),
        t=cols[1].astype(np.float64),
        k=cols[2].astype(np.int64),
        late=cols[3].astype(bool),
        ticket=cols[4].astype(bool),
        slow=cols[5].astype(bool),
        dies=cols[6].astype(bool),
    )
    dup = np.flatnonzero(pop.is_dup)
    alive[dup] = alive[pop.person[dup]]
    death_t[dup] = death_t[pop.person[dup]]
    return merged, Lifetimes(alive_at_end=alive, death_t=death_t, n_orders=n_orders)


def seasonal_expected_orders(
    seasons: Seasons, alive: np.ndarray, end_local: np.ndarray, horizon: float
) -> np.ndarray:
    """Expected orders of a live seasonal buyer over ``(end, end + horizon]``: one per
    season centre in it, each reached with probability ``(1 − dropout)^j`` for the j-th
    order after the next (the next one is certain: a live customer has not dropped out)."""
    out = np.zeros(seasons.seasonal.size)
    nxt = seasons.next_centres(end_local)
    for j in range(int(horizon // YEAR_DAYS) + 2):
        at = nxt + j * YEAR_DAYS
        out += np.where(at <= end_local + horizon, (1.0 - SEASON_DROPOUT) ** j, 0.0)
    return np.where(seasons.seasonal & alive, out * spell_orders(), 0.0)


def spell_orders() -> float:
    """Expected orders in one season: 1 + E[min(Poisson(SEASON_EXTRA_ORDERS), MAX)]."""
    lam, cap = SEASON_EXTRA_ORDERS, SEASON_MAX_EXTRA
    pk = [math.exp(-lam) * lam**k / math.factorial(k) for k in range(cap)]
    return 1.0 + sum(k * q for k, q in enumerate(pk)) + cap * (1.0 - sum(pk))
