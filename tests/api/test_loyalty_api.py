"""``/v1/loyalty`` against the ledger of :mod:`liucun.loyalty`: what the API books is
what the library's account shows, replays book nothing, refusals are 409 sentences that
write nothing, and the program, its tiers and its coupons read as applied."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from resource_support import Api, problem, serve

from liucun import loyalty
from liucun.api.routers.loyalty import AccountPublic, CouponPublic, ProgramPublic, TiersPublic
from liucun.workspace import Workspace
from loyalty_shop import EXAMPLE
from state_backends import STATE_BACKENDS

ACCOUNT = "/v1/loyalty/accounts/u1"


@pytest.fixture
def api(api_ws: Workspace) -> Iterator[Api]:
    loyalty.apply_program(api_ws, EXAMPLE)
    with serve(api_ws) as served_api:
        yield served_api


def _write(api: Api, op: str, user: str = "u1", **body: Any) -> Any:
    return api.post(f"/v1/loyalty/accounts/{user}/{op}", "loyalty:write", json=body)


def _balance(api: Api, user: str = "u1") -> int:
    return loyalty.account(api.ws, user).balance


@pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)
def test_accrue_redeem_adjust_book_what_the_library_shows(api: Api) -> None:
    first = _write(api, "accrue", points=100, key="order-1:points", reason="order 1")
    assert first.status_code == 201, first.text
    assert first.json()["balance_after"] == 100 and first.json()["replayed"] is False
    again = _write(api, "accrue", points=100, key="order-1:points", reason="order 1")
    assert again.status_code == 201 and again.json()["replayed"] is True
    assert _balance(api) == 100
    spent = _write(api, "redeem", points=40, key="checkout-7")
    assert spent.status_code == 201, spent.text
    assert spent.json()["balance_after"] == 60 == _balance(api)
    fixed = _write(api, "adjust", points=-15, key="ticket-4411", reason="ticket 4411")
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["balance_after"] == 45 == _balance(api)
    assert loyalty.check(api.ws).ok
    acct = api.get(ACCOUNT).json()
    assert (acct["balance"], acct["posted"], acct["pending"]) == (45, 45, 0)
    kinds = [e.kind for e in loyalty.account(api.ws, "u1").entries]
    assert kinds == ["addition", "redemption", "adjustment"]


def test_refusals_are_409_sentences_and_write_nothing(api: Api) -> None:
    _write(api, "accrue", points=30, key="k1")
    before = loyalty.account(api.ws, "u1").version
    r = _write(api, "redeem", points=31, key="k2")
    problem(r, 409, "30 points available", "fewer than the 31")
    problem(_write(api, "redeem", user="nobody", points=1, key="k3"), 409, "no points")
    # a key already used for another write
    problem(_write(api, "accrue", points=31, key="k1"), 409)
    # below zero where the program forbids it
    problem(_write(api, "adjust", points=-31, key="k4", reason="test"), 409)
    assert loyalty.account(api.ws, "u1").version == before and _balance(api) == 30
    assert loyalty.check(api.ws).ok


def test_bad_bodies_are_422_naming_the_field(api: Api) -> None:
    cases = {
        "points": _write(api, "accrue", points=0, key="a"),
        "reason": _write(api, "adjust", points=5, key="b"),
        "colour": _write(api, "accrue", points=5, key="c", colour="red"),
        "key": _write(api, "accrue", points=5),
    }
    for field, r in cases.items():
        body = problem(r, 422)
        assert any(field in e["path"] for e in body["errors"]), (field, body)
    problem(_write(api, "adjust", points=0, key="d", reason="x"), 422)
    r = api.post(
        f"{ACCOUNT}/accrue",
        "loyalty:write",
        content=b'{"points": 5,',
        headers={"Content-Type": "application/json"},
    )
    problem(r, 400, "JSON")
    problem(_write(api, "accrue", user="x" * 10_000, points=5, key="e"), 422)
    assert loyalty.account(api.ws, "u1").version == 0


def test_the_idempotency_key_header_is_the_ledger_key(api: Api) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    path = f"{ACCOUNT}/accrue"
    one = api.post(path, "loyalty:write", json={"points": 25}, headers=headers)
    two = api.post(path, "loyalty:write", json={"points": 25}, headers=headers)
    assert one.status_code == two.status_code == 201
    assert two.headers.get("idempotent-replayed") == "true"
    assert one.json() == two.json()
    assert _balance(api) == 25
    entry = loyalty.account(api.ws, "u1").entries[0]
    assert entry.key.startswith("api:") and entry.key.endswith(":retry-me")
    other = api.post(path, "loyalty:write", json={"points": 26}, headers=headers)
    problem(other, 422, "Idempotency-Key")
    assert _balance(api) == 25


def test_account_shows_tier_pending_and_expiring_points(api: Api) -> None:
    now = api.ws.clock.now()
    soon, later = now + timedelta(days=30), now + timedelta(days=90)
    _write(api, "accrue", points=50, key="a1", expires_at=later.isoformat())
    _write(api, "accrue", points=20, key="a2", expires_at=soon.isoformat())
    _write(api, "accrue", points=7, key="a3", pending_days=14)
    loyalty.boost_tier(api.ws, "u1", tier="进阶", until=now + timedelta(days=60), key="boost")
    r = api.get(ACCOUNT)
    assert r.status_code == 200, r.text
    acct = r.json()
    AccountPublic.model_validate(acct)  # the reply is what the OpenAPI document says
    lib = loyalty.account(api.ws, "u1")
    assert acct["tier"] == lib.tier == "进阶"
    assert (acct["balance"], acct["pending"]) == (lib.balance, lib.pending) == (70, 7)
    assert [(e["points"], e["key"]) for e in acct["expiring"]] == [(20, "a2"), (50, "a1")]
    assert datetime.fromisoformat(acct["expiring"][0]["expires_at"]) == soon.astimezone(UTC)


def test_ledger_pages_are_the_entries_oldest_first(api: Api) -> None:
    for i in range(7):
        _write(api, "accrue", points=i + 1, key=f"order-{i}")
    pages = api.pages(f"{ACCOUNT}/ledger", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    got = [(e["key"], e["balance_after"]) for p in pages for e in p]
    lib = loyalty.account(api.ws, "u1").entries
    assert got == [(e.key, e.balance_after) for e in lib]
    assert got[-1] == ("order-6", 28)
    problem(api.get(f"{ACCOUNT}/ledger", params={"limit": 0}), 422)
    problem(api.get(f"{ACCOUNT}/ledger", params={"cursor": "!!"}), 422)


def test_unknown_customers_and_programs_are_404(api: Api) -> None:
    problem(api.get("/v1/loyalty/accounts/nobody"), 404, "'nobody'", "no account")
    problem(api.get("/v1/loyalty/accounts/nobody/ledger"), 404, "no account")
    problem(api.get("/v1/loyalty/programs/vip"), 404, "'vip'")
    problem(api.get("/v1/loyalty/programs/vip/tiers"), 404, "'vip'")
    _write(api, "accrue", points=5, key="x")
    problem(api.get(ACCOUNT, params={"program": "vip"}), 404, "'vip'")
    # the 404s wrote nothing: the only account is the one the accrual opened
    assert loyalty.account(api.ws, "nobody").entries == []
    assert [e.key for e in loyalty.account(api.ws, "u1").entries] == ["x"]


def test_program_and_tiers_as_applied(api: Api) -> None:
    prog = loyalty.active_program(api.ws)
    r = api.get("/v1/loyalty/programs/default")
    assert r.status_code == 200, r.text
    body = r.json()
    ProgramPublic.model_validate(body)
    assert body["version"] == 1 and [v["version"] for v in body["versions"]] == [1]
    assert [t["name"] for t in body["definition"]["tiers"]] == prog.tier_names()
    _write(api, "accrue", points=5, key="x")
    loyalty.boost_tier(
        api.ws, "u1", tier="尊享", until=api.ws.clock.now() + timedelta(days=9), key="b"
    )
    reply = api.get("/v1/loyalty/programs/default/tiers").json()
    tiers = TiersPublic.model_validate(reply).model_dump()["tiers"]
    want = loyalty.tier_distribution(api.ws).to_dict("records")
    assert [(t["tier"], t["members"], t["boosted"]) for t in tiers] == [
        (w["tier"], w["members"], w["boosted"]) for w in want
    ]
    assert [t["tier"] for t in tiers] == prog.tier_names()
    assert {t["tier"]: t["members"] for t in tiers}["尊享"] == 1
    assert tiers[0]["perks"] == ["birthday_coupon"]


def test_issue_coupon_respects_the_per_customer_limit(api: Api) -> None:
    path = "/v1/loyalty/coupons"
    body = {"coupon_id": "recall_10", "user_id": "u1", "key": "recall:u1"}
    first = api.post(path, "loyalty:write", json=body)
    assert first.status_code == 201, first.text
    code = CouponPublic.model_validate(first.json()).code
    assert [c.code for c in loyalty.list_coupons(api.ws, "u1")] == [code]
    assert api.post(path, "loyalty:write", json=body).json()["replayed"] is True
    second = api.post(path, "loyalty:write", json={**body, "key": "recall:u1:again"})
    problem(second, 409, "recall_10")
    problem(api.post(path, "loyalty:write", json={**body, "coupon_id": "nope"}), 404, "recall_10")
    assert len(loyalty.list_coupons(api.ws, "u1")) == 1


def test_a_write_to_a_program_never_applied_is_404(api: Api) -> None:
    problem(_write(api, "accrue", points=5, key="k", program="vipp"), 404, "'vipp'")
    assert loyalty.account(api.ws, "u1", "vipp").version == 0
