"""ROI and coupon cost in the reporting currency (issue 10): a campaign whose customers pay
in USD and EUR, with coupons priced in the currency of their row; every number by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import ibis
import pandas as pd
import pytest

from liucun.experiments import (
    Metric,
    campaign_roi,
    stats_from_table,
    unit_outcomes,
    variant_statistics,
)
from liucun.metrics import convert_money

T0 = datetime(2026, 3, 2, tzinfo=UTC)
RATES = {"USD": 7.0, "EUR": 8.0}  # CNY per unit from 2026-03-01 on


pytestmark = pytest.mark.usefixtures("liucun_engine")


def _coupon(discount: float) -> str:
    return f'{{"coupon_code": "X", "discount": "{discount:.2f}", "campaign_id": "cmp"}}'


EVENTS = [  # user, type, day after T0, revenue, currency, properties
    ("t1", "order", 1, 100.0, "USD", None),  # 700 CNY
    ("t1", "coupon_redeemed", 1, None, "USD", _coupon(10)),  # 70 CNY
    ("t2", "order", 2, 50.0, "EUR", None),  # 400 CNY
    ("t2", "coupon_redeemed", 2, None, "EUR", _coupon(5)),  # 40 CNY
    ("c1", "order", 3, 20.0, "USD", None),  # 140 CNY
    ("c2", "order", 4, 300.0, "CNY", None),  # 300 CNY
]
UNITS = [("t1", "treatment"), ("t2", "treatment"), ("c1", "control"), ("c2", "control")]


def _tables() -> tuple[ibis.Table, ibis.Table, ibis.Table]:
    df = pd.DataFrame(
        EVENTS, columns=["user_id", "event_type", "day", "revenue", "currency", "properties"]
    )
    df["ts"] = [T0 + timedelta(days=d, hours=3) for d in df.day]
    df["account_id"] = None
    units = pd.DataFrame(UNITS, columns=["unit_id", "variant"])
    units["exposed_at"] = T0
    rates = pd.DataFrame(
        {
            "date": [date(2026, 3, 1)] * 2,
            "currency": list(RATES),
            "quote": "CNY",
            "rate": list(RATES.values()),
            "source": "test",
        }
    )
    return (
        ibis.memtable(df.drop(columns="day")),
        ibis.memtable(units),
        ibis.memtable(rates),
    )


def test_revenue_and_coupon_cost_are_converted_per_unit() -> None:
    events, units, rates = _tables()
    converted = convert_money(events, rates, currency="CNY")
    out = unit_outcomes(converted, units).to_pandas().set_index("unit_id")
    assert out.revenue.to_dict() == pytest.approx(
        {"t1": 700.0, "t2": 400.0, "c1": 140.0, "c2": 300.0}
    )
    assert out.coupon_cost.to_dict() == pytest.approx({"t1": 70.0, "t2": 40.0, "c1": 0, "c2": 0})


def test_roi_in_one_currency() -> None:
    events, units, rates = _tables()
    converted = convert_money(events, rates, currency="CNY")
    outcomes = unit_outcomes(converted, units)
    roi = Metric("roi", "revenue", "ratio", denominator="coupon_cost")
    arms = stats_from_table(variant_statistics(outcomes, [roi]).to_pyarrow(), [roi])
    got = campaign_roi(arms["control"]["roi"], arms["treatment"]["roi"])
    # incremental revenue per treated unit (700+400)/2 − (140+300)/2 = 330;
    # incremental cost (70+40)/2 − 0 = 55: ROI 6.0 (as recorded it would mix USD, EUR, CNY)
    assert got.incremental_revenue == pytest.approx(330.0)
    assert got.incremental_cost == pytest.approx(55.0)
    assert got.roi == pytest.approx(6.0)
