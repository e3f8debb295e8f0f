"""Tiers in force on SQLite and PostgreSQL: ``review_tiers`` upgrades at once and
downgrades only at a review, after the grace days, by the program's policy (the other
test_tier_store_*.py files: what growth counts, the warehouse side, temporary upgrades).

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
from tier_helpers import (
    T0,
    at,
    history,
    stored,
    tier_workspace,
    tiers,
    utc,
    variant,
)

from liucun import loyalty
from liucun.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    yield from tier_workspace(tmp_path, state_url)


# -- upgrades and downgrades --------------------------------------------------------------


def test_an_upgrade_happens_at_once_when_growth_crosses_a_threshold(ws: Workspace) -> None:
    loyalty.add_growth(ws, "u", 900, key="g1", earned_at=utc(2026, 6, 5))
    first = at(ws, T0)
    assert tiers(ws) == {"u": "基础"}  # 900 < 1000
    assert [(c.direction, c.to_tier) for c in first.changes] == [("joined", "基础")]
    ws.clock.set(utc(2026, 6, 16))  # type: ignore[attr-defined]
    loyalty.add_growth(ws, "u", 150, key="g2")  # 1050 >= 1000, mid-period: no review due
    review = at(ws, utc(2026, 6, 16))
    assert tiers(ws) == {"u": "进阶"}
    (change,) = review.changes
    assert (change.from_tier, change.to_tier, change.direction) == ("基础", "进阶", "up")
    assert change.reason.startswith("upgraded from 基础: 1050 growth earned in the last 12 months")
    row = stored(ws, "u")
    assert (row.growth_in_window, row.tier_since) == (1050, utc(2026, 6, 16))
    ws.clock.set(utc(2026, 6, 17))  # type: ignore[attr-defined]
    loyalty.add_growth(ws, "u", 3950, key="g3")  # 5000 exactly reaches 尊享
    at(ws, utc(2026, 6, 17))
    assert history(ws, "u") == [
        (None, "基础", "joined"),
        ("基础", "进阶", "up"),
        ("进阶", "尊享", "up"),
    ]
    assert loyalty.account(ws, "u").tier == "尊享"


def test_a_downgrade_waits_for_a_review_then_the_grace_days_one_tier_at_a_time(
    ws: Workspace,
) -> None:
    loyalty.add_growth(ws, "u", 6000, key="g", earned_at=utc(2025, 6, 20, 0))
    at(ws, T0)  # window (2025-06-15 12:00, 2026-06-15 12:00] holds the 6000
    assert tiers(ws) == {"u": "尊享"}
    # 25 June: the 6000 left the window (it starts 2025-06-25 12:00), but June's review
    # happened already: no downgrade between reviews
    mid = at(ws, utc(2026, 6, 25))
    assert tiers(ws) == {"u": "尊享"} and mid.changes == []
    assert stored(ws, "u").growth_in_window == 0
    # 2 July: the July review (it began 2026-06-30 16:00 UTC) finds 0 < 5000: 30 grace days
    review = at(ws, utc(2026, 7, 2))
    assert review.changes == [] and review.in_grace == 1
    assert stored(ws, "u").grace_until == utc(2026, 8, 1)  # 2 July 12:00 + 30 days
    assert tiers(ws) == {"u": "尊享"}
    at(ws, utc(2026, 7, 20))  # still in grace
    assert tiers(ws) == {"u": "尊享"}
    # 2 August: the grace ended on 1 August 12:00: one tier down (0 growth reaches 基础)
    review = at(ws, utc(2026, 8, 2))
    (change,) = review.changes
    assert (change.from_tier, change.to_tier, change.direction) == ("尊享", "进阶", "down")
    assert "the grace period ended" in change.reason and "one tier down" in change.reason
    row = stored(ws, "u")
    assert (row.tier, row.tier_since, row.grace_until) == ("进阶", utc(2026, 8, 2), None)
    at(ws, utc(2026, 8, 20))  # August was reviewed on the 2nd: 进阶 stays until September
    assert history(ws, "u") == [(None, "尊享", "joined"), ("尊享", "进阶", "down")]


@pytest.mark.parametrize(
    ("downgrade", "expected"),
    [("one_down", "进阶"), ("balance_based", "基础")],
)
def test_without_grace_the_review_downgrades_by_the_policy(
    ws: Workspace, tmp_path: Path, downgrade: str, expected: str
) -> None:
    variant(
        ws,
        tmp_path,
        **{"grace_days: 30": "grace_days: 0", "downgrade: one_down": f"downgrade: {downgrade}"},
    )
    loyalty.add_growth(ws, "u", 6000, key="g", earned_at=utc(2025, 6, 20, 0))
    at(ws, T0)
    at(ws, utc(2026, 6, 25))  # growth 0 now, but June was reviewed: no downgrade
    assert tiers(ws) == {"u": "尊享"}
    review = at(ws, utc(2026, 7, 2))
    assert tiers(ws) == {"u": expected}
    assert [(c.from_tier, c.to_tier, c.direction) for c in review.changes] == [
        ("尊享", expected, "down")
    ]
