"""``accrue`` on SQLite and PostgreSQL: events ingested into a workspace, a program
applied, runs one after another. Every expected figure is worked out by hand in the test
from the definitions (1 point and 1 growth per CNY unless said, floor of amount × rate,
refunds take back the refunded share under the return policy), never read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from accrual_setup import Shop, at
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import ConfigError
from liucun.state import LoyaltyAccount


@pytest.fixture
def shop(tmp_path: Path, state_url: str) -> Iterator[Shop]:
    s = Shop(tmp_path, state_url, now=at(2, 0))
    yield s
    s.close()


def test_a_second_run_writes_nothing_and_the_run_is_recorded(shop: Shop) -> None:
    shop.program(earning={"orders": [{"name": "spend"}], "first_order": {"growth": 100}})
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,99.9,CNY,A,web
           v1,u1,visit,2026-03-01T11:00:00Z,,,,web
           o2,u2,order,2026-03-01T12:00:00Z,20,CNY,B,app"""
    )
    first = loyalty.accrue(shop.ws)
    # u1: floor(99.9) = 99 points and growth, + 100 first-order growth; u2: 20 + 100
    assert (first.written, first.replayed, first.points, first.growth) == (4, 0, 119, 319)
    assert first.by_rule == {
        "first_order": {"rows": 2, "points": 0, "growth": 200, "limited": 0, "limited_points": 0},
        "spend": {"rows": 2, "points": 119, "growth": 119, "limited": 0, "limited_points": 0},
    }
    assert (shop.acct("u1").balance, shop.acct("u1").growth_value) == (99, 199)
    assert first.events_read == 3 and first.since is None and first.until == at(2, 0)
    before = shop.transactions()
    again = loyalty.accrue(shop.ws)
    assert (again.written, again.replayed, again.rows_planned) == (0, 0, 0)
    assert again.since == at(2, 0)
    # from the start again: every key is found, nothing is written
    replay = loyalty.accrue(shop.ws, since=datetime(2026, 1, 1, tzinfo=UTC))
    assert (replay.written, replay.replayed, replay.points) == (0, 4, 0)
    assert shop.transactions() == before == 4
    recorded = shop.runs()
    assert [(r.status, r.written, r.replayed, r.limited) for r in recorded] == [
        ("finished", 4, 0, 0),
        ("finished", 0, 0, 0),
        ("finished", 0, 4, 0),
    ]
    assert recorded[0].rows_planned == 4 and recorded[0].events_read == 3
    assert json.loads(recorded[0].details)["by_rule"]["spend"]["points"] == 119
    assert loyalty.check(shop.ws).ok


