"""plan_accrual on small hand-made event tables; every expected number is worked out
by hand in the test from the rule's definition (floor(amount × rate × multipliers))."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ibis
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.loyalty._program import parse_program
from liucun.loyalty._rules import ACCRUAL_COLUMNS, plan_accrual

COLS = ("event_id", "user_id", "event_type", "ts", "revenue", "currency", "order_id")


def events(*rows: tuple[Any, ...], **extra: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for name, values in extra.items():
        frame[name] = values
    for name in ("channel", "category", "properties"):
        if name not in frame:
            frame[name] = None
    return frame


def program(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "test",
        "currency": "CNY",
        "earning": {"orders": [{"name": "spend", "points_per_unit": 1, "growth_per_unit": 1}]},
    }
    data.update(overrides)
    return parse_program(data)


def cell(plan: pd.DataFrame, event_id: str, rule: str, col: str) -> Any:
    row = plan[(plan.source_event_id == event_id) & (plan.rule == rule)]
    assert len(row) == 1, f"expected one row for {event_id}/{rule}, got {len(row)}"
    return row[col].iloc[0]


def test_spend_first_order_and_columns() -> None:
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 99.9, "CNY", "A"),
        ("o2", "u1", "order", "2026-03-05T10:00:00Z", 20.0, "CNY", "B"),
    )
    plan = plan_accrual(ev, program())
    assert tuple(plan.columns) == ACCRUAL_COLUMNS
    # 99.9 CNY × 1 point/CNY, rounded down → 99; the first order adds 100 growth
    assert cell(plan, "o1", "spend", "points") == 99
    assert cell(plan, "o1", "spend", "growth") == 99
    assert cell(plan, "o1", "first_order", "growth") == 100
    assert cell(plan, "o1", "first_order", "points") == 0
    assert cell(plan, "o2", "spend", "points") == 20
    assert len(plan) == 3  # o2 is not a first order
    assert cell(plan, "o1", "spend", "key") == "accrue:o1:spend"
    assert cell(plan, "o1", "first_order", "key") == "accrue:o1:first_order"
    assert set(plan.kind) == {"earn"}
    assert str(plan.ts.dtype) == "datetime64[us, UTC]"


def test_zero_value_order_earns_nothing_and_is_not_the_first_order() -> None:
    ev = events(
        ("o0", "u1", "order", "2026-03-01T10:00:00Z", 0.0, "CNY", "A"),  # a free sample
        ("o1", "u1", "order", "2026-03-02T10:00:00Z", 30.0, "CNY", "B"),
        ("o9", "u2", "order", "2026-03-02T10:00:00Z", None, "CNY", "C"),  # no amount at all
    )
    plan = plan_accrual(ev, program())
    assert "o0" not in set(plan.source_event_id)
    assert "o9" not in set(plan.source_event_id)
    assert cell(plan, "o1", "first_order", "growth") == 100
    assert cell(plan, "o1", "spend", "points") == 30


def test_refunds_reverse_what_the_remaining_amount_no_longer_earns() -> None:
    prog = program(
        earning={"orders": [{"name": "spend", "points_per_unit": 1.5, "growth_per_unit": 1}]}
    )
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 101.0, "CNY", "A"),
        ("r1", "u1", "refund", "2026-03-03T10:00:00Z", 33.0, "CNY", "A"),
        ("r2", "u1", "refund", "2026-03-04T10:00:00Z", 68.0, "CNY", "A"),
        ("rx", "u1", "refund", "2026-03-04T10:00:00Z", 5.0, "CNY", "NO-SUCH-ORDER"),
    )
    plan = plan_accrual(ev, prog)
    # earned: floor(101 × 1.5) = 151 points, 101 growth, + 100 first-order growth
    assert cell(plan, "o1", "spend", "points") == 151
    # after r1, 68 CNY remain: floor(68 × 1.5) = 102 → reverse 49; growth 101 − 68 = 33
    assert cell(plan, "r1", "spend", "points") == -49
    assert cell(plan, "r1", "spend", "growth") == -33
    assert cell(plan, "r1", "spend", "kind") == "reversal"
    assert cell(plan, "r1", "spend", "reverses_key") == "accrue:o1:spend"
    assert cell(plan, "r1", "spend", "return_policy") == "within_balance"
    assert cell(plan, "r1", "spend", "key") == "accrue:r1:spend"
    # the order is still worth something after r1: the bonus stays
    assert not ((plan.source_event_id == "r1") & (plan.rule == "first_order")).any()
    # r2 refunds the rest: the remaining 102 points and 68 growth, and the bonus
    assert cell(plan, "r2", "spend", "points") == -102
    assert cell(plan, "r2", "spend", "growth") == -68
    assert cell(plan, "r2", "first_order", "growth") == -100
    assert cell(plan, "r2", "first_order", "reverses_key") == "accrue:o1:first_order"
    totals = plan.groupby("rule")[["points", "growth"]].sum()
    assert totals.loc["spend"].tolist() == [0, 0]
    assert totals.loc["first_order"].tolist() == [0, 0]
    assert "rx" not in set(plan.source_event_id)  # a refund of an unknown order


def test_refund_larger_than_the_order_takes_back_no_more_than_it_earned() -> None:
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 50.0, "CNY", "A"),
        ("r1", "u1", "refund", "2026-03-02T10:00:00Z", 80.0, "CNY", "A"),
    )
    plan = plan_accrual(ev, program())
    assert cell(plan, "r1", "spend", "points") == -50


def test_capped_behaviour_per_month_in_the_program_time_zone() -> None:
    prog = program(
        timezone="Asia/Shanghai",
        earning={
            "first_order": None,
            "behaviours": [
                {
                    "name": "review",
                    "event_type": "review",
                    "points": 10,
                    "growth": 5,
                    "cap": {"per": "month", "events": 2},
                },
                {
                    "name": "share",
                    "event_type": "share",
                    "points": 30,
                    "growth": 1,
                    "cap": {"per": "day", "points": 50},
                },
            ],
        },
    )
    ev = events(
        # 2026-03-31T17:00Z is April 1st, 01:00 in Shanghai: April's first review
        ("v1", "u1", "review", "2026-03-10T10:00:00Z", None, None, None),
        ("v2", "u1", "review", "2026-03-20T10:00:00Z", None, None, None),
        ("v3", "u1", "review", "2026-03-30T10:00:00Z", None, None, None),
        ("v4", "u1", "review", "2026-03-31T17:00:00Z", None, None, None),
        ("v5", "u2", "review", "2026-03-30T10:00:00Z", None, None, None),
        ("s1", "u1", "share", "2026-03-10T01:00:00Z", None, None, None),
        ("s2", "u1", "share", "2026-03-10T02:00:00Z", None, None, None),
        ("s3", "u1", "share", "2026-03-10T03:00:00Z", None, None, None),
    )
    plan = plan_accrual(ev, prog)
    reviews = plan[plan.rule == "review"]
    assert list(reviews.source_event_id) == ["v1", "v2", "v5", "v4"]  # v3: third in March
    assert reviews.points.tolist() == [10, 10, 10, 10]
    assert reviews.growth.tolist() == [5, 5, 5, 5]
    shares = plan[plan.rule == "share"]
    # 50 points a day: 30, then 20 of the next 30, then nothing (growth is not capped)
    assert shares.points.tolist() == [30, 20, 0]
    assert shares.growth.tolist() == [1, 1, 1]


def test_since_keeps_counting_the_cap_from_earlier_events() -> None:
    prog = program(
        earning={
            "behaviours": [
                {
                    "name": "check_in",
                    "event_type": "check_in",
                    "points": 1,
                    "cap": {"per": "week", "events": 1},
                }
            ]
        }
    )
    ev = events(
        ("c1", "u1", "check_in", "2026-03-02T10:00:00Z", None, None, None),  # a Monday
        ("c2", "u1", "check_in", "2026-03-04T10:00:00Z", None, None, None),  # same week
        ("c3", "u1", "check_in", "2026-03-09T10:00:00Z", None, None, None),  # next Monday
    )
    full = plan_accrual(ev, prog)
    assert list(full.source_event_id) == ["c1", "c3"]
    later = plan_accrual(ev, prog, since=datetime(2026, 3, 3, tzinfo=UTC))
    assert list(later.source_event_id) == ["c3"]
    assert later.key.tolist() == full.key.tolist()[1:]


def test_multiplier_date_range_is_inclusive_local_days() -> None:
    prog = program(
        timezone="Asia/Shanghai",
        earning={
            "first_order": None,
            "orders": [
                {
                    "name": "spend",
                    "points_per_unit": 1,
                    "growth_per_unit": 1,
                    "multipliers": [
                        {"name": "d11", "factor": 2, "start": "2026-11-01", "end": "2026-11-11"}
                    ],
                }
            ],
        },
    )
    ev = events(
        # 15:59Z is 23:59 on Oct 31 in Shanghai: before the range
        ("a", "u1", "order", "2026-10-31T15:59:00Z", 100.0, "CNY", "A"),
        # 16:00Z is midnight of Nov 1 in Shanghai: inside
        ("b", "u1", "order", "2026-10-31T16:00:00Z", 50.5, "CNY", "B"),
        # 23:59 on Nov 11 local: the end day is included
        ("c", "u1", "order", "2026-11-11T15:59:00Z", 10.0, "CNY", "C"),
        # midnight of Nov 12 local: outside
        ("d", "u1", "order", "2026-11-11T16:00:00Z", 10.0, "CNY", "D"),
    )
    plan = plan_accrual(ev, prog).set_index("source_event_id")
    assert plan.points.to_dict() == {"a": 100, "b": 101, "c": 20, "d": 10}
    # applies_to defaults to points: growth is not doubled
    assert plan.growth.to_dict() == {"a": 100, "b": 50, "c": 10, "d": 10}


def test_tier_category_and_channel_multipliers_multiply() -> None:
    prog = program(
        tiers=[{"name": "基础", "threshold": 0}, {"name": "进阶", "threshold": 1000}],
        earning={
            "first_order": None,
            "orders": [
                {
                    "name": "spend",
                    "points_per_unit": 1,
                    "growth_per_unit": 1,
                    "multipliers": [
                        {"name": "t", "factor": 1.2, "tiers": ["进阶"], "applies_to": "both"},
                        {"name": "c", "factor": 1.5, "categories": ["beauty"]},
                        {"name": "m", "factor": 1.1, "channels": ["mini_program"]},
                    ],
                }
            ],
        },
    )
    ev = events(
        ("a", "u1", "order", "2026-03-01T10:00:00Z", 100.0, "CNY", "A"),
        ("b", "u2", "order", "2026-03-01T10:00:00Z", 100.0, "CNY", "B"),
        ("c", "u2", "order", "2026-03-02T10:00:00Z", 100.0, "CNY", "C"),
        channel=["mini_program", "web", None],
        category=["beauty", None, None],
        properties=[None, '{"category": "beauty"}', '{"channel": "mini_program"}'],
    )
    plan = plan_accrual(ev, prog, tiers_by_user={"u1": "进阶", "u2": "基础"})
    plan = plan.set_index("source_event_id")
    # a: 100 × 1.2 × 1.5 × 1.1 = 198 points; growth 100 × 1.2 = 120
    # b: category from properties → 150; c: channel from properties → 110
    assert plan.points.to_dict() == {"a": 198, "b": 150, "c": 110}
    assert plan.growth.to_dict() == {"a": 120, "b": 100, "c": 100}


def test_pending_after_days_and_validity_rounded_to_the_day() -> None:
    prog = program(
        timezone="Asia/Shanghai",
        points={
            "pending": {"mode": "after", "days": 7},
            "validity": {"amount": 30, "unit": "days", "rounding": "day"},
        },
        earning={"first_order": None, "orders": [{"name": "spend"}]},
    )
    ev = events(("o1", "u1", "order", "2026-03-01T10:00:00Z", 10.0, "CNY", "A"))
    plan = plan_accrual(ev, prog)
    assert cell(plan, "o1", "spend", "available_at") == pd.Timestamp("2026-03-08T10:00:00Z")
    # available 18:00 on Mar 8 in Shanghai, + 30 days = Apr 7, valid to the end of that
    # local day: midnight Apr 8 Shanghai = 2026-04-07T16:00Z
    assert cell(plan, "o1", "spend", "expires_at") == pd.Timestamp("2026-04-07T16:00:00Z")


def test_pending_until_delivery() -> None:
    prog = program(
        points={
            "pending": {"mode": "on_event", "event_type": "delivery"},
            "validity": {"amount": 12, "unit": "months", "rounding": "month"},
        },
        earning={"first_order": None, "orders": [{"name": "spend"}]},
    )
    ev = events(
        ("o1", "u1", "order", "2026-01-31T10:00:00Z", 10.0, "CNY", "A"),
        ("o2", "u1", "order", "2026-02-01T10:00:00Z", 10.0, "CNY", "B"),
        ("d1", "u1", "delivery", "2026-02-03T08:00:00Z", None, None, "A"),
    )
    plan = plan_accrual(ev, prog)
    assert cell(plan, "o1", "spend", "available_at") == pd.Timestamp("2026-02-03T08:00:00Z")
    # 12 months after Feb 3 2026, to the end of that month: 2027-03-01T00:00Z
    assert cell(plan, "o1", "spend", "expires_at") == pd.Timestamp("2027-03-01T00:00:00Z")
    assert pd.isna(cell(plan, "o2", "spend", "available_at"))  # not delivered yet
    assert pd.isna(cell(plan, "o2", "spend", "expires_at"))
    assert "d1" not in set(plan.source_event_id)


def test_foreign_currency_without_rates_is_a_sentence() -> None:
    ev = events(("o1", "u1", "order", "2026-03-01T10:00:00Z", 10.0, "USD", "A"))
    with pytest.raises(InvalidInput, match=r"no FX rate for USD on or before 2026-03-01"):
        plan_accrual(ev, program())


@pytest.mark.usefixtures("liucun_engine")
def test_foreign_currency_converted_at_the_rate_of_its_day() -> None:
    rates = ibis.memtable(
        pd.DataFrame(
            {
                "date": pd.to_datetime(["2026-02-27"]).date,
                "currency": ["USD"],
                "quote": ["CNY"],
                "rate": [7.1],
            }
        )
    )
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 10.0, "USD", "A"),
        ("r1", "u1", "refund", "2026-03-02T10:00:00Z", 5.0, "USD", "A"),
        ("o2", "u2", "order", "2026-03-01T10:00:00Z", 10.0, None, "B"),  # no currency: CNY
    )
    plan = plan_accrual(
        ev, program(earning={"first_order": None, "orders": [{"name": "s"}]}), fx_rates=rates
    )
    # 10 USD at Friday's 7.1 → 71 CNY → 71 points; half refunded → 35.5 left → 35
    assert cell(plan, "o1", "s", "points") == 71
    assert cell(plan, "r1", "s", "points") == -36
    assert cell(plan, "o2", "s", "points") == 10


def test_plan_from_an_ibis_table_matches_the_frame_and_is_stable() -> None:
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 12.0, "CNY", "A"),
        ("v1", "u1", "review", "2026-03-01T11:00:00Z", None, None, None),
    )
    prog = program(
        earning={
            "orders": [{"name": "spend"}],
            "behaviours": [{"name": "review", "event_type": "review", "points": 3}],
        }
    )
    a = plan_accrual(ev, prog)
    b = plan_accrual(ev.sample(frac=1, random_state=0), prog)
    pd.testing.assert_frame_equal(a, b)
    assert a.key.tolist() == ["accrue:o1:first_order", "accrue:o1:spend", "accrue:v1:review"]


def test_a_refund_reverses_on_the_account_that_earned() -> None:
    # the refund arrives under the customer's unmerged second account
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 40.0, "CNY", "A"),
        ("r1", "u1-card", "refund", "2026-03-02T10:00:00Z", 40.0, "CNY", "A"),
    )
    plan = plan_accrual(ev, program())
    assert set(plan.user_id) == {"u1"}
    assert cell(plan, "r1", "spend", "points") == -40


def test_points_delivered_after_the_last_run_are_released() -> None:
    from liucun.loyalty._rules import pending_releases

    prog = program(
        points={"pending": {"mode": "on_event", "event_type": "delivery"}},
        earning={"first_order": None, "orders": [{"name": "spend"}]},
    )
    ev = events(
        ("o1", "u1", "order", "2026-03-01T10:00:00Z", 10.0, "CNY", "A"),
        ("o2", "u1", "order", "2026-03-02T10:00:00Z", 20.0, "CNY", "B"),
        ("d1", "u1", "delivery", "2026-03-02T08:00:00Z", None, None, "A"),
        ("d2", "u1", "delivery", "2026-03-06T08:00:00Z", None, None, "B"),
    )
    last_run = datetime(2026, 3, 5, tzinfo=UTC)
    # the run of Mar 5 saw o2 without a delivery: its points waited
    before = plan_accrual(ev[ev.event_id != "d2"], prog)
    assert pd.isna(cell(before, "o2", "spend", "available_at"))
    # the next run: no new order since Mar 5, but o2 was delivered on Mar 6
    assert plan_accrual(ev, prog, since=last_run).empty
    out = pending_releases(plan_accrual(ev, prog), since=last_run)
    assert out.key.tolist() == ["accrue:o2:spend"]
    assert out.points.tolist() == [20]
    assert out.available_at.tolist() == [pd.Timestamp("2026-03-06T08:00:00Z")]


def test_pending_until_delivery_when_nothing_is_delivered_yet() -> None:
    prog = program(
        points={"pending": {"mode": "on_event", "event_type": "delivery"}},
        earning={"first_order": None, "orders": [{"name": "spend"}]},
    )
    ev = events(
        ("o1", "u1", "order", "2026-01-31T10:00:00Z", 10.0, "CNY", "A"),
        ("d9", "u1", "delivery", "2026-02-03T08:00:00Z", None, None, "OTHER"),
    )
    plan = plan_accrual(ev, prog)
    assert plan.points.tolist() == [10]
    assert plan.available_at.isna().all()
    assert str(plan.available_at.dtype) == "datetime64[us, UTC]"
