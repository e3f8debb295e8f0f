"""Tiers in force on SQLite and PostgreSQL, what counts: growth earned in the window by
``earned_at`` (not when it was booked), refunds where the order earned, never the
spendable points; members without growth; dry runs and refused reviews.

The program is examples/loyalty/program.yaml: tiers 基础 0 / 进阶 1000 / 尊享 5000 on growth
earned over 12 months, reviews monthly in Asia/Shanghai (a month starts at 16:00 UTC on
the last day of the month before), 30 grace days, one tier down per downgrade. Every
review below runs at 12:00 UTC (20:00 in Shanghai), so the window at day D starts
(exclusive) at 12:00 UTC on D a year earlier. Figures are worked out by hand from these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tier_helpers import (
    EXAMPLE,
    T0,
    at,
    history,
    state_rows,
    stored,
    tier_workspace,
    tiers,
    utc,
    warehouse_events,
)

from liucun import loyalty
from liucun.core import ConfigError
from liucun.state import LoyaltyTierChange
from liucun.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    yield from tier_workspace(tmp_path, state_url)


# -- what counts: earned growth in the window ----------------------------------------------


def test_a_refund_lowers_the_window_growth_where_the_order_earned_it(ws: Workspace) -> None:
    loyalty.award(ws, "u", 10, key="o1", growth=700, earned_at=utc(2026, 6, 1))
    loyalty.award(ws, "u", 10, key="o2", growth=500, earned_at=utc(2026, 6, 10))
    loyalty.award(ws, "u", 10, key="o0", growth=2000, earned_at=utc(2025, 3, 1))  # outside
    at(ws, T0)
    assert tiers(ws) == {"u": "进阶"} and stored(ws, "u").growth_in_window == 1200
    ws.clock.set(utc(2026, 6, 16))  # type: ignore[attr-defined]
    loyalty.reverse(ws, "o2", key="refund-o2")  # −500 of growth earned on 10 June
    # the refund of the order earned in March 2025 takes back growth outside the window:
    # the window keeps 700 (not 700 − 2000)
    loyalty.reverse(ws, "o0", key="refund-o0")
    review = at(ws, utc(2026, 6, 16))
    assert stored(ws, "u").growth_in_window == 700
    assert tiers(ws) == {"u": "进阶"} and review.changes == []  # June was reviewed already
    at(ws, utc(2026, 7, 2))  # July's review: 700 < 1000, 30 grace days start
    row = stored(ws, "u")
    assert (row.tier, row.growth_in_window, row.grace_until) == ("进阶", 700, utc(2026, 8, 1))
    assert loyalty.account(ws, "u").growth_value == 700  # 700 + 500 + 2000 − 500 − 2000


def test_growth_earned_before_the_window_but_booked_today_does_not_count(ws: Workspace) -> None:
    # a history loaded today: earned_at says when the growth was earned
    loyalty.add_growth(ws, "old", 5000, key="old", earned_at=utc(2025, 5, 1))
    loyalty.add_growth(ws, "new", 5000, key="new")  # earned now (T0)
    # the window (2025-06-15 12:00, 2026-06-15 12:00] excludes its start
    loyalty.add_growth(ws, "edge", 1000, key="edge", earned_at=utc(2025, 6, 15))
    loyalty.add_growth(ws, "inside", 1000, key="in", earned_at=utc(2025, 6, 15, 13))
    review = at(ws, T0)
    assert tiers(ws) == {"old": "基础", "new": "尊享", "edge": "基础", "inside": "进阶"}
    assert {u: stored(ws, u).growth_in_window for u in ("old", "new", "edge", "inside")} == {
        "old": 0,
        "new": 5000,
        "edge": 0,
        "inside": 1000,
    }
    assert review.distribution == {"基础": 2, "进阶": 1, "尊享": 1}


def test_redeeming_points_never_changes_a_tier(ws: Workspace) -> None:
    loyalty.award(ws, "u", 1500, key="o1", growth=1500, earned_at=utc(2026, 6, 1))
    at(ws, T0)
    loyalty.redeem(ws, "u", 1500, key="spend")
    review = at(ws, utc(2026, 7, 5))  # a review is due; the growth earned is still 1500
    acct = loyalty.account(ws, "u")
    assert (acct.balance, acct.growth_value, acct.tier) == (0, 1500, "进阶")
    assert review.changes == [] and history(ws, "u") == [(None, "进阶", "joined")]


def test_a_member_without_growth_holds_the_base_tier_and_unknown_ones_have_none(
    ws: Workspace,
) -> None:
    loyalty.award(ws, "points-only", 50, key="p")
    assert loyalty.account(ws, "points-only").tier is None  # before any review
    at(ws, T0)
    assert loyalty.account(ws, "points-only").tier == "基础"
    assert loyalty.account(ws, "stranger").tier is None


# -- dry run and refusals ----------------------------------------------------------------------


def test_a_dry_run_says_who_would_change_and_why_and_writes_nothing(ws: Workspace) -> None:
    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))
    dry = loyalty.review_tiers(ws, dry_run=True)
    assert dry.dry_run and [(c.user_id, c.to_tier) for c in dry.changes] == [("a", "进阶")]
    assert dry.changes[0].reason == (
        "joined: 1200 growth earned in the last 12 months reach 进阶 (threshold 1000)"
    )
    assert state_rows(ws) == {"members": [], "history": []}
    assert warehouse_events(ws) == []
    assert dry.to_dict()["changes"][0]["to"] == "进阶"


def test_a_review_in_the_future_or_back_in_time_is_refused(ws: Workspace) -> None:
    loyalty.add_growth(ws, "a", 10, key="a")
    with pytest.raises(ConfigError, match="cannot be reviewed ahead of time"):
        loyalty.review_tiers(ws, as_of=utc(2026, 6, 16))
    loyalty.review_tiers(ws)
    with pytest.raises(ConfigError, match="before the last tier review of 'default'"):
        loyalty.review_tiers(ws, as_of=utc(2026, 6, 14))
    with ws.state.read() as s:
        assert s.scalar(select(func.count()).select_from(LoyaltyTierChange)) == 1


def test_a_program_without_tiers_cannot_be_reviewed(ws: Workspace, tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\ncurrency: CNY\n", encoding="utf-8")
    loyalty.apply_program(ws, bare, program="bare")
    with pytest.raises(ConfigError, match="program 'bare' defines no tiers"):
        loyalty.review_tiers(ws, program="bare")


def test_programs_keep_their_own_tiers_and_event_ids(ws: Workspace) -> None:
    loyalty.apply_program(ws, EXAMPLE, program="vip")
    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))
    loyalty.add_growth(ws, "a", 6000, key="a-vip", program="vip", earned_at=utc(2026, 6, 1))
    loyalty.review_tiers(ws)
    loyalty.review_tiers(ws, program="vip")
    assert loyalty.account(ws, "a").tier == "进阶"
    assert loyalty.account(ws, "a", "vip").tier == "尊享"
    assert [e["event_id"] for e in warehouse_events(ws)] == [
        "tier:a:20260615T120000000000Z:进阶",
        "tier[vip]:a:20260615T120000000000Z:尊享",
    ]
