"""Money in one reporting currency (issue 10): a cross-border shop's CNY, USD and EUR
orders converted at the rate of each order's day in the reporting time zone (the nearest
earlier day with a rate); the oracle is worked out by hand from the rates below."""

from __future__ import annotations

from datetime import UTC, date, datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError, InvalidInput
from liucun.metrics import convert_money, order_value
from liucun.reports import headline_kpis

pytestmark = pytest.mark.usefixtures("liucun_engine")


RATES = [  # date, currency, CNY per unit (no rate on 01-02…01-04 for USD: a "weekend")
    (date(2024, 1, 1), "USD", 7.0),
    (date(2024, 1, 5), "USD", 7.2),
    (date(2024, 1, 2), "EUR", 7.8),
]
ORDERS = [  # user, ts (UTC), revenue, currency
    ("a", "2024-01-04T12:00:00Z", 10.0, "USD"),  # Shanghai 01-04 20:00 → 01-01 rate 7.0 = 70
    ("a", "2024-01-04T17:00:00Z", 20.0, "USD"),  # Shanghai 01-05 01:00 → 7.2 = 144
    ("b", "2024-01-03T00:00:00Z", 100.0, "CNY"),  # = 100
    ("c", "2024-01-02T10:00:00Z", 50.0, "EUR"),  # 7.8 = 390
    ("c", "2024-01-06T10:00:00Z", 10.0, "EUR"),  # nearest earlier 01-02: 78
]
TOTAL_CNY = 70 + 144 + 100 + 390 + 78


def _events(orders: list[tuple[str, str, float, str]]) -> ibis.Table:
    df = pd.DataFrame(orders, columns=["user_id", "ts", "revenue", "currency"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["event_type"] = "order"
    view = pd.DataFrame(
        {
            "user_id": ["a"],
            "ts": pd.to_datetime(["2024-01-03T09:00:00Z"], utc=True),
            "revenue": [None],
            "currency": [None],
            "event_type": ["view"],
        }
    )
    return ibis.memtable(pd.concat([df, view], ignore_index=True))


def _rates(quote: str = "CNY") -> ibis.Table:
    df = pd.DataFrame(RATES, columns=["date", "currency", "rate"])
    df["quote"] = quote
    df["source"] = "test"
    return ibis.memtable(df)


def test_every_order_is_converted_at_its_days_rate_in_the_reporting_time_zone() -> None:
    got = convert_money(_events(ORDERS), _rates(), currency="CNY", timezone="Asia/Shanghai")
    frame = got.filter(got.event_type == "order").order_by("ts").to_pandas()
    assert list(frame.revenue) == pytest.approx([390.0, 100.0, 70.0, 144.0, 78.0])
    assert set(frame.currency) == {"CNY"}
    # the amounts as recorded travel along
    assert list(frame.original_currency) == ["EUR", "CNY", "USD", "USD", "EUR"]
    assert list(frame.original_revenue) == [50.0, 100.0, 10.0, 20.0, 10.0]
    view = got.filter(got.event_type == "view").to_pandas().iloc[0]
    assert pd.isna(view.revenue) and pd.isna(view.fx_rate)


def test_converting_twice_changes_nothing() -> None:
    once = convert_money(_events(ORDERS), _rates(), currency="CNY", timezone="Asia/Shanghai")
    twice = convert_money(once, _rates(), currency="CNY", timezone="Asia/Shanghai")
    assert twice.revenue.sum().to_pyarrow().as_py() == pytest.approx(TOTAL_CNY)
    with pytest.raises(ConfigError, match="another currency than USD"):
        convert_money(once, _rates(), currency="USD")


def test_in_utc_the_late_order_falls_on_the_earlier_day() -> None:
    got = convert_money(_events(ORDERS), _rates(), currency="CNY", timezone="UTC")
    total = got.revenue.sum().to_pyarrow().as_py()
    assert total == pytest.approx(TOTAL_CNY - 144 + 140)  # 20 USD at 7.0 on 01-04 UTC


def test_aov_and_arpu_in_the_reporting_currency() -> None:
    converted = convert_money(_events(ORDERS), _rates(), currency="CNY", timezone="Asia/Shanghai")
    row = order_value(converted).to_pandas()
    assert list(row.currency) == ["CNY"]
    r = row.iloc[0]
    assert (r.orders, r.buyers) == (5, 3)
    assert r.revenue == pytest.approx(TOTAL_CNY)
    assert r.aov == pytest.approx(TOTAL_CNY / 5)
    assert r.arpu == pytest.approx(TOTAL_CNY / 3)


def test_a_missing_rate_names_the_currency_the_day_and_the_fix() -> None:
    early = [*ORDERS, ("d", "2024-01-01T03:00:00Z", 5.0, "EUR")]  # before the first EUR rate
    with pytest.raises(InvalidInput) as err:
        convert_money(_events(early), _rates(), currency="CNY", timezone="Asia/Shanghai")
    text = str(err.value)
    assert "EUR" in text and "2024-01-01" in text and "liucun ingest fx" in text
    assert "2024-01-02" in text  # the first rate there is
    with pytest.raises(InvalidInput, match="no GBP rate into CNY at all"):
        convert_money(
            _events([("e", "2024-01-03T00:00:00Z", 1.0, "GBP")]), _rates(), currency="CNY"
        )
    # rates into another currency do not count
    with pytest.raises(InvalidInput, match="no EUR rate into CNY at all"):
        convert_money(_events(ORDERS), _rates("EUR"), currency="CNY")


def test_without_a_reporting_currency_amounts_stay_as_recorded() -> None:
    events = _events(ORDERS)
    assert convert_money(events, None, currency=None) is events
    per = order_value(events).to_pandas().set_index("currency")
    assert per.revenue.to_dict() == {"CNY": 100.0, "EUR": 60.0, "USD": 30.0}


def test_orders_already_in_the_reporting_currency_need_no_rates() -> None:
    only_cny = [o for o in ORDERS if o[3] == "CNY"]
    got = convert_money(_events(only_cny), None, currency="CNY").to_pandas()
    assert got.revenue.sum() == 100.0


def test_headline_money_rows_name_the_reporting_currency() -> None:
    users = ibis.memtable(
        pd.DataFrame(
            {"user_id": ["a", "b", "c"], "acquisition_channel": ["x"] * 3, "acquisition_cost": 1.0}
        )
    )
    kpis = headline_kpis(
        _events(ORDERS),
        users,
        as_of=datetime(2024, 1, 10, tzinfo=UTC),
        timezone="Asia/Shanghai",
        currency="CNY",
        fx_rates=_rates(),
    )
    money = kpis[kpis.kind == "money"]
    assert set(money.by) == {"CNY"}
    values = dict(zip(money.metric, money.value, strict=True))
    assert values["revenue (last 365 days)"] == pytest.approx(TOTAL_CNY)
    assert values["AOV (last 365 days)"] == pytest.approx(TOTAL_CNY / 5)
    assert values["ARPU (last 365 days)"] == pytest.approx(TOTAL_CNY / 3)
    ltv = kpis[(kpis.metric == "LTV/CAC") & (kpis.by == "x")].value.iloc[0]
    assert ltv == pytest.approx(TOTAL_CNY / 3 / 1.0)  # LTV per customer ÷ CAC 1 (in CNY)
    # without a reporting currency: one row per currency, as recorded
    plain = headline_kpis(_events(ORDERS), users, as_of=datetime(2024, 1, 10, tzinfo=UTC))
    aov = plain[plain.metric == "AOV (last 365 days)"]
    assert list(aov.by) == ["EUR", "USD", "CNY"]  # most orders first, ties by code
