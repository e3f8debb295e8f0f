"""``accrue``'s refunds and deliveries on SQLite and PostgreSQL: each return policy with
full and partial refunds, refunds after a redemption and of pending points, deliveries
releasing points on a later run, growth taken back, refunds after a tier change. Every
expected figure is worked out by hand in the test from the definitions (1 point and 1
growth per CNY unless said, floor of amount × rate, refunds take back the refunded share
under the return policy), never read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from accrual_setup import Shop, at

from liucun import loyalty
from liucun.state import LoyaltyMemberTier


@pytest.fixture
def shop(tmp_path: Path, state_url: str) -> Iterator[Shop]:
    s = Shop(tmp_path, state_url, now=at(2, 0))
    yield s
    s.close()


def test_within_balance_full_refund_after_a_redemption_and_two_partial_refunds(
    shop: Shop,
) -> None:
    shop.program(points={"return_policy": "within_balance"})
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web
           o2,u2,order,2026-03-01T10:00:00Z,200,CNY,B,web"""
    )
    loyalty.accrue(shop.ws)
    loyalty.redeem(shop.ws, "u1", 70, key="checkout-1")  # u1 keeps 30
    shop.events(
        """r1,u1,refund,2026-03-03T10:00:00Z,100,CNY,A,web
           r2a,u2,refund,2026-03-03T10:00:00Z,50,CNY,B,web
           r2b,u2,refund,2026-03-04T10:00:00Z,30,CNY,B,web"""
    )
    shop.at(at(5))
    run = loyalty.accrue(shop.ws)
    # r1 claims all 100 of A but u1 holds 30: 30 taken, 70 limited; its growth all goes
    # r2a: 50 of 200 → 50; r2b: 80 of 200 refunded in all → 80 − 50 = 30 more
    assert (run.written, run.limited, run.limited_points) == (3, 1, 70)
    assert (run.points, run.growth) == (-30 - 50 - 30, -100 - 50 - 30)
    assert (shop.acct("u1").balance, shop.acct("u1").growth_value) == (0, 0)
    assert (shop.acct("u2").balance, shop.acct("u2").growth_value) == (120, 120)
    entries = {e.key: (e.kind, e.points, e.growth) for e in shop.acct("u2").entries}
    assert entries["accrue:r2a:spend"] == ("reversal", -50, -50)
    assert entries["accrue:r2b:spend"] == ("reversal", -30, -30)
    details = json.loads(shop.runs()[-1].details)
    assert details["limited_points"] == 70 and shop.runs()[-1].limited == 1
    assert details["by_rule"]["spend"]["limited_points"] == 70
    assert loyalty.check(shop.ws).ok


def test_unlimited_takes_everything_back_even_below_zero(shop: Shop) -> None:
    shop.program(points={"return_policy": "unlimited", "negative_balance": "allow"})
    shop.events("o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web")
    loyalty.accrue(shop.ws)
    loyalty.redeem(shop.ws, "u1", 70, key="checkout-1")
    shop.events(
        """r1,u1,refund,2026-03-03T10:00:00Z,100,CNY,A,web
           o3,u1,order,2026-03-04T10:00:00Z,30,CNY,C,web"""
    )
    shop.at(at(5))
    run = loyalty.accrue(shop.ws)
    # 30 − 100 = −70, then the 30 of o3 settle debt: −40; growth 100 − 100 + 30
    assert (run.limited, run.points) == (0, -100 + 30)
    acct = shop.acct("u1")
    assert (acct.posted, acct.growth_value) == (-40, 30)
    assert [(lot.key, lot.points, lot.remaining) for lot in acct.lots] == []  # all went to debt
    assert loyalty.check(shop.ws).ok


