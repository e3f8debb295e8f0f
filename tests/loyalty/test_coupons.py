"""Coupons and benefits on SQLite and PostgreSQL: issuance (unique codes, validity,
idempotency, per-customer counts, the value cap per period, budgets), redemption (minimum
order, categories, validity window, single use, the cost booked), expiry, benefits bought
with points through the ledger, dynamic rights, and ``coupon_check`` finding corrupted
rows. Expected figures are worked out by hand from the program's definitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from liucun import loyalty
from liucun.core import ConfigError, SimulatedClock
from liucun.loyalty._coupons import (
    BenefitRefused,
    BudgetExhausted,
    CouponLimitReached,
    CouponNotEligible,
    CouponNotRedeemable,
    benefits_for,
    coupon_check,
    coupon_summary,
    eligible_benefits,
    eligible_coupons,
    expire_coupons,
    issue_coupon,
    list_coupons,
    redeem_benefit,
    redeem_coupon,
)
from liucun.loyalty._program import Program, parse_program
from liucun.state import BenefitGrant, CouponCode, CouponRedemption
from liucun.workspace import Workspace, init_workspace

# 09:00 UTC = 17:00 in Asia/Shanghai, 1 March 2026
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"


def program(**changes: Any) -> Program:
    data: dict[str, Any] = {
        "name": "shop",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "coupons": [
            {
                "id": "ten_off",
                "kind": "value",
                "amount": 10,
                "min_order": 59,
                "validity_days": 14,
                "per_customer": 1,
            },
            {"id": "pct", "kind": "percent", "amount": 15, "validity_days": 30, "per_customer": 5},
            {
                "id": "shoes",
                "kind": "value",
                "amount": 20,
                "categories": ["shoes"],
                "per_customer": None,
            },
            {"id": "big", "kind": "value", "amount": 150, "per_customer": None},
        ],
        "benefits": [
            {
                "id": "shipping_upgrade",
                "description": "Express shipping",
                "points_cost": 300,
                "per_customer": 2,
                "period": "month",
            },
        ],
    }
    data.update(changes)
    return parse_program(data)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def count(ws: Workspace, model: Any) -> int:
    with ws.state.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def rows(ws: Workspace) -> tuple[int, int, int]:
    return count(ws, CouponCode), count(ws, CouponRedemption), count(ws, BenefitGrant)


# -- issuance -----------------------------------------------------------------------------


def test_issue_gives_a_unique_code_valid_to_the_end_of_the_last_local_day(ws: Workspace) -> None:
    p = program()
    a = issue_coupon(ws, "ten_off", "u1", key="k1", program=p)
    b = issue_coupon(ws, "ten_off", "u2", key="k2", program=p)
    assert a.code != b.code and len(a.code.replace("-", "")) == 16
    assert (a.kind, a.amount, a.min_order, a.currency, a.status) == (
        "value",
        10,
        59,
        "CNY",
        "issued",
    )
    assert a.valid_from == T0
    # issued 1 March 17:00 Shanghai + 14 days = 15 March 17:00, to the end of that local
    # day = 16 March 00:00 Shanghai = 15 March 16:00 UTC
    assert a.valid_until == datetime(2026, 3, 15, 16, tzinfo=UTC)
    assert [c.code for c in list_coupons(ws, "u1")] == [a.code]


def test_a_code_that_collides_is_drawn_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liucun.loyalty._coupons as coupons

    draws = iter(["AAAA-AAAA-AAAA-AAAA", "AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB"])
    monkeypatch.setattr(coupons, "_new_code", lambda: next(draws))
    p = program()
    assert issue_coupon(ws, "pct", "u1", key="k1", program=p).code == "AAAA-AAAA-AAAA-AAAA"
    assert issue_coupon(ws, "pct", "u2", key="k2", program=p).code == "BBBB-BBBB-BBBB-BBBB"
    assert rows(ws) == (2, 0, 0)


def test_a_replayed_issue_returns_the_same_code_and_other_arguments_are_refused(
    ws: Workspace,
) -> None:
    p = program()
    first = issue_coupon(ws, "pct", "u1", key="k1", program=p)
    ws.clock.advance(timedelta(hours=2))
    again = issue_coupon(ws, "pct", "u1", key="k1", program=p)
    assert again.replayed and again.code == first.code and again.valid_from == T0
    assert rows(ws) == (1, 0, 0)
    with pytest.raises(loyalty.IdempotencyConflict, match=r"'k1'.*user_id \('u1' then, 'u2'"):
        issue_coupon(ws, "pct", "u2", key="k1", program=p)
    assert rows(ws) == (1, 0, 0)


def test_per_customer_count_is_refused_with_a_sentence(ws: Workspace) -> None:
    p = program()
    issue_coupon(ws, "ten_off", "u1", key="k1", program=p)
    with pytest.raises(CouponLimitReached, match=r"already holds 1 code.*per_customer limit of 1"):
        issue_coupon(ws, "ten_off", "u1", key="k2", program=p)
    assert rows(ws) == (1, 0, 0)
    issue_coupon(ws, "ten_off", "u2", key="k3", program=p)  # another customer may


def test_the_value_cap_per_month_counts_reserved_and_booked_value(ws: Workspace) -> None:
    p = program(coupon_cap={"amount": 200, "per": "month"})
    issue_coupon(ws, "big", "u1", key="a", program=p)  # 150 reserved
    issue_coupon(ws, "shoes", "u1", key="b", program=p)  # 170
    issue_coupon(ws, "shoes", "u1", key="c", program=p)  # 190
    with pytest.raises(CouponLimitReached, match=r"190.00 CNY.*coupon_cap of 200.00 CNY"):
        issue_coupon(ws, "shoes", "u1", key="d", program=p)  # 210 > 200
    issue_coupon(ws, "shoes", "u2", key="e", program=p)  # the cap is per customer
    # the next local month (1 April Shanghai) starts a new period
    ws.clock.advance(timedelta(days=31))
    issue_coupon(ws, "shoes", "u1", key="f", program=p)
    assert len(list_coupons(ws, "u1")) == 4


def test_a_coupon_budget_releases_value_when_codes_expire(ws: Workspace) -> None:
    p = program(
        coupons=[
            {
                "id": "v",
                "kind": "value",
                "amount": 10,
                "validity_days": 1,
                "per_customer": None,
                "budget": 25,
            }
        ]
    )
    issue_coupon(ws, "v", "u1", key="a", program=p)
    issue_coupon(ws, "v", "u2", key="b", program=p)
    with pytest.raises(BudgetExhausted, match=r"coupon 'v''s budget of 25.00 CNY has 5.00 CNY"):
        issue_coupon(ws, "v", "u3", key="c", program=p)
    ws.clock.advance(timedelta(days=3))  # both codes are past their validity
    issue_coupon(ws, "v", "u3", key="c", program=p)
    assert count(ws, CouponCode) == 3


def test_the_program_wide_budget_counts_every_coupon(ws: Workspace) -> None:
    base = program()
    p = Program.model_validate({**base.model_dump(), "coupon_budget": 165})
    issue_coupon(ws, "big", "u1", key="a", program=p)  # 150
    issue_coupon(ws, "ten_off", "u1", key="b", program=p)  # 160
    with pytest.raises(BudgetExhausted, match=r"coupon budget of 165.00 CNY has 5.00 CNY left"):
        issue_coupon(ws, "ten_off", "u2", key="c", program=p)
    assert coupon_check(ws) == []


def test_an_unknown_coupon_names_the_known_ones(ws: Workspace) -> None:
    with pytest.raises(loyalty.LedgerError, match=r"no coupon 'nope'.*'big'"):
        issue_coupon(ws, "nope", "u1", key="a", program=program())


# -- redemption ---------------------------------------------------------------------------


def test_a_value_coupon_books_its_amount_and_a_second_redemption_is_refused(
    ws: Workspace,
) -> None:
    c = issue_coupon(ws, "ten_off", "u1", key="i", program=program())
    ws.clock.advance(timedelta(days=2))
    r = redeem_coupon(ws, c.code, order_id="o1", order_value=80.0, key="r1")
    assert (r.discount, r.currency, r.order_id, r.redeemed_at) == (
        10.0,
        "CNY",
        "o1",
        T0 + timedelta(days=2),
    )
    assert redeem_coupon(ws, c.code, order_id="o1", order_value=80.0, key="r1").replayed
    with pytest.raises(CouponNotRedeemable, match=r"already redeemed on order o1.*single-use"):
        redeem_coupon(ws, c.code, order_id="o2", order_value=90.0, key="r2")
    with pytest.raises(loyalty.IdempotencyConflict, match=r"order_value"):
        redeem_coupon(ws, c.code, order_id="o1", order_value=81.0, key="r1")
    assert rows(ws) == (1, 1, 0)
    assert list_coupons(ws, "u1")[0].status == "redeemed"
    assert coupon_check(ws) == []


def test_a_percent_coupon_books_its_share_of_the_order(ws: Workspace) -> None:
    c = issue_coupon(ws, "pct", "u1", key="i", program=program())
    r = redeem_coupon(ws, c.code.lower(), order_id="o1", order_value=123.45, key="r")
    assert r.discount == 18.52  # 15 % of 123.45 = 18.5175


def test_redemption_rules_minimum_category_window_holder(ws: Workspace) -> None:
    p = program()
    ten = issue_coupon(ws, "ten_off", "u1", key="a", program=p)
    shoes = issue_coupon(ws, "shoes", "u1", key="b", program=p)
    with pytest.raises(CouponNotRedeemable, match=r"58.99 CNY, below .* minimum order of 59.00"):
        redeem_coupon(ws, ten.code, order_id="o1", order_value=58.99, key="r1")
    with pytest.raises(CouponNotRedeemable, match=r"only to categories \['shoes'\].*\['bags'\]"):
        redeem_coupon(ws, shoes.code, order_id="o2", order_value=50, key="r2", categories=["bags"])
    with pytest.raises(CouponNotRedeemable, match=r"pass the categories"):
        redeem_coupon(ws, shoes.code, order_id="o2", order_value=50, key="r2")
    with pytest.raises(CouponNotRedeemable, match=r"issued to user 'u1', not to 'u9'"):
        redeem_coupon(ws, ten.code, order_id="o3", order_value=60, key="r3", user_id="u9")
    with pytest.raises(CouponNotRedeemable, match=r"valid only from"):
        redeem_coupon(
            ws, ten.code, order_id="o4", order_value=60, key="r4", at=T0 - timedelta(minutes=1)
        )
    with pytest.raises(CouponNotRedeemable, match=r"no coupon code 'ZZZZ'"):
        redeem_coupon(ws, "ZZZZ", order_id="o5", order_value=60, key="r5")
    assert rows(ws) == (2, 0, 0)
    # the last instant of validity still counts; the end itself does not
    ws.clock.set(ten.valid_until)
    with pytest.raises(CouponNotRedeemable, match=r"expired at 2026-03-15T16:00:00"):
        redeem_coupon(ws, ten.code, order_id="o6", order_value=60, key="r6")
    r = redeem_coupon(
        ws,
        ten.code,
        order_id="o6",
        order_value=60,
        key="r7",
        at=ten.valid_until - timedelta(seconds=1),
    )
    assert r.discount == 10.0
    r = redeem_coupon(
        ws, shoes.code, order_id="o7", order_value=12.5, key="r8", categories=["shoes", "bags"]
    )
    assert r.discount == 12.5  # a value coupon never takes more than the order is worth


def test_expire_marks_unredeemed_past_validity_codes_once(ws: Workspace) -> None:
    p = program()
    a = issue_coupon(ws, "ten_off", "u1", key="a", program=p)  # until 15 March 16:00 UTC
    b = issue_coupon(ws, "pct", "u1", key="b", program=p)  # until 31 March 16:00 UTC
    c = issue_coupon(ws, "ten_off", "u2", key="c", program=p)
    redeem_coupon(ws, c.code, order_id="o", order_value=60, key="r")
    ws.clock.advance(timedelta(days=20))
    assert expire_coupons(ws, ws.clock.now()) == 1
    assert expire_coupons(ws, ws.clock.now()) == 0
    status = {x.code: x.status for x in list_coupons(ws, "u1") + list_coupons(ws, "u2")}
    assert status == {a.code: "expired", b.code: "issued", c.code: "redeemed"}
    with pytest.raises(CouponNotRedeemable, match="expired"):
        redeem_coupon(
            ws, a.code, order_id="o2", order_value=60, key="r2", at=T0 + timedelta(days=1)
        )
    with pytest.raises(ConfigError, match="ahead of time"):
        expire_coupons(ws, ws.clock.now() + timedelta(days=1))
    assert coupon_check(ws) == []


def test_a_percent_discount_that_would_break_the_cap_is_refused(ws: Workspace) -> None:
    p = program(coupon_cap={"amount": 200, "per": "month"})
    issue_coupon(ws, "big", "u1", key="a", program=p)  # 150 reserved
    c = issue_coupon(ws, "pct", "u1", key="b", program=p)
    with pytest.raises(CouponLimitReached, match=r"to 225.00 CNY.*over the cap of 200.00 CNY"):
        redeem_coupon(ws, c.code, order_id="o", order_value=500, key="r")  # 75 → 225
    assert redeem_coupon(ws, c.code, order_id="o", order_value=300, key="r2").discount == 45
    assert coupon_check(ws) == []


def test_the_summary_counts_codes_rates_and_booked_cost(ws: Workspace) -> None:
    p = program()
    a = issue_coupon(ws, "pct", "u1", key="a", program=p)
    b = issue_coupon(ws, "pct", "u2", key="b", program=p)
    issue_coupon(ws, "pct", "u3", key="c", program=p)
    t = issue_coupon(ws, "ten_off", "u1", key="d", program=p)
    redeem_coupon(ws, a.code, order_id="o1", order_value=100, key="r1")  # 15.00
    redeem_coupon(ws, b.code, order_id="o2", order_value=33.3, key="r2")  # 4.995 -> 5.00
    ws.clock.advance(timedelta(days=20))
    expire_coupons(ws, ws.clock.now())  # ten_off (14 days) expires, pct (30) does not
    assert t.valid_until < ws.clock.now()
    assert coupon_summary(ws) == [
        {"program": "shop", "coupon_id": "pct", "issued": 3, "redeemed": 2, "expired": 0,
         "open": 1, "redemption_rate": 2 / 3, "cost": 20.0, "currency": "CNY"},
        {"program": "shop", "coupon_id": "ten_off", "issued": 1, "redeemed": 0, "expired": 1,
         "open": 0, "redemption_rate": 0.0, "cost": 0.0, "currency": "CNY"},
    ]  # fmt: skip


# -- benefits -----------------------------------------------------------------------------


def test_a_benefit_takes_points_through_the_ledger_with_a_monthly_limit(ws: Workspace) -> None:
    p = program()
    loyalty.award(ws, "u1", 1000, key="earn")
    g = redeem_benefit(ws, "u1", "shipping_upgrade", key="b1", program=p)
    assert (g.points, g.balance_after, g.ledger_key) == (300, 700, "benefit:b1")
    assert redeem_benefit(ws, "u1", "shipping_upgrade", key="b1", program=p).replayed
    redeem_benefit(ws, "u1", "shipping_upgrade", key="b2", program=p)
    with pytest.raises(BenefitRefused, match=r"2 time\(s\) in the month starting 2026-03-01"):
        redeem_benefit(ws, "u1", "shipping_upgrade", key="b3", program=p)
    acct = loyalty.account(ws, "u1")
    assert acct.balance == 400
    assert [e.kind for e in acct.entries] == ["addition", "redemption", "redemption"]
    ws.clock.advance(timedelta(days=31))  # April in Shanghai
    redeem_benefit(ws, "u1", "shipping_upgrade", key="b3", program=p)
    with pytest.raises(loyalty.InsufficientPoints, match=r"100 points available.*300"):
        redeem_benefit(ws, "u1", "shipping_upgrade", key="b4", program=p)
    assert count(ws, BenefitGrant) == 3
    assert loyalty.check(ws).ok and coupon_check(ws) == []


def test_a_benefit_without_points_cost_is_not_for_sale(ws: Workspace) -> None:
    p = program(benefits=[{"id": "vip", "description": "VIP", "unlock": "orders >= 3"}])
    with pytest.raises(BenefitRefused, match="not for points"):
        redeem_benefit(ws, "u1", "vip", key="k", program=p)


def test_benefits_unlocked_by_tier_filter_and_points_with_hidden_flagged(ws: Workspace) -> None:
    p = loyalty.load_program(EXAMPLE)
    low = benefits_for(p, {"social_actions": 1}, tier="基础")
    assert [(r.benefit_id, r.hidden) for r in low] == [("shipping_upgrade", False)]
    mid = benefits_for(p, {"social_actions": 7}, tier="进阶")
    assert [(r.benefit_id, r.hidden) for r in mid] == [
        ("shipping_upgrade", False),
        ("free_shipping", False),
        ("early_access", True),
    ]
    top = {r.benefit_id for r in benefits_for(p, {"social_actions": None}, tier="尊享")}
    assert top == {"shipping_upgrade", "free_shipping", "early_access"}
    loyalty.award(ws, "u1", 50, key="e")
    got = eligible_benefits(ws, "u1", profile={"tier": "进阶", "social_actions": 0}, program=p)
    assert [r.benefit_id for r in got] == ["shipping_upgrade", "free_shipping"]


def test_a_refused_benefit_writes_nothing_in_either_ledger(ws: Workspace) -> None:
    p = program()
    loyalty.award(ws, "u1", 299, key="earn")
    before = loyalty.account(ws, "u1")
    with pytest.raises(loyalty.InsufficientPoints, match=r"299 points available.*300"):
        redeem_benefit(ws, "u1", "shipping_upgrade", key="b1", program=p)
    with pytest.raises(loyalty.InsufficientPoints, match=r"no account yet"):
        redeem_benefit(ws, "u2", "shipping_upgrade", key="b2", program=p)
    after = loyalty.account(ws, "u1")
    assert (after.balance, after.version, len(after.entries)) == (299, before.version, 1)
    assert count(ws, BenefitGrant) == 0 and loyalty.check(ws).ok


def test_a_benefit_budget_counts_points_at_their_value(ws: Workspace) -> None:
    # point_value 0.01 CNY: 300 points are worth 3 CNY; a budget of 7 CNY pays for two
    p = program(
        points={"point_value": 0.01},
        benefits=[{"id": "ship", "description": "x", "points_cost": 300, "budget": 7}],
    )
    for u in ("u1", "u2", "u3"):
        loyalty.award(ws, u, 1000, key=f"earn-{u}")
    assert redeem_benefit(ws, "u1", "ship", key="a", program=p).value == 3.0
    redeem_benefit(ws, "u2", "ship", key="b", program=p)
    with pytest.raises(BudgetExhausted, match=r"benefit 'ship''s budget of 7.00 CNY has 1.00"):
        redeem_benefit(ws, "u3", "ship", key="c", program=p)
    assert loyalty.account(ws, "u3").balance == 1000
    assert coupon_check(ws) == []


def test_a_coupon_unlocked_by_behaviour_needs_a_passing_profile(ws: Workspace) -> None:
    p = loyalty.load_program(EXAMPLE)
    loyal = {"orders": 5, "days_since_last": 12.0}
    lapsed = {"orders": 5, "days_since_last": 45.0}
    assert "frequent_buyer" in eligible_coupons(p, loyal)
    assert "frequent_buyer" not in eligible_coupons(p, lapsed)
    assert "frequent_buyer" not in eligible_coupons(p, {})  # unknown fields are null
    with pytest.raises(CouponNotEligible, match=r"'frequent_buyer''s unlock filter"):
        issue_coupon(ws, "frequent_buyer", "u1", key="a", program=p, profile=lapsed)
    issued = issue_coupon(ws, "frequent_buyer", "u1", key="b", program=p, profile=loyal)
    assert (issued.kind, issued.amount, issued.min_order) == ("percent", 8.0, 99.0)


# -- check --------------------------------------------------------------------------------


def test_check_finds_corrupted_redemptions_statuses_and_counts(ws: Workspace) -> None:
    p = program()
    a = issue_coupon(ws, "pct", "u1", key="a", program=p)
    b = issue_coupon(ws, "pct", "u1", key="b", program=p)
    redeem_coupon(ws, a.code, order_id="o1", order_value=100, key="r1")
    redeem_coupon(ws, b.code, order_id="o2", order_value=100, key="r2")
    assert coupon_check(ws) == []
    with ws.state.write() as s:
        # corrupt: the second redemption moved to the first code, the first one back in time
        s.execute(
            update(CouponRedemption)
            .where(CouponRedemption.key == "r1")
            .values(redeemed_at=T0 - timedelta(days=1))
        )
        ids = dict(s.execute(select(CouponCode.code, CouponCode.id)).all())
    found = coupon_check(ws)
    assert any("outside its validity" in v and a.code in v for v in found), found
    with ws.state.write() as s:
        s.execute(update(CouponCode).where(CouponCode.id == ids[b.code]).values(status="issued"))
        s.execute(update(CouponCode).where(CouponCode.id == ids[b.code]).values(per_customer=1))
    found = coupon_check(ws)
    assert any(f"{b.code} has a redemption but its status is 'issued'" in v for v in found)
    assert any(
        "holds 2 codes of coupon 'pct', over its per_customer limit of 1" in v for v in found
    ), found


def test_check_finds_grants_without_their_ledger_redemption_and_budget_overruns(
    ws: Workspace,
) -> None:
    p = program(coupons=[{"id": "v", "kind": "value", "amount": 10, "per_customer": None,
                          "budget": 20}])  # fmt: skip
    loyalty.award(ws, "u1", 1000, key="earn")
    redeem_benefit(ws, "u1", "shipping_upgrade", key="b1", program=p)
    issue_coupon(ws, "v", "u1", key="a", program=p)
    issue_coupon(ws, "v", "u2", key="b", program=p)
    assert coupon_check(ws) == []
    with ws.state.write() as s:
        s.execute(update(BenefitGrant).values(points=200))  # no longer what the ledger took
        s.execute(update(CouponCode).where(CouponCode.key == "b").values(amount=15.0))
    found = coupon_check(ws)
    assert any("benefit grant 'b1'" in v and "no matching ledger redemption" in v for v in found), (
        found
    )
    assert any("coupon 'v' has committed 25 CNY, over its budget of 20" in v for v in found), found
