"""The points ledger on SQLite and PostgreSQL: idempotency, refusals that write nothing,
FIFO by expiry, pending points, expiry, reversals, growth value, policies, and ``check``
finding a corrupted row. Expected figures are worked out by hand from the definitions in
docs/loyalty.md, never read back from the implementation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from liucun import loyalty
from liucun.core import ConfigError, SimulatedClock
from liucun.state import LoyaltyAccount, LoyaltyEntry, LoyaltyLot, LoyaltyTransaction
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def rows(ws: Workspace) -> dict[str, int]:
    """Rows in every ledger table: a refused or replayed call must leave them unchanged."""
    with ws.state.read() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (LoyaltyAccount, LoyaltyTransaction, LoyaltyLot, LoyaltyEntry)
        }


def lots_by_key(ws: Workspace, user: str) -> dict[str, int]:
    return {lot.key: lot.remaining for lot in loyalty.account(ws, user).lots}


# -- idempotency --------------------------------------------------------------------------


def test_a_replayed_key_returns_the_first_result_and_writes_nothing(ws: Workspace) -> None:
    first = loyalty.award(ws, "u1", 100, key="order-1:points", reason="order 1")
    before = rows(ws)
    ws.clock.advance(timedelta(hours=1))
    again = loyalty.award(ws, "u1", 100, key="order-1:points", reason="order 1")
    assert (
        rows(ws)
        == before
        == {
            "loyalty_accounts": 1,
            "loyalty_transactions": 1,
            "loyalty_lots": 1,
            "loyalty_entries": 2,  # the member's leg and the program's 'issued' leg
        }
    )
    assert not first.replayed and again.replayed
    assert (again.key, again.points, again.balance_after, again.created_at) == (
        "order-1:points",
        100,
        100,
        T0,
    )
    assert loyalty.account(ws, "u1").balance == 100
    redeemed = loyalty.redeem(ws, "u1", 30, key="checkout-1")
    assert loyalty.redeem(ws, "u1", 30, key="checkout-1") == (
        type(redeemed)(**{**redeemed.__dict__, "replayed": True})
    )
    assert loyalty.account(ws, "u1").balance == 70


def test_a_reused_key_with_other_arguments_is_refused_naming_key_and_difference(
    ws: Workspace,
) -> None:
    loyalty.award(ws, "u1", 100, key="order-1:points")
    before = rows(ws)
    with pytest.raises(
        loyalty.IdempotencyConflict,
        match=r"key 'order-1:points' was already used .*points \(100 then, 120 now\)",
    ):
        loyalty.award(ws, "u1", 120, key="order-1:points")
    with pytest.raises(loyalty.IdempotencyConflict, match=r"user_id \('u1' then, 'u2' now\)"):
        loyalty.award(ws, "u2", 100, key="order-1:points")
    with pytest.raises(loyalty.IdempotencyConflict, match=r"op \('award' then, 'redeem' now\)"):
        loyalty.redeem(ws, "u1", 100, key="order-1:points")
    assert rows(ws) == before
    assert loyalty.account(ws, "u2").version == 0  # no account opened for the refused call


# -- refusals write nothing ---------------------------------------------------------------


def test_an_insufficient_redemption_writes_nothing(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 50, key="a1")
    before = rows(ws)
    with pytest.raises(
        loyalty.InsufficientPoints,
        match=r"user 'u1' has 50 points available .* fewer than the 80 to redeem",
    ):
        loyalty.redeem(ws, "u1", 80, key="r1")
    with pytest.raises(loyalty.InsufficientPoints, match=r"'nobody' has no points"):
        loyalty.redeem(ws, "nobody", 1, key="r2")
    assert rows(ws) == before
    # the refused key was not used: the same key can carry the redemption that fits
    assert loyalty.redeem(ws, "u1", 50, key="r1").balance_after == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ws: loyalty.award(ws, "u1", 0, key="k"), "points must be a positive"),
        (lambda ws: loyalty.award(ws, "u1", -5, key="k"), "points must be a positive"),
        (lambda ws: loyalty.award(ws, "u1", 1.5, key="k"), "whole number"),
        (lambda ws: loyalty.award(ws, "u1", 5, key=""), "key must be a non-empty"),
        (lambda ws: loyalty.award(ws, "", 5, key="k"), "user_id must be"),
        (lambda ws: loyalty.award(ws, "u1", 5, key="expiry:1:v0"), "reserved for the keys"),
        (
            lambda ws: loyalty.award(ws, "u1", 5, key="k", expires_at=datetime(2027, 1, 1)),
            "expires_at 2027-01-01T00:00:00 has no time zone",
        ),
        (
            lambda ws: loyalty.award(ws, "u1", 5, key="k", available_at="tomorrow"),
            "available_at must be a datetime, a timedelta or 'on_release'",
        ),
        (
            lambda ws: loyalty.award(ws, "u1", 5, key="k", expires_at=T0 - timedelta(days=1)),
            "is not after the points become available",
        ),
        (lambda ws: loyalty.adjust(ws, "u1", 5, key="k", reason=" "), "needs a reason"),
        (lambda ws: loyalty.reverse(ws, "nope", key="k"), "no ledger write has the key 'nope'"),
    ],
)
def test_bad_calls_are_refused_with_a_sentence(ws: Workspace, call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(loyalty.LedgerError, match=match):
        call(ws)
    assert rows(ws)["loyalty_transactions"] == 0


# -- lots: FIFO, pending, expiry ----------------------------------------------------------


def test_redemption_takes_the_points_that_expire_first(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="march", expires_at=datetime(2026, 3, 1, tzinfo=UTC))
    loyalty.award(ws, "u1", 100, key="never")
    loyalty.award(ws, "u1", 100, key="feb", expires_at=datetime(2026, 2, 1, tzinfo=UTC))
    loyalty.award(ws, "u1", 100, key="april", expires_at=datetime(2026, 4, 1, tzinfo=UTC))
    # 250 = all of feb (100) + all of march (100) + 50 of april; never-expiring ones last
    loyalty.redeem(ws, "u1", 250, key="r1")
    assert lots_by_key(ws, "u1") == {"april": 50, "never": 100}
    loyalty.redeem(ws, "u1", 60, key="r2")
    assert lots_by_key(ws, "u1") == {"never": 90}
    assert loyalty.account(ws, "u1").balance == 90


def test_pending_points_become_available_after_their_duration(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 30, key="order-9", available_at=timedelta(days=7))
    loyalty.award(ws, "u1", 20, key="order-10", available_at=day(3))
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.pending, acct.posted) == (0, 50, 50)
    with pytest.raises(loyalty.InsufficientPoints, match=r"has 0 points available.*50 more"):
        loyalty.redeem(ws, "u1", 10, key="r1")
    ws.clock.set(day(3))
    assert (loyalty.account(ws, "u1").balance, loyalty.account(ws, "u1").pending) == (20, 30)
    ws.clock.set(day(7))
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.pending) == (50, 0)
    assert loyalty.redeem(ws, "u1", 45, key="r1").balance_after == 5
    # the replay of the duration form is the same call, though "now" has moved
    assert loyalty.award(ws, "u1", 30, key="order-9", available_at=timedelta(days=7)).replayed


def test_points_pending_until_a_later_action_wait_for_their_release(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 80, key="order-5", available_at=loyalty.ON_RELEASE)
    ws.clock.set(day(400))  # no time releases them
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.pending) == (0, 80)
    done = loyalty.release(ws, "order-5", key="delivered-5", reason="delivered")
    assert (done.kind, done.points, done.balance_after) == ("release", 0, 80)
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.pending) == (80, 0)
    assert loyalty.release(ws, "order-5", key="delivered-5", reason="delivered").replayed
    with pytest.raises(loyalty.LedgerError, match="no points waiting for a release"):
        loyalty.release(ws, "order-5", key="delivered-5-again")
    with pytest.raises(loyalty.LedgerError, match="is a release, which cannot be reversed"):
        loyalty.reverse(ws, "delivered-5", key="undo")
    assert loyalty.award(ws, "u1", 80, key="order-5", available_at=loyalty.ON_RELEASE).replayed
    assert loyalty.redeem(ws, "u1", 80, key="r1").balance_after == 0
    assert loyalty.check(ws).ok


def test_expiry_takes_what_is_left_of_each_lot_once(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="a1", expires_at=day(30))
    loyalty.award(ws, "u1", 40, key="a2", expires_at=day(60))
    loyalty.award(ws, "u2", 70, key="b1", expires_at=day(10))
    loyalty.redeem(ws, "u1", 30, key="r1")  # from a1: 70 left of it
    ws.clock.set(day(20))
    with pytest.raises(ConfigError, match="after now"):
        loyalty.expire(ws, as_of=day(40))
    # past its expiry but not yet swept: not spendable, still on the ledger
    u2 = loyalty.account(ws, "u2")
    assert (u2.balance, u2.posted) == (0, 70)
    with pytest.raises(loyalty.InsufficientPoints):
        loyalty.redeem(ws, "u2", 1, key="too-late")
    progress: list[tuple[int, int]] = []
    first = loyalty.expire(ws, as_of=day(20), on_progress=lambda *a: progress.append(a))
    assert (first.points, first.accounts, first.lots) == (70, 1, 1)
    assert progress == [(0, 1), (1, 1)]
    ws.clock.set(day(45))
    second = loyalty.expire(ws, as_of=day(45))
    assert (second.points, second.accounts, second.lots) == (70, 1, 1)  # what was left of a1
    before = rows(ws)
    again = loyalty.expire(ws, as_of=day(45))
    assert (again.points, again.accounts) == (0, 0) and rows(ws) == before
    assert lots_by_key(ws, "u1") == {"a2": 40}
    assert [e.kind for e in loyalty.account(ws, "u1").entries][-1] == "expiry"
    assert loyalty.check(ws).ok


# -- reversals, adjustments, growth, policy -------------------------------------------------


def test_reversing_a_redemption_puts_the_points_back_in_their_lots(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="feb", expires_at=datetime(2026, 2, 1, tzinfo=UTC))
    loyalty.award(ws, "u1", 100, key="mar", expires_at=datetime(2026, 3, 1, tzinfo=UTC))
    loyalty.redeem(ws, "u1", 150, key="r1")
    assert lots_by_key(ws, "u1") == {"mar": 50}
    undo = loyalty.reverse(ws, "r1", key="refund-r1", reason="order cancelled")
    assert (undo.kind, undo.points, undo.reverses, undo.balance_after) == (
        "reversal",
        150,
        "r1",
        200,
    )
    assert lots_by_key(ws, "u1") == {"feb": 100, "mar": 100}
    assert loyalty.reverse(ws, "r1", key="refund-r1", reason="order cancelled").replayed
    with pytest.raises(loyalty.LedgerError, match="'r1' was already reversed by 'refund-r1'"):
        loyalty.reverse(ws, "r1", key="refund-r1-again")
    with pytest.raises(loyalty.LedgerError, match="is a reversal, which cannot be reversed"):
        loyalty.reverse(ws, "refund-r1", key="undo-undo")
    assert loyalty.check(ws).ok


def test_reversing_an_award_takes_its_points_back_or_refuses(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="order-1", growth=100)
    loyalty.award(ws, "u1", 20, key="order-2")
    loyalty.redeem(ws, "u1", 90, key="r1")  # order-1's lot keeps 30 (no expiry: id order)
    before = rows(ws)
    with pytest.raises(loyalty.InsufficientPoints, match=r"has only 30 of the 100 points"):
        loyalty.reverse(ws, "order-1", key="refund-1")
    assert rows(ws) == before
    undo = loyalty.reverse(ws, "order-2", key="refund-2")
    assert (undo.points, undo.balance_after) == (-20, 10)
    assert loyalty.account(ws, "u1").growth_value == 100
    # a program that allows negative balances books the shortfall as debt
    loyalty.adjust(ws, "u1", -10, key="fix-1", reason="ticket 12")
    loyalty.set_policy(ws, "default", allow_negative=True)
    refund = loyalty.reverse(ws, "order-1", key="refund-1")
    assert (refund.points, refund.growth, refund.balance_after) == (-100, -100, -100)
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.growth_value, acct.lots) == (-100, 0, [])
    assert loyalty.check(ws).ok
    # the next award settles the debt first
    loyalty.award(ws, "u1", 150, key="order-3")
    acct = loyalty.account(ws, "u1")
    assert acct.balance == 50 and [lot.remaining for lot in acct.lots] == [50]
    assert loyalty.check(ws).ok


def test_negative_balances_are_forbidden_by_default(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 10, key="a1")
    with pytest.raises(loyalty.InsufficientPoints, match="forbids negative balances"):
        loyalty.adjust(ws, "u1", -11, key="fix", reason="ticket 9")
    assert loyalty.adjust(ws, "u1", -10, key="fix", reason="ticket 9").balance_after == 0
    assert loyalty.adjust(ws, "u1", 5, key="fix-2", reason="goodwill").balance_after == 5


def test_growth_value_is_earned_and_never_spent(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="order-1", growth=100)
    loyalty.add_growth(ws, "u1", 15, key="review-1", reason="review")
    loyalty.redeem(ws, "u1", 100, key="r1")
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.growth_value, acct.tier) == (0, 115, None)
    loyalty.reverse(ws, "review-1", key="review-1:removed")
    assert loyalty.account(ws, "u1").growth_value == 100
    assert loyalty.check(ws).ok


def test_programs_keep_separate_accounts(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="a", program="default")
    loyalty.award(ws, "u1", 7, key="b", program="vip")
    assert loyalty.account(ws, "u1").balance == 100
    assert loyalty.account(ws, "u1", "vip").balance == 7


# -- double entry, append-only, check -------------------------------------------------------


def scenario(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="a1", expires_at=day(10), growth=10)
    loyalty.award(ws, "u2", 50, key="b1", available_at=timedelta(days=2))
    loyalty.redeem(ws, "u1", 30, key="r1")
    loyalty.reverse(ws, "r1", key="rv1")
    loyalty.adjust(ws, "u1", -5, key="adj", reason="ticket 3")
    loyalty.add_growth(ws, "u2", 3, key="g1")
    ws.clock.set(day(11))
    loyalty.expire(ws, as_of=day(11))


def test_every_transaction_balances_and_program_accounts_mirror_members(ws: Workspace) -> None:
    scenario(ws)
    with ws.state.read() as s:
        legs = s.execute(
            select(
                LoyaltyEntry.transaction_id, LoyaltyEntry.unit, func.sum(LoyaltyEntry.amount)
            ).group_by(LoyaltyEntry.transaction_id, LoyaltyEntry.unit)
        ).all()
        program = dict(
            s.execute(
                select(LoyaltyEntry.program_account, func.sum(LoyaltyEntry.amount))
                .where(LoyaltyEntry.program_account.is_not(None), LoyaltyEntry.unit == "points")
                .group_by(LoyaltyEntry.program_account)
            ).all()
        )
    assert legs and all(total == 0 for _, _, total in legs)
    # u1: +100 issued, 30 redeemed then reversed, 5 adjusted away, 95 expired; u2: +50
    assert program == {"issued": -150, "redeemed": 0, "adjustment": 5, "expired": 95}
    assert loyalty.account(ws, "u1").posted + loyalty.account(ws, "u2").posted == 50


_DML = re.compile(r"\b(insert into|update|delete from)\s+(\w+)")


def test_entries_are_only_ever_inserted(ws: Workspace) -> None:
    """No UPDATE or DELETE of an entry or a transaction reaches the database."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()).lower())

    event.listen(ws.state.engine, "before_cursor_execute", record)
    try:
        scenario(ws)
    finally:
        event.remove(ws.state.engine, "before_cursor_execute", record)
    # every write a statement makes (on PostgreSQL one statement holds several, as CTEs)
    ops = [op for s in statements for op in _DML.findall(s)]
    assert ("insert into", "loyalty_entries") in ops
    writes = {(verb, table) for verb, table in ops if verb != "insert into"}
    assert writes and writes <= {("update", "loyalty_accounts"), ("update", "loyalty_lots")}, writes


