"""CLV in the reporting currency (issue 10): the value model fits on amounts converted at
each order's day's rate, and a model trained in one currency refuses to score in another."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import ibis
import pandas as pd
import pytest

from helpers import make_workspace
from liucun.core import ConfigError
from liucun.metrics import convert_money
from liucun.models._training import _check_currency
from liucun.models._value import value_summary
from liucun.workspace import open_workspace

pytestmark = pytest.mark.usefixtures("liucun_engine")


def test_monetary_value_is_in_the_reporting_currency() -> None:
    orders = pd.DataFrame(
        [  # c: 50 EUR then 10 EUR (rate 7.8 from 01-02); d: 100 CNY then 30 USD (7.0)
            ("c", "2024-01-02T10:00:00Z", 50.0, "EUR"),
            ("c", "2024-01-06T10:00:00Z", 10.0, "EUR"),
            ("d", "2024-01-01T10:00:00Z", 100.0, "CNY"),
            ("d", "2024-01-08T10:00:00Z", 30.0, "USD"),
            ("d", "2024-01-09T10:00:00Z", 20.0, "CNY"),
        ],
        columns=["user_id", "ts", "revenue", "currency"],
    )
    orders["ts"] = pd.to_datetime(orders.ts, utc=True)
    orders["event_type"] = "order"
    rates = ibis.memtable(
        pd.DataFrame(
            {
                "date": [date(2024, 1, 1), date(2024, 1, 2)],
                "currency": ["USD", "EUR"],
                "quote": "CNY",
                "rate": [7.0, 7.8],
                "source": "test",
            }
        )
    )
    events = convert_money(ibis.memtable(orders), rates, currency="CNY")
    summary = value_summary(events, as_of=datetime(2024, 2, 1, tzinfo=UTC)).to_pandas()
    m = dict(zip(summary.user_id, summary.monetary_value, strict=True))
    assert m["c"] == pytest.approx(78.0)  # the repeat order, 10 EUR × 7.8
    assert m["d"] == pytest.approx((210.0 + 20.0) / 2)  # 30 USD × 7.0 and 20 CNY


def test_scoring_in_another_currency_than_training_is_refused(tmp_path: Path) -> None:
    ws_path = make_workspace(tmp_path / "ws")
    with (ws_path / "liucun.toml").open("a") as f:
        f.write('\n[reporting]\ncurrency = "CNY"\n')
    with open_workspace(ws_path) as ws:
        _check_currency(ws, SimpleNamespace(version="v1", params={"currency": "CNY"}))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"trained with amounts in USD.*liucun train"):
            _check_currency(ws, SimpleNamespace(version="v1", params={"currency": "USD"}))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="recorded currencies"):
            _check_currency(ws, SimpleNamespace(version="v0", params={}))  # type: ignore[arg-type]


def test_a_card_names_the_currency_of_its_money() -> None:
    from liucun.models import ModelCard

    names = {f for f in ModelCard.__dataclass_fields__}
    assert {"params"} <= names
    assert ModelCard.currency.fget(SimpleNamespace(params={"currency": "CNY"})) == "CNY"  # type: ignore[attr-defined]
    unset = SimpleNamespace(params={"currency": None})
    assert ModelCard.currency.fget(unset) is None  # type: ignore[attr-defined]
    unit = ModelCard.money_unit.fget  # type: ignore[attr-defined]
    assert unit(SimpleNamespace(currency="CNY")) == "CNY"
    assert unit(SimpleNamespace(currency=None)) == "in the orders' currencies"
