"""evaluate_tiers by hand: thresholds 0 / 1000 / 5000 on growth earned in 12 months."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.loyalty._program import parse_program
from liucun.loyalty._tiers import TIER_COLUMNS, evaluate_tiers, review_start, tier_changes

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
THIS_MONTH = pd.Timestamp("2026-06-01T00:00:00Z")
LAST_MONTH = pd.Timestamp("2026-05-01T00:00:00Z")


def program(**policy: Any) -> Any:
    return parse_program(
        {
            "name": "t",
            "currency": "CNY",
            "tiers": [
                {"name": "基础", "threshold": 0},
                {"name": "进阶", "threshold": 1000},
                {"name": "尊享", "threshold": 5000},
            ],
            "tier_policy": {"window": {"amount": 12, "unit": "months"}, **policy},
        }
    )


def growth(*rows: tuple[str, str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "ts", "growth"])
    frame["ts"] = pd.to_datetime(frame.ts, utc=True)
    return frame


def previous(*rows: tuple[str, str, Any]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "tier", "reviewed_at"]).assign(
        reviewed_at=lambda f: pd.to_datetime(f.reviewed_at, utc=True)
    )


def by_user(result: pd.DataFrame) -> dict[str, Any]:
    return result.set_index("user_id").to_dict("index")


def test_members_join_at_the_tier_their_growth_reaches() -> None:
    entries = growth(
        ("a", "2026-05-01", 999),
        ("b", "2026-05-01", 600),
        ("b", "2026-06-01", 400),  # 1000 exactly reaches 进阶
        ("c", "2026-01-01", 5000),
        ("d", "2026-06-01", -20),  # only a reversal: still the base tier
    )
    out = evaluate_tiers(entries, program(), as_of=AS_OF)
    assert tuple(out.columns) == TIER_COLUMNS
    rows = by_user(out)
    assert {u: r["tier"] for u, r in rows.items()} == {
        "a": "基础",
        "b": "进阶",
        "c": "尊享",
        "d": "基础",
    }
    assert rows["b"]["growth_in_window"] == 1000
    assert rows["d"]["growth_in_window"] == -20
    assert all(r["direction"] == "joined" and r["changed"] for r in rows.values())
    assert rows["b"]["reason"].startswith("joined: 1000 growth earned in the last 12 months")


def test_upgrade_is_immediate_even_between_reviews() -> None:
    out = evaluate_tiers(
        growth(("a", "2026-06-10", 1200)),
        program(),
        as_of=AS_OF,
        previous=previous(("a", "基础", THIS_MONTH)),
    )
    row = by_user(out)["a"]
    assert (row["tier"], row["previous_tier"], row["direction"], row["changed"]) == (
        "进阶",
        "基础",
        "up",
        True,
    )
    assert row["tier_since"] == pd.Timestamp(AS_OF)


@pytest.mark.parametrize(("policy", "expected"), [("one_down", "进阶"), ("balance_based", "基础")])
def test_downgrade_at_the_review(policy: str, expected: str) -> None:
    # 300 growth in the window: a 尊享 member falls one tier, or to the base tier
    out = evaluate_tiers(
        growth(("a", "2026-03-01", 300)),
        program(downgrade=policy),
        as_of=AS_OF,
        previous=previous(("a", "尊享", LAST_MONTH)),
    )
    row = by_user(out)["a"]
    assert (row["tier"], row["direction"], row["changed"]) == (expected, "down", True)
    assert row["reviewed_at"] == THIS_MONTH
    assert "downgraded from 尊享 (at the review)" in row["reason"]


def test_no_downgrade_between_reviews() -> None:
    out = evaluate_tiers(
        growth(("a", "2026-03-01", 300)),
        program(),
        as_of=AS_OF,
        previous=previous(("a", "尊享", THIS_MONTH)),  # reviewed this month already
    )
    row = by_user(out)["a"]
    assert (row["tier"], row["changed"], row["direction"]) == ("尊享", False, "same")
    assert "until the next review" in row["reason"]


def test_grace_period_keeps_the_tier_then_downgrades() -> None:
    prog = program(grace_days=30)
    entries = growth(("a", "2026-03-01", 300))
    first = evaluate_tiers(entries, prog, as_of=AS_OF, previous=previous(("a", "进阶", LAST_MONTH)))
    row = by_user(first)["a"]
    assert (row["tier"], row["changed"]) == ("进阶", False)
    assert row["grace_until"] == pd.Timestamp(AS_OF) + pd.Timedelta(days=30)
    assert "grace until 2026-07-15" in row["reason"]
    # ten days later, still in grace (and a new month: the review must not cut it short)
    later = evaluate_tiers(entries, prog, as_of=AS_OF + timedelta(days=20), previous=first)
    assert by_user(later)["a"]["tier"] == "进阶"
    # when the grace ends below the threshold, the downgrade happens
    end = evaluate_tiers(entries, prog, as_of=AS_OF + timedelta(days=30), previous=later)
    row = by_user(end)["a"]
    assert (row["tier"], row["direction"]) == ("基础", "down")
    assert pd.isna(row["grace_until"])
    assert "the grace period ended" in row["reason"]


def test_recovering_during_grace_ends_it() -> None:
    prog = program(grace_days=30)
    first = evaluate_tiers(
        growth(("a", "2026-03-01", 300)),
        prog,
        as_of=AS_OF,
        previous=previous(("a", "进阶", LAST_MONTH)),
    )
    back = evaluate_tiers(
        growth(("a", "2026-03-01", 300), ("a", "2026-06-20", 800)),
        prog,
        as_of=AS_OF + timedelta(days=10),
        previous=first,
    )
    row = by_user(back)["a"]
    assert (row["tier"], row["changed"]) == ("进阶", False)
    assert pd.isna(row["grace_until"])


def test_the_window_drops_old_growth() -> None:
    # window (2025-06-15T12:00Z, 2026-06-15T12:00Z]
    entries = growth(
        ("a", "2025-06-15T12:00:00", 5000),  # exactly 12 months before: outside
        ("a", "2025-06-15T12:00:01", 700),
        ("a", "2026-06-15T12:00:00", 300),  # at as_of: inside
        ("a", "2026-06-15T12:00:01", 9000),  # after as_of: not yet
    )
    row = by_user(
        evaluate_tiers(
            entries, program(), as_of=AS_OF, previous=previous(("a", "尊享", LAST_MONTH))
        )
    )["a"]
    assert row["growth_in_window"] == 1000
    assert row["tier"] == "进阶"  # one_down from 尊享


def test_review_periods_start_on_local_calendar_boundaries() -> None:
    def start(review: str, tz: str = "UTC") -> pd.Timestamp:
        p = parse_program(
            {"name": "t", "currency": "CNY", "timezone": tz, "tier_policy": {"review": review}}
        )
        return review_start(p, AS_OF)

    assert start("month") == THIS_MONTH
    assert start("quarter") == pd.Timestamp("2026-04-01T00:00:00Z")
    assert start("year") == pd.Timestamp("2026-01-01T00:00:00Z")
    assert start("week") == pd.Timestamp("2026-06-15T00:00:00Z")  # a Monday
    assert start("month", "Asia/Shanghai") == pd.Timestamp("2026-05-31T16:00:00Z")


def test_tier_changes_are_warehouse_events() -> None:
    out = evaluate_tiers(
        growth(("a", "2026-06-10", 1200), ("b", "2026-06-10", 10)),
        program(),
        as_of=AS_OF,
        previous=previous(("a", "基础", THIS_MONTH), ("b", "基础", THIS_MONTH)),
    )
    events = tier_changes(out, program(), as_of=AS_OF)
    assert events.user_id.tolist() == ["a"]
    assert events.event_type.tolist() == ["tier_changed"]
    assert events.event_id.tolist() == ["tier:a:20260615T120000000000Z:进阶"]
    props = json.loads(events.properties.iloc[0])
    assert (props["from"], props["to"], props["direction"]) == ("基础", "进阶", "up")
    assert props["program_digest"] == program().digest


def test_a_program_without_tiers_is_refused() -> None:
    bare = parse_program({"name": "t", "currency": "CNY"})
    with pytest.raises(ConfigError, match="defines no tiers"):
        evaluate_tiers(growth(("a", "2026-06-10", 1)), bare, as_of=AS_OF)


def test_a_tier_removed_from_the_program_is_re_evaluated() -> None:
    out = evaluate_tiers(
        growth(("a", "2026-06-10", 1200)),
        program(),
        as_of=AS_OF,
        previous=previous(("a", "金卡", THIS_MONTH)),
    )
    row = by_user(out)["a"]
    assert (row["tier"], row["previous_tier"], row["changed"]) == ("进阶", "金卡", True)
    assert row["reason"].startswith("the previous tier '金卡' is not in the program")


def test_members_only_in_previous_have_no_growth() -> None:
    out = evaluate_tiers(
        growth(("b", "2026-06-10", 10)),
        program(downgrade="balance_based"),
        as_of=AS_OF,
        previous=previous(("a", "进阶", LAST_MONTH)),
    )
    row = by_user(out)["a"]
    assert (row["tier"], row["growth_in_window"], row["direction"]) == ("基础", 0, "down")


def test_previous_with_two_rows_for_a_member_is_refused() -> None:
    with pytest.raises(ConfigError, match="two rows for user 'a'"):
        evaluate_tiers(
            growth(("a", "2026-06-10", 1)),
            program(),
            as_of=AS_OF,
            previous=previous(("a", "基础", THIS_MONTH), ("a", "进阶", THIS_MONTH)),
        )
