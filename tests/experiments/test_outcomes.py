"""Per-unit retention outcomes and per-variant sufficient statistics on a hand-made shop,
every number worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from liucun.core import ConfigError, InvalidInput
from liucun.experiments import (
    RETENTION_METRICS,
    Metric,
    stats_from_table,
    unit_outcomes,
    variant_statistics,
)
from liucun.experiments.stats import CupedStat, MeanStat, ProportionStat, RatioStat, welch_ttest

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T5 = datetime(2026, 3, 5, 12, tzinfo=UTC)


def _day(d: float, base: datetime = T0) -> datetime:
    return base + timedelta(days=d)


def _coupon(discount: float, campaign: str) -> str:
    return f'{{"coupon_code": "X", "discount": "{discount:.2f}", "campaign_id": "{campaign}"}}'


EVENTS = [  # user, account, type, ts, revenue, properties
    ("u1", "A", "order", _day(-10), 50.0, None),
    ("u1", "A", "order", _day(2), 100.0, '{"discount": 15.00}'),
    ("u1", "A", "coupon_redeemed", _day(2), None, _coupon(15, "cmp")),
    ("u1", "A", "order", _day(20), 40.0, None),
    ("u1", "A", "order", _day(45), 30.0, None),  # after the window, inside the horizon
    ("u1", "A", "view", _day(3), None, None),  # not an order: ignored
    ("u2", "A", "order", _day(8), 60.0, None),
    ("u2", "A", "coupon_redeemed", _day(8), None, _coupon(10, "other")),
    ("u4", "B", "order", _day(-100), 20.0, None),  # before the pre-period
    ("u4", "B", "order", _day(95), 25.0, None),  # after the horizon
    ("u5", "B", "order", T5 - timedelta(hours=1), 12.0, None),  # pre-period
    ("u5", "B", "order", _day(7, T5), 70.0, None),  # exactly 7 days: D30, not D7
    ("u9", "C", "order", _day(1), 999.0, None),  # not exposed
]

UNITS = [  # unit, variant, exposed_at
    ("u1", "control", T0),
    ("u2", "treatment", T0),
    ("u3", "treatment", T0),
    ("u4", "control", T0),
    ("u5", "treatment", T5),
]


@pytest.fixture
def events() -> ibis.Table:
    df = pd.DataFrame(
        EVENTS, columns=["user_id", "account_id", "event_type", "ts", "revenue", "properties"]
    )
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    return ibis.memtable(df)


@pytest.fixture
def units() -> ibis.Table:
    df = pd.DataFrame(UNITS, columns=["unit_id", "variant", "exposed_at"])
    df["exposed_at"] = pd.to_datetime(df.exposed_at, utc=True)
    return ibis.memtable(df)


def _rows(table: ibis.Table) -> dict[str, dict[str, object]]:
    df = table.to_pandas()
    return {r["unit_id"]: r for r in df.to_dict("records")}


def test_unit_outcomes_by_hand(events: ibis.Table, units: ibis.Table) -> None:
    out = _rows(unit_outcomes(events, units))
    assert set(out) == {"u1", "u2", "u3", "u4", "u5"}
    expected = {
        # orders revenue cost buyer repeat d7 d30 churned next pre_orders pre_revenue active
        "u1": (2, 140.0, 15.0, 1, 1, 1, 1, 0, 2.0, 1, 50.0, 1),
        "u2": (1, 60.0, 10.0, 1, 0, 0, 1, 0, 8.0, 0, 0.0, 0),
        "u3": (0, 0.0, 0.0, 0, 0, 0, 0, 1, None, 0, 0.0, 0),
        "u4": (0, 0.0, 0.0, 0, 0, 0, 0, 1, None, 0, 0.0, 0),
        "u5": (1, 70.0, 0.0, 1, 0, 0, 1, 0, 7.0, 1, 12.0, 1),
    }
    cols = [
        "orders", "revenue", "coupon_cost", "buyer", "repeat_buyer", "retained_d7",
        "retained_d30", "churned", "days_to_next_order", "pre_orders", "pre_revenue",
        "active_before",
    ]  # fmt: skip
    for unit, values in expected.items():
        got = tuple(None if pd.isna(out[unit][c]) else out[unit][c] for c in cols)
        assert got == values, unit
        assert out[unit]["net_revenue"] == values[1] - values[2]
        assert out[unit]["has_next_order"] == (values[8] is not None)
    # windows are parameters: a 50-day window takes u1's order on day 45, a 7-day horizon
    # makes u2 (first order on day 8) churned
    wide = _rows(unit_outcomes(events, units, window_days=50, horizon_days=7))
    assert (wide["u1"]["orders"], wide["u1"]["revenue"]) == (3, 170.0)
    assert (wide["u2"]["churned"], wide["u1"]["churned"]) == (1, 0)
    # a 5-day pre-period no longer sees u1's order 10 days before exposure
    assert _rows(unit_outcomes(events, units, pre_days=5))["u1"]["pre_orders"] == 0


def test_coupon_cost_of_one_campaign(events: ibis.Table, units: ibis.Table) -> None:
    out = _rows(unit_outcomes(events, units, coupon_campaign="cmp"))
    assert (out["u1"]["coupon_cost"], out["u2"]["coupon_cost"]) == (15.0, 0.0)
    assert out["u2"]["net_revenue"] == 60.0


def test_accounts_join_on_account_id(events: ibis.Table) -> None:
    df = pd.DataFrame({"unit_id": ["A", "B"], "variant": ["control", "treatment"]})
    df["exposed_at"] = pd.Timestamp(T0)
    out = _rows(unit_outcomes(events, ibis.memtable(df), unit_type="account"))
    # account A: u1 (day 2, 20) and u2 (day 8); B: u5's orders (T5 − 1 h, T5 + 7 d), both
    # after the account's exposure at T0; u4's orders (day −100 and 95) fall outside
    assert (out["A"]["orders"], out["A"]["revenue"], out["A"]["coupon_cost"]) == (3, 200.0, 25.0)
    assert out["A"]["days_to_next_order"] == 2.0
    assert (out["B"]["orders"], out["B"]["revenue"]) == (2, 82.0)
    assert out["B"]["days_to_next_order"] == pytest.approx(4 + 11 / 24)
    assert (out["B"]["pre_orders"], out["B"]["churned"]) == (0, 0)


def test_variant_statistics_by_hand(events: ibis.Table, units: ibis.Table) -> None:
    table = variant_statistics(unit_outcomes(events, units)).to_pyarrow()
    rows = {r["variant"]: r for r in table.to_pylist()}
    c, t = rows["control"], rows["treatment"]
    assert (c["n"], t["n"]) == (2, 3)
    # orders: control u1 2, u4 0; treatment u2 1, u3 0, u5 1; covariate pre_orders 1,0 | 0,0,1
    assert (c["orders__sum"], c["orders__sum_sq"], t["orders__sum"], t["orders__sum_sq"]) == (
        2, 4, 2, 2,
    )  # fmt: skip
    assert (c["orders__pre_sum"], c["orders__cross"], t["orders__cross"]) == (1, 2, 1)
    assert (c["revenue__sum"], c["revenue__sum_sq"]) == (140.0, 140.0**2)
    assert c["revenue__cross"] == 140.0 * 50.0
    assert t["net_revenue__sum"] == 50.0 + 70.0
    # repurchase ratio: repeat buyers over buyers; days to next order over units with one
    assert (c["repurchase_rate__sum"], c["repurchase_rate__den_sum"]) == (1, 1)
    assert (t["repurchase_rate__sum"], t["repurchase_rate__den_sum"]) == (0, 2)
    assert (t["days_to_next_order__sum"], t["days_to_next_order__den_sum"]) == (15.0, 2)
    assert t["days_to_next_order__sum_sq"] == 8.0**2 + 7.0**2
    assert (c["churned__sum"], t["churned__sum"]) == (1, 1)
    arms = stats_from_table(table)
    assert arms["control"]["orders"] == CupedStat(2.0, 2.0, 4.0, 1.0, 1.0, 2.0)
    assert arms["treatment"]["retained_d30"] == ProportionStat(3.0, 2.0)
    assert arms["treatment"]["repurchase_rate"] == RatioStat(3.0, 0.0, 0.0, 2.0, 2.0, 0.0)
    assert isinstance(arms["control"]["coupon_cost"], MeanStat)


def test_reduction_equals_the_statistics_of_the_rows(events: ibis.Table, units: ibis.Table) -> None:
    outcomes = unit_outcomes(events, units)
    df = outcomes.to_pandas()
    arms = stats_from_table(variant_statistics(outcomes).to_pyarrow())
    for variant, group in df.groupby("variant"):
        for m in RETENTION_METRICS:
            y = group[m.column].fillna(0.0).to_numpy(float)
            stat = arms[str(variant)][m.name]
            if isinstance(stat, RatioStat):
                expected = RatioStat.from_values(y, group[m.denominator].to_numpy(float))
            elif isinstance(stat, CupedStat):
                expected = CupedStat.from_values(y, group[m.covariate].to_numpy(float))
            elif isinstance(stat, ProportionStat):
                expected = ProportionStat.from_values(y)
            else:
                expected = MeanStat.from_values(y)
            assert stat == expected, (variant, m.name)
    r = welch_ttest(
        MeanStat.from_values(df[df.variant == "control"].revenue),
        MeanStat.from_values(df[df.variant == "treatment"].revenue),
    )
    assert r.estimate == pytest.approx(np.mean([60.0, 0.0, 70.0]) - 70.0)


def test_grouping_by_more_keys_and_bad_arguments(events: ibis.Table, units: ibis.Table) -> None:
    outcomes = unit_outcomes(events, units).mutate(cohort=ibis.literal("march"))
    table = variant_statistics(outcomes, [Metric("orders", "orders")], by=["cohort", "variant"])
    assert table.to_pyarrow().column_names == [
        "cohort", "variant", "n", "orders__sum", "orders__sum_sq",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="window_days must be at least 1"):
        unit_outcomes(events, units, window_days=0)
    with pytest.raises(InvalidInput, match="units lacks exposed_at"):
        unit_outcomes(events, units.drop("exposed_at"))
    with pytest.raises(ConfigError, match="a ratio needs a denominator"):
        Metric("x", "orders", "ratio")
    with pytest.raises(ConfigError, match="CUPED covariates apply to mean metrics"):
        Metric("x", "buyer", "proportion", covariate="active_before")
