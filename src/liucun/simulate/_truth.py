"""Ground truth: every customer's latent parameters, state and true expectations.

Expected orders over ``h`` days after the end use the BG/NBD closed form for a live
customer, ``(1/p)(1 - exp(-p·λ·H))`` with ``p`` the effective dropout per order
(service effects included) and ``H = ∫ m`` the calendar mass of the horizon
(``H = h`` when the calendar is flat); they are 0 for a customer who dropped out. Rows
of a person with a duplicate registration split the person's expectations by
``order_share``, so sums over ``canonical_user_id`` give the person's totals.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liucun.schema import arrow_schema
from liucun.simulate._calendar import Calendar
from liucun.simulate._orders import DUPLICATE_ORDER_SHARE
from liucun.simulate._population import Population, campaign_names
from liucun.simulate._presets import Preset
from liucun.simulate._process import Lifetimes, OperationalTime, effective_dropout
from liucun.simulate._seasonal import (
    YEAR_DAYS,
    Seasons,
    no_seasons,
    seasonal_expected_orders,
)

TS = arrow_schema("events").field("ts").type

HORIZONS = (30, 90, 180, 365)

TRUTH_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("canonical_user_id", pa.string()),
        ("is_duplicate", pa.bool_()),
        ("order_share", pa.float64()),
        ("never_buyer", pa.bool_()),
        ("purchase_rate", pa.float64()),
        ("dropout_prob", pa.float64()),
        ("dropout_prob_effective", pa.float64()),
        ("late_delivery_prob", pa.float64()),
        ("spend_shape", pa.float64()),
        ("spend_rate", pa.float64()),
        ("mean_order_value", pa.float64()),
        ("currency", pa.string()),
        ("price_sensitivity", pa.float64()),
        ("satisfaction", pa.float64()),
        ("alive_at_end", pa.bool_()),
        ("dropout_ts", TS),
        *[(f"expected_orders_{h}d", pa.float64()) for h in HORIZONS],
        *[(f"expected_spend_{h}d", pa.float64()) for h in HORIZONS],
        ("campaign_id", pa.string()),
        ("in_campaign", pa.bool_()),
        ("treated", pa.bool_()),
        ("propensity", pa.float64()),
        ("campaign_start_ts", TS),
        ("campaign_lift", pa.float64()),
        ("campaign_orders_if_control", pa.float64()),
        ("campaign_orders_if_treated", pa.float64()),
        ("true_effect_orders", pa.float64()),
        ("true_effect_revenue", pa.float64()),
        ("seasonal", pa.bool_()),
        ("season_day", pa.int16()),
    ]
)


def _expected(lam: np.ndarray, p: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """BG/NBD expected orders of a live customer over a horizon of calendar mass ``mass``."""
    return -np.expm1(-p * lam * mass) / p


def truth_table(
    preset: Preset,
    pop: Population,
    life: Lifetimes,
    cal: Calendar,
    *,
    days: int,
    start_us: int,
    start_date: np.datetime64,
    seasons: Seasons | None = None,
) -> pa.Table:
    """The ``truth`` rows of one chunk.

    A seasonal buyer's ``purchase_rate`` is one order a year and their expected orders
    count the seasons in the horizon (:func:`seasonal_expected_orders`); ``season_day`` is
    the day of the year (1–366, UTC calendar) of their season.
    """
    n = pop.n
    seasons = seasons or no_seasons(n)
    p_eff = effective_dropout(pop.p, pop.late_prob, preset)
    share = np.where(pop.is_dup, DUPLICATE_ORDER_SHARE, 1.0)
    share = np.where(pop.dup_row >= 0, 1.0 - DUPLICATE_ORDER_SHARE, share)
    mov = preset.spend_p / pop.nu * pop.spend_mult
    alive = life.alive_at_end & (pop.lam > 0)
    end_local = days + pop.off
    cols: dict[str, pa.Array | np.ndarray] = {}
    for h in HORIZONS:
        e = np.where(alive, _expected(pop.lam, p_eff, cal.mass(end_local, end_local + h)), 0.0)
        e = np.where(seasons.seasonal, seasonal_expected_orders(seasons, alive, end_local, h), e)
        cols[f"expected_orders_{h}d"] = e * share
    for h in HORIZONS:
        cols[f"expected_spend_{h}d"] = cols[f"expected_orders_{h}d"] * mov

    # campaign: true effect given the customer's state when the coupon went out
    optime = OperationalTime(cal, pop)
    alive_at_issue = pop.in_campaign & (pop.lam > 0)
    alive_at_issue &= np.isnan(life.death_t) | (life.death_t >= pop.issue_t)
    control = _expected(pop.lam, p_eff, optime.width)
    treated = _expected(pop.lam, p_eff, optime.width * (1.0 + pop.effect))
    control = np.where(alive_at_issue, control, 0.0) * share
    treated = np.where(alive_at_issue, treated, 0.0) * share
    campaign_id, _ = campaign_names(start_date, days)
    death = life.death_t
    dead = np.isnan(death)
    death_us = start_us + np.round((np.where(dead, 0.0, death) - pop.off) * 86_400e6)
    issue_us = start_us + np.round((pop.issue_t - pop.off) * 86_400e6).astype(np.int64)
    truth = {
        "user_id": pop.user_id,
        "canonical_user_id": pop.user_id.take(pa.array(pop.person)),
        "is_duplicate": pop.is_dup,
        "order_share": share,
        "never_buyer": pop.never_buyer,
        "purchase_rate": np.where(seasons.seasonal, 1.0 / YEAR_DAYS, pop.lam),
        "dropout_prob": pop.p,
        "dropout_prob_effective": p_eff,
        "late_delivery_prob": pop.late_prob,
        "spend_shape": np.full(n, preset.spend_p),
        "spend_rate": pop.nu / pop.spend_mult,
        "mean_order_value": mov,
        "currency": pa.array(pop.currencies).take(pa.array(pop.currency)),
        "price_sensitivity": pop.price_sens,
        "satisfaction": pop.sat,
        "alive_at_end": alive,
        "dropout_ts": pa.array(death_us.astype(np.int64), type=TS, mask=dead),
        **cols,
        "campaign_id": pc.if_else(
            pa.array(pop.in_campaign), campaign_id, pa.scalar(None, pa.string())
        ),
        "in_campaign": pop.in_campaign,
        "treated": pop.treated,
        "propensity": pa.array(np.full(n, 0.5), mask=~pop.in_campaign),
        "campaign_start_ts": pa.array(issue_us, type=TS, mask=~pop.in_campaign),
        "campaign_lift": pop.effect,
        "campaign_orders_if_control": control,
        "campaign_orders_if_treated": treated,
        "true_effect_orders": treated - control,
        "true_effect_revenue": (treated - control) * mov,
        "seasonal": seasons.seasonal,
        "season_day": _season_day(seasons, start_date),
    }
    return pa.table(truth, schema=TRUTH_SCHEMA)


def _season_day(seasons: Seasons, start_date: np.datetime64) -> pa.Array:
    """Day of the year (1–366) of each seasonal buyer's season centre; null otherwise."""
    centre = np.where(seasons.seasonal, seasons.centre, 0.0)
    day = start_date + np.floor(centre).astype("timedelta64[D]")
    of_year = (day - day.astype("datetime64[Y]")).astype(np.int64) + 1
    return pa.array(of_year.astype(np.int16), type=pa.int16(), mask=~seasons.seasonal)
