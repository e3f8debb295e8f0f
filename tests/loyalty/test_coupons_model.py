"""Random sequences of issue / redeem / expire / clock moves against a small model written
from the definitions (docs/loyalty.md, "Coupons and benefits"), on SQLite and PostgreSQL:
every call is accepted or refused exactly when the model says, with the same discount,
and ``coupon_check`` holds throughout."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from liucun.core import SimulatedClock
from liucun.loyalty._coupons import (
    CouponRefused,
    coupon_check,
    expire_coupons,
    issue_coupon,
    list_coupons,
    redeem_coupon,
)
from liucun.loyalty._program import parse_program
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # UTC program: periods are UTC months
PROGRAM = parse_program(
    {
        "name": "model",
        "currency": "EUR",
        "coupon_cap": {"amount": 40, "per": "month"},
        "coupons": [
            {"id": "v15", "kind": "value", "amount": 15, "min_order": 30, "validity_days": 5,
             "per_customer": 3, "budget": 120},
            {"id": "p20", "kind": "percent", "amount": 20, "validity_days": 10,
             "per_customer": None},
        ],
    }
)  # fmt: skip
DEF = {c.id: c for c in PROGRAM.coupons}


@dataclass
class Code:
    user: str
    coupon: str
    month: str
    until: datetime
    status: str = "issued"
    discount: float = 0.0


def committed(c: Code, now: datetime) -> float:
    if c.status == "redeemed":
        return c.discount
    if c.status == "issued" and DEF[c.coupon].kind == "value" and c.until > now:
        return DEF[c.coupon].amount
    return 0.0


def end_of_day(t: datetime, days: int) -> datetime:
    d = (t + timedelta(days=days)).date()
    if t.time() == datetime.min.time():
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_agree_with_the_model(ws: Workspace, seed: int) -> None:
    rng = random.Random(seed)
    model: dict[str, Code] = {}
    users = ["a", "b", "c"]
    accepted = refused = 0
    for step in range(300):
        now = ws.clock.now()
        roll = rng.random()
        if roll < 0.4:
            user, coupon = rng.choice(users), rng.choice(["v15", "p20"])
            d = DEF[coupon]
            mine = [c for c in model.values() if c.user == user]
            month = f"{now:%Y-%m}-01"
            value = d.amount if d.kind == "value" else 0.0
            used = sum(committed(c, now) for c in mine if c.month == month)
            spent = sum(committed(c, now) for c in model.values() if c.coupon == coupon)
            ok = (
                (d.per_customer is None or sum(c.coupon == coupon for c in mine) < d.per_customer)
                and used + value <= 40
                and not (value == 0 and used >= 40)
                and (d.budget is None or spent + value <= d.budget)
            )
            try:
                got = issue_coupon(ws, coupon, user, key=f"i{step}", program=PROGRAM)
            except CouponRefused:
                assert not ok, (step, "refused an issue the model accepts")
                refused += 1
            else:
                assert ok, (step, "accepted an issue the model refuses")
                assert got.valid_until == end_of_day(now, d.validity_days)
                model[got.code] = Code(user, coupon, month, got.valid_until)
                accepted += 1
        elif roll < 0.75 and model:
            code = rng.choice(sorted(model))
            c = model[code]
            d = DEF[c.coupon]
            value = float(rng.choice([20, 35, 80, 150]))
            discount = min(d.amount, value) if d.kind == "value" else round(value * 0.2, 2)
            others = [o for k, o in model.items() if k != code]
            used = sum(committed(o, now) for o in others if o.user == c.user and o.month == c.month)
            ok = (
                c.status == "issued"
                and now < c.until
                and value >= d.min_order
                and (d.kind == "value" or used + discount <= 40)
            )
            try:
                got = redeem_coupon(ws, code, order_id=f"o{step}", order_value=value,
                                    key=f"r{step}")  # fmt: skip
            except CouponRefused:
                assert not ok, (step, "refused a redemption the model accepts")
                refused += 1
            else:
                assert ok, (step, "accepted a redemption the model refuses")
                assert got.discount == discount
                c.status, c.discount = "redeemed", discount
                accepted += 1
        elif roll < 0.85:
            n = expire_coupons(ws, now)
            due = [c for c in model.values() if c.status == "issued" and c.until <= now]
            assert n == len(due)
            for c in due:
                c.status = "expired"
        else:
            ws.clock.advance(timedelta(hours=rng.choice([5, 30, 100, 300])))
        if step % 20 == 0:
            assert coupon_check(ws) == []
    assert coupon_check(ws) == []
    stored = {c.code: c.status for u in users for c in list_coupons(ws, u)}
    assert stored == {k: v.status for k, v in model.items()}
    assert accepted > 20 and refused > 5  # the sequence exercised both sides
