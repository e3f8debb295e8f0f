"""retention() refuses event types that match nothing (issue 10: `--cohort-event Catalog`
returned an empty table, because ingestion stores event types in lower case)."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pytest

from liucun.core import ConfigError
from liucun.metrics import check_event_types, funnel, retention


def _events() -> ibis.Table:
    return ibis.memtable(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "user_id": ["u1", "u1", "u2", "u2"],
            "account_id": [None, None, None, None],
            "event_type": ["catalog", "order", "catalog", "visit"],  # catalog: a custom type
            "ts": [
                datetime(2024, 1, 1, 10),
                datetime(2024, 1, 9, 10),
                datetime(2024, 1, 2, 10),
                datetime(2024, 1, 3, 10),
            ],
        }
    )


def test_a_wrong_case_event_type_is_told_the_stored_form() -> None:
    with pytest.raises(
        ConfigError, match=r"cohort event 'Catalog'.*lower case, so use 'catalog'"
    ) as e:
        retention(_events(), cohort_event="Catalog", return_event="order")
    assert e.value.hint is not None
    assert (e.value.hint.option, e.value.hint.example) == ("cohort_event", "catalog")


def test_an_unknown_event_type_lists_data_standard_and_declared_types() -> None:
    with pytest.raises(ConfigError) as e:
        retention(_events(), return_event="purchase", custom_event_types=["wishlist"])
    text = str(e.value)
    assert "the return event 'purchase' is not a known event type" in text
    assert "the data have catalog, order, visit" in text
    assert "add_to_cart" in text and "wishlist" in text  # known, not in the data
    assert e.value.hint is not None and e.value.hint.example == "order"


def test_types_in_the_data_standard_or_declared_are_accepted() -> None:
    got = retention(_events(), cohort_event="catalog", period="week", max_period=1).to_pandas()
    assert got.loc[got.period == 1, "retained"].tolist() == [1]  # u1 ordered in week 1
    # a standard or declared type with no events gives empty cohorts, not an error
    assert retention(_events(), cohort_event="add_to_cart").to_pandas().empty
    assert (
        retention(_events(), cohort_event="wishlist", custom_event_types=["wishlist"])
        .count()
        .execute()
        == 0
    )


def test_check_event_types_for_funnel_steps() -> None:
    events = _events()
    check_event_types(events, [("step 1", "", "catalog"), ("step 2", "", "order")])
    with pytest.raises(ConfigError, match=r"step 2 'Order'.*use 'order'") as e:
        check_event_types(events, [("step 1", "", "catalog"), ("step 2", "", "Order")])
    assert e.value.hint is None  # no option to point at
    # u1's order is 8 days after their first catalog event: outside 7 days, inside 10
    assert funnel(events, ["catalog", "order"]).to_pandas().users.tolist() == [2, 0]
    ten = funnel(events, ["catalog", "order"], window=timedelta(days=10)).to_pandas()
    assert ten.users.tolist() == [2, 1]


def test_funnel_refuses_a_wrong_case_step_itself() -> None:
    """Python users of metrics.funnel get the same sentence as the CLI: no funnel of
    zeros for 'Order' (stored as 'order')."""
    with pytest.raises(ConfigError, match=r"funnel step 2 'Order'.*use 'order'"):
        funnel(_events(), ["catalog", "Order"])
    with pytest.raises(ConfigError, match=r"funnel step 1 'wishlist' is not a known event"):
        funnel(_events(), ["wishlist", "order"])
    declared = funnel(_events(), ["wishlist", "order"], custom_event_types=["wishlist"])
    assert declared.to_pandas().users.tolist() == [0, 0]
