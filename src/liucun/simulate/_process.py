"""Buy-till-you-die: each customer's orders, service outcomes and dropout.

A customer buys as a Poisson process with rate ``λ · m(t) · c(t)``: the calendar
multiplier ``m`` and, for treated customers during the campaign window, ``c = 1 + e``.
Arrivals are drawn in the customer's operational time ``G(t) = ∫ m·c`` and mapped
back. After every order the customer drops out with probability ``p`` times a factor
for a late delivery and for a slowly resolved support ticket (MBG/NBD-style: the first
order can be the last). Because service outcomes are independent of time, the process
is exactly BG/NBD with the effective dropout :func:`effective_dropout`.

The loop runs over the k-th order of all live customers of a chunk at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liucun.simulate._calendar import Calendar
from liucun.simulate._population import CAMPAIGN_DAYS, Population
from liucun.simulate._presets import Preset

TICKET_IF_LATE = 0.35
TICKET_IF_ON_TIME = 0.03
SLOW_GIVEN_TICKET = 0.3
MAX_DROPOUT = 0.95


@dataclass
class Orders:
    """Every order of the chunk's customers since sign-up (also before the window)."""

    row: np.ndarray  # the person's row
    t: np.ndarray  # local time, days since window start
    k: np.ndarray  # 0-based order number of the person
    late: np.ndarray
    ticket: np.ndarray
    slow: np.ndarray
    dies: np.ndarray  # the customer drops out after this order


@dataclass
class Lifetimes:
    """Per row: alive at the end of the window, dropout time (NaN if alive), orders."""

    alive_at_end: np.ndarray
    death_t: np.ndarray
    n_orders: np.ndarray


def effective_dropout(p: np.ndarray, late_prob: np.ndarray, preset: Preset) -> np.ndarray:
    """Expected dropout probability per order, averaged over service outcomes."""
    total = np.zeros_like(p)
    for late, q_late in ((True, late_prob), (False, 1.0 - late_prob)):
        q_slow = (TICKET_IF_LATE if late else TICKET_IF_ON_TIME) * SLOW_GIVEN_TICKET
        base = p * (preset.late_dropout_mult if late else 1.0)
        slow = np.minimum(base * preset.slow_ticket_dropout_mult, MAX_DROPOUT)
        total += q_late * (q_slow * slow + (1.0 - q_slow) * np.minimum(base, MAX_DROPOUT))
    return total


class OperationalTime:
    """``G(t)`` and its inverse for a set of customers (calendar × campaign boost)."""

    def __init__(self, cal: Calendar, pop: Population) -> None:
        self.cal = cal
        self.kappa = pop.kappa
        self.m0 = cal.integral(pop.issue_t)
        self.width = cal.integral(pop.issue_t + CAMPAIGN_DAYS) - self.m0

    def forward(self, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = self.cal.integral(t)
        m0, w = self.m0[rows], self.width[rows]
        return m + self.kappa[rows] * (np.clip(m, m0, m0 + w) - m0)

    def inverse(self, g: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m0, w, kappa = self.m0[rows], self.width[rows], self.kappa[rows]
        before = g <= m0
        during = ~before & (g <= m0 + (1.0 + kappa) * w)
        u = np.where(before, g, np.where(during, m0 + (g - m0) / (1.0 + kappa), g - kappa * w))
        return self.cal.inverse(u)


def simulate_orders(
    preset: Preset,
    pop: Population,
    cal: Calendar,
    rng: np.random.Generator,
    *,
    days: int,
) -> tuple[Orders, Lifetimes]:
    """Run every person of the chunk from sign-up to the end of the window."""
    n = pop.n
    end_local = days + pop.off
    optime = OperationalTime(cal, pop)
    alive = np.zeros(n, dtype=bool)
    death_t = np.full(n, np.nan)
    n_orders = np.zeros(n, dtype=np.int64)

    active = np.flatnonzero(~pop.is_dup & (pop.lam > 0))
    g = optime.forward(pop.signup[active], active)
    k = np.zeros(active.size, dtype=np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    first = True
    while active.size:
        g_next = g + rng.standard_exponential(active.size) / pop.lam[active]
        if first:
            forced = pop.checkout[active]
            t_force = pop.signup[active] + (1.0 + 29.0 * rng.random(active.size)) / 1440.0
            g_next = np.where(forced, optime.forward(t_force, active), g_next)
            t_next = np.where(forced, t_force, optime.inverse(g_next, active))
            first = False
        else:
            t_next = optime.inverse(g_next, active)
        stop = t_next >= end_local[active]
        alive[active[stop]] = True
        go = ~stop
        rows, t_k, k_k, g_k = active[go], t_next[go], k[go], g_next[go]

        late = rng.random(rows.size) < pop.late_prob[rows]
        ticket = rng.random(rows.size) < np.where(late, TICKET_IF_LATE, TICKET_IF_ON_TIME)
        slow = ticket & (rng.random(rows.size) < SLOW_GIVEN_TICKET)
        p_k = pop.p[rows] * np.where(late, preset.late_dropout_mult, 1.0)
        p_k = np.minimum(p_k * np.where(slow, preset.slow_ticket_dropout_mult, 1.0), MAX_DROPOUT)
        dies = rng.random(rows.size) < p_k
        parts.append((rows, t_k, k_k, late, ticket, slow, dies))
        death_t[rows[dies]] = t_k[dies]
        n_orders[rows] += 1

        keep = ~dies
        active, g, k = rows[keep], g_k[keep], k_k[keep] + 1

    cols = list(zip(*parts, strict=True)) if parts else [()] * 7
    arrays = [np.concatenate(c) if c else np.array([]) for c in cols]
    orders = Orders(
        row=arrays[0].astype(np.int64),
        t=arrays[1].astype(np.float64),
        k=arrays[2].astype(np.int64),
        late=arrays[3].astype(bool),
        ticket=arrays[4].astype(bool),
        slow=arrays[5].astype(bool),
        dies=arrays[6].astype(bool),
    )
    dup = np.flatnonzero(pop.is_dup)
    alive[dup] = alive[pop.person[dup]]
    death_t[dup] = death_t[pop.person[dup]]
    return orders, Lifetimes(alive_at_end=alive, death_t=death_t, n_orders=n_orders)