def test_check_passes_on_a_sound_ledger_and_finds_corrupted_rows(ws: Workspace) -> None:
    scenario(ws)
    report = loyalty.check(ws)
    assert report.ok and report.violations == []
    assert (report.accounts, report.transactions) == (2, 7)
    with ws.state.write() as s:  # corruption written straight into the rows
        s.execute(text("UPDATE loyalty_accounts SET balance = balance + 7 WHERE user_id = 'u2'"))
    report = loyalty.check(ws)
    assert not report.ok
    assert any(
        "account of 'u2' in 'default': balance 57 but its entries sum to 50" in v
        for v in report.violations
    ), report.violations
    with ws.state.write() as s:
        s.execute(text("UPDATE loyalty_accounts SET balance = balance - 7 WHERE user_id = 'u2'"))
        s.execute(text("UPDATE loyalty_lots SET remaining = remaining + 1 WHERE points = 50"))
    assert any("remaining 51 but its entries sum to 50" in v for v in loyalty.check(ws).violations)


def test_check_finds_an_unbalanced_transaction_and_a_forbidden_negative(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 10, key="a1")
    with ws.state.write() as s:
        tx = s.scalar(select(LoyaltyTransaction.id).where(LoyaltyTransaction.key == "a1"))
        s.add(LoyaltyEntry(transaction_id=tx, program_account="issued", unit="points", amount=-3))
        s.execute(text("UPDATE loyalty_accounts SET balance = -4"))
    violations = loyalty.check(ws).violations
    assert "transaction 'a1': its points legs sum to -3, not 0" in violations
    assert any("balance -4 is negative and the program forbids" in v for v in violations)


