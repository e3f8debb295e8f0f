"""Customer tags on hand-made orders."""

from __future__ import annotations

import json
from datetime import datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.segments import customer_tags, tag_summary

AS_OF = datetime(2024, 7, 1)


def _order(user, day, category, channel, account=None, **props):  # type: ignore[no-untyped-def]
    return (user, "order", day, category, channel, account, json.dumps(props) if props else None)


def _events() -> ibis.Table:
    rows = [
        _order("a", "2024-01-01", "shoes", "app", discount=5.0),
        _order("a", "2024-02-01", "shoes", "app", coupon_code="SPRING"),
        _order("a", "2024-03-01", "bags", "web"),
        _order("b", "2024-01-10", "books", "web", items=2),
        _order("b1", "2024-01-01", "paper", "web", account="acme"),
        _order("b2", "2024-01-11", "paper", "web", account="acme"),
        _order("b1", "2024-01-31", "ink", "offline_store", account="acme"),
        _order("c", "2024-08-01", "shoes", "app", discount=1.0),  # after as_of
    ]
    df = pd.DataFrame(
        rows,
        columns=["user_id", "event_type", "ts", "category", "channel", "account_id", "properties"],
    )
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    return ibis.memtable(df)


def test_tags() -> None:
    got = customer_tags(_events(), as_of=AS_OF).execute().set_index("user_id").sort_index()
    assert list(got.index) == ["a", "b", "b1", "b2"]
    assert got.loc["a", "price_sensitivity"] == pytest.approx(2 / 3)
    assert bool(got.loc["a", "price_sensitive"]) is True
    assert got.loc["b", "price_sensitivity"] == 0.0
    assert (got.loc["a", "top_category"], got.loc["a", "top_category_share"]) == (
        "shoes",
        pytest.approx(2 / 3),
    )
    assert got.loc["a", "preferred_channel"] == "app"
    # ties go alphabetically: b1 has one ink and one paper order
    assert got.loc["b1", "top_category"] == "ink"
    # account acme orders on Jan 1, 11 and 31: gaps 10 and 20 days → median 15
    assert got.loc["b1", "account_cadence_days"] == pytest.approx(15.0)
    assert got.loc["b2", "account_cadence_days"] == pytest.approx(15.0)
    assert pd.isna(got.loc["a", "account_cadence_days"])


def test_threshold_is_checked() -> None:
    with pytest.raises(ConfigError, match="price_sensitive_share"):
        customer_tags(_events(), as_of=AS_OF, price_sensitive_share=0)


@pytest.mark.parametrize(
    ("props", "deal"),
    [
        ('{"discount": 5.0}', True),
        ('{"discount":0.5}', True),
        ('{"discount": "12"}', True),
        ('{"discount": 0}', False),
        ('{"discount": 0.0}', False),
        ('{"coupon_code": ""}', False),
        ('{"coupon_code": "X1"}', True),
        ('{"items": 3}', False),
        (None, False),
    ],
)
def test_what_counts_as_a_deal(props: str | None, deal: bool) -> None:
    df = pd.DataFrame(
        {
            "user_id": ["u"],
            "event_type": ["order"],
            "ts": pd.to_datetime(["2024-01-01"], utc=True),
            "category": [None],
            "channel": [None],
            "account_id": [None],
            "properties": [props],
        }
    )
    got = customer_tags(ibis.memtable(df), as_of=AS_OF).execute()
    assert got.price_sensitivity.iloc[0] == (1.0 if deal else 0.0)


def test_tag_summary_counts_buyers_per_tag_value() -> None:
    got = tag_summary(_events(), as_of=AS_OF).to_pyarrow().to_pylist()
    assert [(r["tag"], r["value"], r["customers"]) for r in got] == [
        ("preferred_channel", "web", 2),
        ("preferred_channel", "app", 1),
        ("preferred_channel", "offline_store", 1),  # b1's tie goes alphabetically
        ("price_sensitive", "false", 3),
        ("price_sensitive", "true", 1),
        ("top_category", "books", 1),
        ("top_category", "ink", 1),
        ("top_category", "paper", 1),
        ("top_category", "shoes", 1),
    ]  # c ordered after as_of: not counted