def test_since_and_as_of_select_the_rows_of_each_run(shop: Shop) -> None:
    shop.program()
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,10,CNY,A,web
           o2,u1,order,2026-03-03T10:00:00Z,20,CNY,B,web
           o3,u1,order,2026-03-05T10:00:00Z,40,CNY,C,web"""
    )
    shop.at(at(6))
    one = loyalty.accrue(shop.ws, as_of=datetime(2026, 3, 4, tzinfo=UTC))
    assert (one.written, one.points, one.events_read) == (2, 30, 2)
    two = loyalty.accrue(shop.ws)  # from Mar 4, where the first ended, to now
    assert (two.since, two.written, two.points) == (datetime(2026, 3, 4, tzinfo=UTC), 1, 40)
    three = loyalty.accrue(shop.ws, since=datetime(2026, 3, 3, tzinfo=UTC))
    assert (three.written, three.replayed) == (0, 2)  # o2 and o3 again
    assert shop.acct("u1").balance == 70
    with pytest.raises(ConfigError, match=r"as_of .* is after now"):
        loyalty.accrue(shop.ws, as_of=datetime(2026, 4, 1, tzinfo=UTC))


def test_dry_run_reports_what_a_run_writes_and_writes_nothing(shop: Shop) -> None:
    shop.program(points={"return_policy": "within_balance"})
    shop.events(
        """o1,u1,order,2026-03-01T10:00:00Z,100,CNY,A,web
           r1,u1,refund,2026-03-01T12:00:00Z,25,CNY,A,web"""
    )
    dry = loyalty.accrue(shop.ws, dry_run=True)
    assert dry.dry_run and dry.run_id is None
    assert (dry.written, dry.points, dry.growth) == (2, 75, 75)
    assert dry.by_rule["spend"]["rows"] == 2
    assert shop.transactions() == 0 and shop.runs() == []
    with shop.ws.state.read() as s:
        assert s.scalar(select(func.count()).select_from(LoyaltyAccount)) == 0
    real = loyalty.accrue(shop.ws)
    assert (real.written, real.points, real.growth, real.by_rule) == (
        dry.written,
        dry.points,
        dry.growth,
        dry.by_rule,
    )


def test_identities_merged_across_channels_earn_into_one_account(shop: Shop) -> None:
    shop.users(
        """user_id,loyalty_card
           shop-7,card-1
           app-3,card-1
           mp-9,card-1""".replace("           ", "")
    )
    shop.program(
        earning={
            "first_order": {"growth": 100},
            "orders": [
                {
                    "name": "spend",
                    "multipliers": [{"name": "mp", "factor": 1.1, "channels": ["mini_program"]}],
                }
            ],
        }
    )
    shop.events(
        """s1,shop-7,order,2026-03-01T10:00:00Z,100,CNY,A,offline_store
           a1,app-3,order,2026-03-01T11:00:00Z,50,CNY,B,app
           m1,mp-9,order,2026-03-01T12:00:00Z,20,CNY,C,mini_program
           x1,mp-9,refund,2026-03-01T13:00:00Z,40,CNY,A,mini_program"""
    )
    run = loyalty.accrue(shop.ws)
    # all three ids share a loyalty card: one customer, app-3 (the smallest id)
    # points: 100 + 50 + floor(20 × 1.1) = 172, minus the refunded 40 of A
    # growth: 100 + 50 + 20 + one first-order bonus 100, minus 40
    assert (run.points, run.growth) == (172 - 40, 270 - 40)
    acct = shop.acct("app-3")
    assert (acct.balance, acct.growth_value) == (132, 230)
    with shop.ws.state.read() as s:
        assert s.scalars(select(LoyaltyAccount.user_id)).all() == ["app-3"]
    assert loyalty.check(shop.ws).ok


def test_zero_value_orders_and_an_order_in_another_currency(shop: Shop) -> None:
    shop.program(earning={"orders": [{"name": "spend"}], "first_order": {"growth": 100}})
    shop.fx("date,currency,rate\n2026-02-27,USD,7.1")
    shop.events(
        """z1,u1,order,2026-03-01T09:00:00Z,0,CNY,Z,web
           z2,u3,order,2026-03-01T09:00:00Z,0,CNY,Y,web
           o1,u1,order,2026-03-01T10:00:00Z,30,CNY,A,web
           f1,u2,order,2026-03-01T10:00:00Z,10,USD,F,web
           f2,u2,refund,2026-03-01T11:00:00Z,5,USD,F,web"""
    )
    run = loyalty.accrue(shop.ws)
    # u1: the free order earns nothing and is not the first order; 30 CNY is
    assert (shop.acct("u1").balance, shop.acct("u1").growth_value) == (30, 130)
    # u2: 10 USD at 7.1 = 71 points; half refunded leaves 35.5 CNY → 35 (−36)
    assert (shop.acct("u2").balance, shop.acct("u2").growth_value) == (35, 135)
    assert run.points == 30 + 35
    with shop.ws.state.read() as s:  # the customer with only a free order has no account
        assert sorted(s.scalars(select(LoyaltyAccount.user_id))) == ["u1", "u2"]


def test_events_without_any_order(shop: Shop) -> None:
    shop.program(
        earning={
            "first_order": {"growth": 100},
            "behaviours": [
                {
                    "name": "review",
                    "event_type": "review",
                    "points": 10,
                    "growth": 5,
                    "cap": {"per": "month", "events": 2},
                }
            ],
        }
    )
    shop.events(
        """v1,u1,review,2026-03-01T10:00:00Z,,,,app
           v2,u1,review,2026-03-01T11:00:00Z,,,,app
           v3,u1,review,2026-03-01T12:00:00Z,,,,app
           w1,u2,visit,2026-03-01T12:00:00Z,,,,web"""
    )
    run = loyalty.accrue(shop.ws)
    assert (run.written, run.points, run.growth) == (2, 20, 10)  # the third is over the cap
    assert loyalty.accrue(shop.ws).written == 0


def test_a_program_must_be_applied_and_an_empty_warehouse_accrues_nothing(shop: Shop) -> None:
    with pytest.raises(ConfigError, match="no loyalty program 'default' has been applied"):
        loyalty.accrue(shop.ws)
    shop.program()
    run = loyalty.accrue(shop.ws)
    assert (run.events_read, run.written, run.rows_planned) == (0, 0, 0)
    assert shop.runs()[0].status == "finished"