# -- validity helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "kwargs", "expected"),
    [
        # one month after 31 January is the last day of February
        (
            datetime(2026, 1, 31, 15, tzinfo=UTC),
            {"months": 1},
            datetime(2026, 2, 28, 15, tzinfo=UTC),
        ),
        (
            datetime(2028, 1, 31, 15, tzinfo=UTC),
            {"months": 1},
            datetime(2028, 2, 29, 15, tzinfo=UTC),
        ),
        # rounded to the end of the day: the next midnight, here in Shanghai (UTC+8)
        (
            datetime(2026, 3, 10, 15, tzinfo=UTC),  # 23:00 in Shanghai on the 10th
            {"days": 1, "round_to": "day", "timezone": "Asia/Shanghai"},
            datetime(2026, 3, 11, 16, tzinfo=UTC),  # midnight starting the 12th, Shanghai
        ),
        (
            datetime(2026, 3, 10, tzinfo=UTC),
            {"days": 2, "round_to": "day"},
            datetime(2026, 3, 12, tzinfo=UTC),
        ),
        # rounded to the end of the month 12 months later
        (
            datetime(2026, 12, 5, 8, tzinfo=UTC),
            {"months": 12, "round_to": "month"},
            datetime(2028, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_valid_until_rounds_to_the_end_of_a_day_or_month(
    start: datetime, kwargs: dict, expected: datetime
) -> None:
    assert loyalty.valid_until(start, **kwargs) == expected


def test_valid_until_refuses_an_unknown_rounding() -> None:
    with pytest.raises(ConfigError, match="round_to must be None, 'day' or 'month'"):
        loyalty.valid_until(T0, days=1, round_to="week")


def test_earned_at_is_stored_and_part_of_the_request(ws: Workspace) -> None:
    """Growth is placed in the tier window by when it was earned, not when it was booked."""
    loyalty.award(ws, "u1", 10, key="a", growth=5, earned_at=day(-40))
    loyalty.add_growth(ws, "u1", 3, key="g", earned_at=day(-2))
    loyalty.award(ws, "u1", 1, key="plain")
    with ws.state.read() as s:
        got = dict(s.execute(select(LoyaltyTransaction.key, LoyaltyTransaction.earned_at)).all())
    assert got == {"a": day(-40), "g": day(-2), "plain": None}
    assert loyalty.award(ws, "u1", 10, key="a", growth=5, earned_at=day(-40)).replayed
    with pytest.raises(loyalty.IdempotencyConflict, match="earned_at"):
        loyalty.award(ws, "u1", 10, key="a", growth=5, earned_at=day(-41))
    with pytest.raises(loyalty.LedgerError, match="earned_at"):
        loyalty.award(ws, "u1", 10, key="naive", earned_at=datetime(2026, 1, 1))