def test_only_pending_takes_back_only_points_still_pending_at_the_refund(shop: Shop) -> None:
    shop.program(
        points={
            "return_policy": "only_pending",
            "pending": {"mode": "on_event", "event_type": "delivery"},
        }
    )
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web
           d1,u1,delivery,2026-03-02T08:00:00Z,,,A,web
           o2,u1,order,2026-03-02T10:00:00Z,60,CNY,B,web"""
    )
    shop.at(at(3))
    loyalty.accrue(shop.ws)
    assert (shop.acct("u1").balance, shop.acct("u1").pending) == (100, 60)
    loyalty.redeem(shop.ws, "u1", 50, key="checkout-1")
    shop.events(
        """r1,u1,refund,2026-03-04T10:00:00Z,100,CNY,A,web
           r2,u1,refund,2026-03-04T10:00:00Z,30,CNY,B,web"""
    )
    shop.at(at(5))
    run = loyalty.accrue(shop.ws)
    # A was delivered before its refund: nothing pending to take, 100 limited, growth −100;
    # B is still pending: 30 of its 60 come off its own lot, growth −30
    assert (run.written, run.limited, run.limited_points, run.points) == (2, 1, 100, -30)
    acct = shop.acct("u1")
    assert (acct.balance, acct.pending, acct.growth_value) == (50, 30, 160 - 100 - 30)
    # B is delivered later: the next run releases its remaining 30
    shop.events("d2,u1,delivery,2026-03-06T08:00:00Z,,,B,web")
    shop.at(at(7))
    later = loyalty.accrue(shop.ws)
    assert (later.written, later.released, later.points) == (1, 1, 0)
    assert (shop.acct("u1").balance, shop.acct("u1").pending) == (80, 0)
    assert loyalty.check(shop.ws).ok


def test_delivery_on_a_later_run_releases_with_validity_from_then(shop: Shop) -> None:
    shop.program(
        points={
            "pending": {"mode": "on_event", "event_type": "delivery"},
            "validity": {"amount": 30, "unit": "days", "rounding": "day"},
            "return_policy": "within_balance",
        }
    )
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web
           o2,u2,order,2026-03-01T10:00:00Z,80,CNY,B,web"""
    )
    first = loyalty.accrue(shop.ws)
    assert first.released == 0
    assert [(lot.remaining, lot.expires_at) for lot in shop.acct("u1").lots] == [(100, None)]
    assert (shop.acct("u1").balance, shop.acct("u1").pending) == (0, 100)
    # u1's order arrives on Mar 6; u2 refunds the whole order while it is still pending
    shop.events(
        """d1,u1,delivery,2026-03-06T08:00:00Z,,,A,web
           r2,u2,refund,2026-03-03T10:00:00Z,80,CNY,B,web"""
    )
    shop.at(at(8))
    run = loyalty.accrue(shop.ws)
    assert (run.released, run.limited, run.points) == (1, 0, -80)
    [lot] = shop.acct("u1").lots
    # available Mar 6 08:00 + 30 days = Apr 5, valid to the end of that day (UTC)
    assert (lot.available_at, lot.expires_at) == (
        datetime(2026, 3, 6, 8, tzinfo=UTC),
        datetime(2026, 4, 6, tzinfo=UTC),
    )
    assert (shop.acct("u1").balance, shop.acct("u1").pending) == (100, 0)
    assert (shop.acct("u2").posted, shop.acct("u2").pending, shop.acct("u2").growth_value) == (
        0,
        0,
        0,
    )
    again = loyalty.accrue(shop.ws, since=datetime(2026, 1, 1, tzinfo=UTC))
    assert (again.written, again.released) == (0, 0)
    assert loyalty.check(shop.ws).ok


def test_growth_of_a_refunded_order_goes_down_with_the_first_order_bonus(shop: Shop) -> None:
    shop.program(
        earning={
            "orders": [{"name": "spend", "points_per_unit": 1.5, "growth_per_unit": 1}],
            "first_order": {"growth": 100, "min_amount": 0},
        }
    )
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,101,CNY,A,web
           r1,u1,refund,2026-03-01T11:00:00Z,33,CNY,A,web"""
    )
    loyalty.accrue(shop.ws)
    # floor(101 × 1.5) = 151 → after r1 68 CNY remain: floor(68 × 1.5) = 102; growth 68
    acct = shop.acct("u1")
    assert (acct.balance, acct.growth_value) == (102, 68 + 100)
    shop.events("r2,u1,refund,2026-03-01T12:00:00Z,68,CNY,A,web")
    shop.at(at(3))
    loyalty.accrue(shop.ws, since=datetime(2026, 3, 1, tzinfo=UTC))
    acct = shop.acct("u1")
    # the rest refunded: nothing earned, no first order any more
    assert (acct.balance, acct.growth_value) == (0, 0)
    kinds = [(e.key, e.points, e.growth) for e in acct.entries]
    assert ("accrue:r2:first_order", 0, -100) in kinds
    assert loyalty.check(shop.ws).ok


def test_a_refund_after_a_tier_change_takes_back_what_was_booked(shop: Shop) -> None:
    shop.program(
        tiers=[{"name": "基础", "threshold": 0}, {"name": "进阶", "threshold": 1000}],
        earning={
            "first_order": None,
            "orders": [
                {
                    "name": "spend",
                    "multipliers": [{"name": "t", "factor": 1.2, "tiers": ["进阶"]}],
                }
            ],
        },
    )
    shop.events("o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web")
    loyalty.accrue(shop.ws)
    assert shop.acct("u1").balance == 100  # no tier yet
    with shop.ws.state.write() as s:
        s.add(
            LoyaltyMemberTier(
                program="default",
                user_id="u1",
                tier="进阶",
                growth_in_window=1000,
                tier_since=at(2),
                updated_at=at(2),
            )
        )
    shop.events(
        """r1,u1,refund,2026-03-03T10:00:00Z,50,CNY,A,web
           r2,u1,refund,2026-03-03T11:00:00Z,50,CNY,A,web"""
    )
    shop.at(at(4))
    run = loyalty.accrue(shop.ws, since=datetime(2026, 3, 1, tzinfo=UTC))
    # o1 would now earn 120 (a drift: what was booked stands); the refunds are shares of
    # the booked 100: half (60 of 120 planned) → 50, then the rest → 50
    assert (run.drifted, run.written, run.points) == (1, 2, -100)
    assert shop.acct("u1").posted == 0 and shop.acct("u1").growth_value == 0
    assert loyalty.check(shop.ws).ok
