"""Referrals on SQLite and PostgreSQL: one stable, unguessable code per referrer;
refusals (unknown code, self-referral, referred before); both sides credited once, on the
referee's first order only (not a zero-value order, not an order placed before the
referral); no reward when the identity merge makes referrer and referee one person;
referrals picked up from events; replays idempotent. Rewards follow the program's
``referral`` section: the referrer 200 points and 50 growth, the referee a coupon."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from test_membership import program_file

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.loyalty import IdempotencyConflict, ReferralRefused
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 1, 4, tzinfo=UTC)
REFERRAL = {"referrer": {"points": 200, "growth": 50}, "referee": {"coupon": "welcome"}}


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def ws(tmp_path: Path, state_url: str, clock: SimulatedClock) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as w:
        loyalty.apply_program(w, program_file(tmp_path, referral=REFERRAL))
        yield w


def load_orders(
    ws: Workspace,
    rows: list[tuple[str, str, datetime, float, str | None]],
    event_type: str = "order",
) -> None:
    """Order (or other) events: (event_id, user_id, ts, revenue, referral_code)."""
    ingest_tables(
        ws.warehouse,
        events=pa.table(
            {
                "event_id": [r[0] for r in rows],
                "user_id": [r[1] for r in rows],
                "event_type": [event_type] * len(rows),
                "ts": pa.array([r[2] for r in rows], type=pa.timestamp("us", tz="UTC")),
                "revenue": [r[3] for r in rows],
                "currency": ["CNY"] * len(rows),
                "referral_code": pa.array([r[4] for r in rows], type=pa.string()),
            }
        ),
        options=IngestOptions(clock=ws.clock),
    )


def load_users(ws: Workspace, emails: dict[str, str]) -> None:
    ingest_tables(
        ws.warehouse,
        users=pa.table({"user_id": list(emails), "email": list(emails.values())}),
        options=IngestOptions(hash_key=ws.hash_key, clock=ws.clock),
    )


def test_one_stable_unguessable_code_per_referrer(ws: Workspace) -> None:
    a = loyalty.referral_code(ws, "alice")
    again = loyalty.referral_code(ws, "alice")
    b = loyalty.referral_code(ws, "bob")
    assert a.created and not again.created and again.code == a.code
    assert b.code != a.code
    assert len(a.code.replace("-", "")) == 16  # 16 × log2(31) ≈ 79 random bits


def test_refusals_are_sentences_and_write_nothing(ws: Workspace) -> None:
    code = loyalty.referral_code(ws, "alice").code
    with pytest.raises(ReferralRefused, match="own referral code"):
        loyalty.refer(ws, code, "alice", key="r0")
    with pytest.raises(ReferralRefused, match="is not a referral code"):
        loyalty.refer(ws, "NOPE-NOPE", "bob", key="r1")
    first = loyalty.refer(ws, code.lower(), "bob", key="r2")  # codes are case-insensitive
    assert (first.status, first.referrer_id, first.code) == ("pending", "alice", code)
    other = loyalty.referral_code(ws, "carol").code
    with pytest.raises(ReferralRefused, match=r"already referred by 'alice'"):
        loyalty.refer(ws, other, "bob", key="r3")
    assert [r.key for r in loyalty.referrals(ws)] == ["r2"]


def test_replaying_refer_returns_the_first_result(ws: Workspace) -> None:
    code = loyalty.referral_code(ws, "alice").code
    first = loyalty.refer(ws, code, "bob", key="r1")
    again = loyalty.refer(ws, code, "bob", key="r1")
    assert again.replayed and again.referred_at == first.referred_at
    with pytest.raises(IdempotencyConflict, match="r1"):
        loyalty.refer(ws, code, "dan", key="r1")


def test_the_first_order_credits_both_sides_once(ws: Workspace, clock: SimulatedClock) -> None:
    code = loyalty.referral_code(ws, "alice").code
    loyalty.refer(ws, code, "bob", key="ref-bob")
    loyalty.refer(ws, code, "dave", key="ref-dave")
    clock.set(T0 + timedelta(days=10))
    load_orders(
        ws,
        [
            ("o1", "bob", T0 + timedelta(days=2), 120.0, None),
            ("o2", "bob", T0 + timedelta(days=5), 80.0, None),
            ("o3", "dave", T0 + timedelta(days=3), 0.0, None),  # zero value: not a first order
        ],
    )
    result = loyalty.credit_referrals(ws)
    assert [(r.referee_id, r.first_order_event_id) for r in result.credited] == [("bob", "o1")]
    assert (result.refused, result.pending) == ((), 1)
    alice = loyalty.account(ws, "alice")
    assert (alice.balance, alice.growth_value, len(alice.entries)) == (200, 50, 1)
    assert [c.coupon_id for c in loyalty.list_coupons(ws, "bob")] == ["welcome"]
    assert loyalty.account(ws, "bob").balance == 0  # the referee's reward is the coupon
    # a second run credits nothing; dave's first real order then credits alice again
    again = loyalty.credit_referrals(ws)
    assert (again.credited, again.pending) == ((), 1)
    load_orders(ws, [("o4", "dave", T0 + timedelta(days=6), 59.0, None)])
    third = loyalty.credit_referrals(ws)
    assert [(r.referee_id, r.first_order_event_id) for r in third.credited] == [("dave", "o4")]
    assert loyalty.account(ws, "alice").balance == 400
    assert [r.status for r in loyalty.referrals(ws)] == ["credited", "credited"]
    assert loyalty.check(ws).ok


def test_a_referee_who_ordered_before_the_referral_earns_nothing(
    ws: Workspace, clock: SimulatedClock
) -> None:
    clock.set(T0 + timedelta(days=5))
    load_orders(ws, [("o1", "bob", T0 + timedelta(days=1), 50.0, None)])
    code = loyalty.referral_code(ws, "alice").code
    loyalty.refer(ws, code, "bob", key="ref-bob")  # referred on day 5, after the order
    load_orders(ws, [("o2", "bob", T0 + timedelta(days=5, hours=1), 50.0, None)])
    clock.set(T0 + timedelta(days=6))
    result = loyalty.credit_referrals(ws)
    assert [r.referee_id for r in result.refused] == ["bob"]
    assert "not a new customer" in (result.refused[0].reason or "")
    assert loyalty.account(ws, "alice").balance == 0


def test_no_reward_when_the_identity_merge_shows_one_person(
    ws: Workspace, clock: SimulatedClock
) -> None:
    code = loyalty.referral_code(ws, "eve").code
    loyalty.refer(ws, code, "eve2", key="ref-eve2")  # another id, so refer() accepts it
    loyalty.refer(ws, code, "frank", key="ref-frank")
    clock.set(T0 + timedelta(days=3))
    # eve2 signed up with eve's e-mail (trimmed and lower-cased, it hashes the same):
    # the identity merge makes them one customer, canonical 'eve'
    load_users(ws, {"eve": "eve@x.cn", "eve2": " Eve@X.cn", "frank": "frank@x.cn"})
    load_orders(
        ws,
        [
            ("o1", "eve2", T0 + timedelta(days=1), 99.0, None),
            ("o2", "frank", T0 + timedelta(days=1), 99.0, None),
        ],
    )
    result = loyalty.credit_referrals(ws)
    assert [r.referee_id for r in result.refused] == ["eve2"]
    assert "same customer (both resolve to 'eve')" in (result.refused[0].reason or "")
    assert [r.referee_id for r in result.credited] == ["frank"]
    assert loyalty.account(ws, "eve").balance == 200  # for frank only
    assert {r.referee_id: r.status for r in loyalty.referrals(ws)} == {
        "eve2": "refused",
        "frank": "credited",
    }


def test_referrals_are_picked_up_from_events(ws: Workspace, clock: SimulatedClock) -> None:
    code = loyalty.referral_code(ws, "alice").code
    clock.set(T0 + timedelta(days=2))
    load_orders(
        ws,
        [
            ("s1", "gina", T0 + timedelta(hours=1), 0.0, code.lower()),
            ("s2", "hank", T0 + timedelta(hours=2), 0.0, "SHOP-CAMPAIGN-CODE"),
            ("s3", "alice", T0 + timedelta(hours=3), 0.0, code),  # her own code: ignored
        ],
        event_type="signup",
    )
    # ivan's first order carries the code itself: referred and credited at once
    load_orders(ws, [("o1", "ivan", T0 + timedelta(days=1), 66.0, code)])
    result = loyalty.credit_referrals(ws)
    assert (result.picked_up, result.unknown_codes) == (2, 1)
    assert [r.referee_id for r in result.credited] == ["ivan"]
    assert result.pending == 1  # gina has not ordered
    assert {r.referee_id: r.key for r in loyalty.referrals(ws)} == {
        "gina": "referral-event:s1",
        "ivan": "referral-event:o1",
    }
    again = loyalty.credit_referrals(ws)
    assert (again.picked_up, again.credited, again.pending) == (0, (), 1)
    assert loyalty.account(ws, "alice").balance == 200


def test_nothing_to_credit_in_an_empty_workspace(ws: Workspace) -> None:
    result = loyalty.credit_referrals(ws)
    assert (result.picked_up, result.credited, result.refused, result.pending) == (0, (), (), 0)


def test_one_customer_referred_under_two_merged_ids_is_rewarded_once(
    ws: Workspace, clock: SimulatedClock
) -> None:
    alice = loyalty.referral_code(ws, "alice").code
    carol = loyalty.referral_code(ws, "carol").code
    loyalty.refer(ws, alice, "u2b", key="ref-u2b")
    clock.set(T0 + timedelta(days=3))
    # u2 and u2b share an e-mail: one customer, canonical 'u2'; u2's first order carries
    # carol's code, so the event records a second referral under the other id
    load_users(ws, {"u2": "u2@x.cn", "u2b": "u2@x.cn"})
    load_orders(ws, [("o1", "u2", T0 + timedelta(days=1), 70.0, carol)])
    result = loyalty.credit_referrals(ws)
    assert result.picked_up == 1
    assert [(r.referee_id, r.referrer_id) for r in result.credited] == [("u2b", "alice")]
    assert [r.referee_id for r in result.refused] == ["u2"]
    assert "already rewarded as 'u2b'" in (result.refused[0].reason or "")
    assert (loyalty.account(ws, "alice").balance, loyalty.account(ws, "carol").balance) == (200, 0)
    # the referee's coupon went to the canonical customer, once
    assert [c.coupon_id for c in loyalty.list_coupons(ws, "u2")] == ["welcome"]
