"""Customers per segment as a library call (what ``liucun segments`` and a service show),
on the hand-made customers of test_stages.py with 10.00 per order."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.segments import (
    FilterSyntaxError,
    customer_profiles,
    segment_customers,
    segment_summary,
)

AS_OF = datetime(2024, 7, 1, tzinfo=UTC)
ORDERS = {
    "n1": ["2024-06-20"],  # new
    "g": ["2024-05-01", "2024-06-01", "2024-06-25"],  # growth
    "m": ["2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"],  # mature
    "s": ["2023-07-01", "2023-11-01", "2024-03-01"],  # growth (a seasonal buyer)
    "d": ["2024-01-01", "2024-01-15"],  # churned
    "dl": ["2024-05-01", "2024-05-11"],  # decline
    "n2": ["2024-04-01"],  # churned
}


@pytest.fixture
def data() -> tuple[ibis.Table, ibis.Table]:
    rows = [(u, "order", d, 10.0) for u, days in ORDERS.items() for d in days]
    rows.append(("p", "visit", "2024-06-15", None))  # potential: never ordered
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts", "revenue"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    users = pd.DataFrame(
        {
            "user_id": ["p", "q", "g", "m"],
            "signup_ts": pd.to_datetime(["2024-06-01", "2024-08-01", None, None], utc=True),
            "country": ["DE", "DE", "DE", "FR"],
        }
    )
    return ibis.memtable(df), ibis.memtable(users)


def _summary(table: ibis.Table) -> list[tuple[object, ...]]:
    return [tuple(r) for r in table.to_pandas().itertuples(index=False)]


def test_customers_per_stage_by_hand(data: tuple[ibis.Table, ibis.Table]) -> None:
    events, users = data
    got = _summary(segment_summary(events, users, as_of=AS_OF, by="stage"))
    # segment, customers, revenue, mean_value, share; largest first, ties by name
    assert got == [
        ("churned", 2, 30.0, 15.0, 2 / 8),
        ("growth", 2, 60.0, 30.0, 2 / 8),
        ("decline", 1, 20.0, 20.0, 1 / 8),
        ("mature", 1, 50.0, 50.0, 1 / 8),
        ("new", 1, 10.0, 10.0, 1 / 8),
        ("potential", 1, 0.0, 0.0, 1 / 8),
    ]


def test_a_filter_narrows_what_is_counted(data: tuple[ibis.Table, ibis.Table]) -> None:
    events, users = data
    repeaters = _summary(
        segment_summary(events, users, as_of=AS_OF, by="stage", where="orders >= 2")
    )
    assert repeaters == [
        ("growth", 2, 60.0, 30.0, 2 / 5),
        ("churned", 1, 20.0, 20.0, 1 / 5),
        ("decline", 1, 20.0, 20.0, 1 / 5),
        ("mature", 1, 50.0, 50.0, 1 / 5),
    ]
    german = segment_customers(events, users, as_of=AS_OF, by="stage", where='country == "DE"')
    assert sorted(german.to_pandas().user_id) == ["g", "p"]  # q signs up after as_of
    with pytest.raises(FilterSyntaxError, match="did you mean 'country'"):
        segment_summary(events, users, as_of=AS_OF, where='contry == "DE"')


@pytest.mark.parametrize(("by", "column"), [("rfm", "rfm_segment"), ("class", "rfm_class")])
def test_rfm_groupings_count_buyers_only(
    data: tuple[ibis.Table, ibis.Table], by: str, column: str
) -> None:
    """The summary equals a pandas group-by of the profiles of the customers who ordered."""
    events, users = data
    got = segment_summary(events, users, as_of=AS_OF, by=by).to_pandas()  # type: ignore[arg-type]
    profiles = customer_profiles(events, users, as_of=AS_OF).to_pandas()
    buyers = profiles[profiles[column].notna()]
    assert "p" not in set(segment_customers(events, users, as_of=AS_OF).to_pandas().user_id)
    expected = (
        buyers.groupby(column)
        .agg(customers=("user_id", "size"), revenue=("monetary", "sum"))
        .reset_index()
        .rename(columns={column: "segment"})
    )
    merged = got.merge(expected, on="segment", suffixes=("", "_pandas"))
    assert len(merged) == len(got) == len(expected)
    assert (merged.customers == merged.customers_pandas).all()
    assert merged.revenue.tolist() == pytest.approx(merged.revenue_pandas.tolist())
    assert got.customers.sum() == 7 and got.share.sum() == pytest.approx(1.0)
    assert got.customers.is_monotonic_decreasing


def test_an_unknown_grouping_names_the_choices(data: tuple[ibis.Table, ibis.Table]) -> None:
    events, users = data
    with pytest.raises(ConfigError, match="use rfm, class or stage") as err:
        segment_summary(events, users, as_of=AS_OF, by="colour")  # type: ignore[arg-type]
    assert err.value.hint is not None and err.value.hint.option == "by"
    assert "--" not in str(err.value)
