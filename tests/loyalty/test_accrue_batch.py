"""The batch write path books exactly what one ledger call per operation books, on SQLite
and PostgreSQL: the same plan applied both ways to two fresh workspaces gives the same
transactions, lots, legs and balances, row by row — with earn rows, pending points
released later, partial and full refunds under all three return policies, debt settled
by later orders, refunds of orders booked in an earlier batch or in the same batch, and
replays of a whole run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.loyalty._accrue import accrual_ops, pending_keys, released_keys
from liucun.loyalty._batch import apply_batch
from liucun.loyalty._ops import Earn, ShareBack, apply_each
from liucun.loyalty._program import parse_program
from liucun.state import LoyaltyAccount, LoyaltyEntry, LoyaltyLot, LoyaltyTransaction
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROGRAM = parse_program(
    {
        "name": "t",
        "currency": "CNY",
        "points": {
            "pending": {"mode": "on_event", "event_type": "delivery"},
            "validity": {"amount": 20, "unit": "days", "rounding": "none"},
        },
        "earning": {
            "orders": [{"name": "spend", "points_per_unit": 1.5, "growth_per_unit": 1}],
            "first_order": {"growth": 100, "points": 5},
            "behaviours": [{"name": "review", "event_type": "review", "points": 3}],
        },
    }
)


def history(seed: int = 7) -> tuple[pd.DataFrame, datetime]:
    """Orders of 6 customers over March; deliveries, refunds (some partial, several per
    order) and reviews; and the instant splitting it into two runs."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    for i in range(60):
        user = f"u{i % 6}"
        ts = T0 + timedelta(hours=int(rng.integers(0, 24 * 30)))
        amount = float(rng.choice([0.0, 9.9, 25.0, 60.5, 120.0]))
        rows.append((f"o{i}", user, "order", ts, amount, "CNY", f"A{i}"))
        if rng.random() < 0.7:
            rows.append((f"d{i}", user, "delivery", ts + timedelta(days=2), None, None, f"A{i}"))
        for j in range(int(rng.integers(0, 3))):
            back = float(rng.choice([amount / 3, amount / 2, amount]))
            when = ts + timedelta(days=1 + 3 * j + int(rng.integers(0, 12)))
            rows.append((f"r{i}-{j}", user, "refund", when, back, "CNY", f"A{i}"))
        if rng.random() < 0.3:
            rows.append((f"v{i}", user, "review", ts + timedelta(hours=5), None, None, None))
    frame = pd.DataFrame(
        rows, columns=["event_id", "user_id", "event_type", "ts", "revenue", "currency", "order_id"]
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for name in ("channel", "category", "properties"):
        frame[name] = None
    return frame, T0 + timedelta(days=15)


def mixed_policies(ops: list[Any]) -> list[Any]:
    """Refunds take one of the three return policies, by their key."""
    policies = ("within_balance", "unlimited", "only_pending")
    return [
        dataclasses.replace(op, policy=policies[sum(map(ord, op.key)) % 3])
        if isinstance(op, ShareBack)
        else op
        for op in ops
    ]


def spend_some(ws: Workspace) -> None:
    """Each member redeems all but 3 of the points available (the same calls in both
    ledgers), so that refunds must take from other lots than their order's."""
    with ws.state.read() as s:
        users = sorted(s.scalars(select(LoyaltyAccount.user_id)))
    for user in users:
        available = loyalty.account(ws, user).balance
        if available > 3:
            loyalty.redeem(ws, user, available - 3, key=f"spend-{user}")


def dump(ws: Workspace) -> dict[str, Any]:
    """Every ledger row, ids replaced by what they point at (keys, users)."""
    with ws.state.read() as s:
        accounts = {a.id: a for a in s.scalars(select(LoyaltyAccount))}
        txs = list(s.scalars(select(LoyaltyTransaction).order_by(LoyaltyTransaction.id)))
        key = {t.id: t.key for t in txs}
        lots = list(s.scalars(select(LoyaltyLot).order_by(LoyaltyLot.id)))
        lot_key = {lot.id: key[lot.transaction_id] for lot in lots}
        entries = list(s.scalars(select(LoyaltyEntry).order_by(LoyaltyEntry.id)))
        return {
            "accounts": sorted(
                (a.user_id, a.balance, a.growth_value, a.version, a.updated_at)
                for a in accounts.values()
            ),
            "transactions": [
                (
                    t.key,
                    t.kind,
                    t.user_id,
                    accounts[t.account_id].user_id,
                    t.points,
                    t.growth,
                    t.balance_after,
                    t.request,
                    t.reason,
                    key.get(t.reverses_id) if t.reverses_id is not None else None,
                    t.created_at,
                    t.earned_at,
                )
                for t in txs
            ],
            "lots": [
                (
                    key[lot.transaction_id],
                    accounts[lot.account_id].user_id,
                    lot.points,
                    lot.remaining,
                    lot.available_at,
                    lot.expires_at,
                )
                for lot in lots
            ],
            "entries": [
                (
                    key[e.transaction_id],
                    None if e.account_id is None else accounts[e.account_id].user_id,
                    None if e.lot_id is None else lot_key[e.lot_id],
                    e.program_account,
                    e.unit,
                    e.amount,
                )
                for e in entries
            ],
        }


@pytest.fixture
def pair(tmp_path: Path, state_url: str) -> Iterator[tuple[Workspace, Workspace]]:
    """Two fresh workspaces on the backend (the PostgreSQL one in two schemas)."""
    from state_backends import postgres_schema_url

    if state_url.startswith("sqlite"):
        second = f"sqlite:///{tmp_path / 'other.sqlite'}"
        with (
            init_workspace(tmp_path / "a", state_url=state_url, clock=SimulatedClock(NOW)) as a,
            init_workspace(tmp_path / "b", state_url=second, clock=SimulatedClock(NOW)) as b,
        ):
            yield a, b
        return
    with (
        postgres_schema_url() as other,
        init_workspace(tmp_path / "a", state_url=state_url, clock=SimulatedClock(NOW)) as a,
        init_workspace(tmp_path / "b", state_url=other, clock=SimulatedClock(NOW)) as b,
    ):
        yield a, b


def test_batches_book_what_one_call_per_operation_books(
    pair: tuple[Workspace, Workspace],
) -> None:
    each, batch = pair
    for ws in pair:
        loyalty.set_policy(ws, allow_negative=True)
    events, split = history()
    first_plan = loyalty.plan_accrual(events[events.ts < split], PROGRAM)
    first = mixed_policies(accrual_ops(first_plan, since=None, policy="within_balance"))
    a1 = apply_each(each, first, program="default")
    b1 = apply_batch(batch, first, program="default", batch_size=7)
    assert a1 == b1
    assert {o.status for o in a1} == {"written"}
    for ws in pair:
        spend_some(ws)
    plan = loyalty.plan_accrual(events, PROGRAM)
    pending = pending_keys(each, "default")
    assert pending == pending_keys(batch, "default") and pending
    second = accrual_ops(plan, since=split, policy="within_balance", pending=pending)
    second = mixed_policies(second)
    a2 = apply_each(each, second, program="default")
    b2 = apply_batch(batch, second, program="default", batch_size=7)
    assert a2 == b2
    statuses = {o.status for o in a2}
    assert "written" in statuses
    kinds = {(o.op, o.status) for o in a2}
    assert {("release", "written"), ("reversal", "written"), ("earn", "written")} <= kinds
    assert any(o.limited for o in a2)  # some refunds were limited by their policy
    assert dump(each) == dump(batch)
    # some member went below zero (unlimited) and some later order settled debt
    with batch.state.read() as s:
        debt = select(LoyaltyEntry.id).where(
            LoyaltyEntry.lot_id.is_(None), LoyaltyEntry.amount < 0, LoyaltyEntry.unit == "points"
        )
        assert s.scalar(debt.limit(1)) is not None
    for ws in pair:
        assert loyalty.check(ws).ok, loyalty.check(ws).violations
    # the whole history again: every operation is a replay, both ways, nothing written
    released = released_keys(batch, "default")
    assert released == released_keys(each, "default") and released <= pending
    left = pending_keys(batch, "default")
    everything = mixed_policies(
        accrual_ops(plan, since=None, policy="within_balance", pending=left, released=released)
    )
    everything = [op for op in everything if not op.key.endswith(":released")]
    before = dump(batch)
    again_each = apply_each(each, everything, program="default")
    again_batch = apply_batch(batch, everything, program="default", batch_size=50)
    assert again_each == again_batch
    assert {o.status for o in again_batch} == {"replayed"}
    assert dump(batch) == before == dump(each)


def test_a_dry_run_batch_writes_nothing_and_answers_as_the_real_one(
    pair: tuple[Workspace, Workspace],
) -> None:
    dry, real = pair
    events, _ = history(seed=3)
    ops = accrual_ops(loyalty.plan_accrual(events, PROGRAM), since=None, policy="within_balance")
    guess = apply_batch(dry, ops, program="default", batch_size=5, dry_run=True)
    assert dump(dry) == {"accounts": [], "transactions": [], "lots": [], "entries": []}
    assert guess == apply_batch(real, ops, program="default", batch_size=5)


def test_a_refund_beyond_its_own_lot_takes_the_first_to_expire(
    pair: tuple[Workspace, Workspace],
) -> None:
    day = timedelta(days=1)

    def earn(key: str, points: int, expires: int) -> Earn:
        return Earn(key, "u1", points, 0, T0, T0 + expires * day, T0, "test", "spend")

    ops = [earn("k1", 100, 160), earn("k2", 100, 130), earn("k3", 50, 120)]
    back = ShareBack("k3-back", "k3", Fraction(1), Fraction(0), "within_balance", T0, "t", "spend")
    results = []
    for ws, apply in zip(pair, (apply_each, apply_batch), strict=True):
        kwargs: dict[str, Any] = {} if apply is apply_each else {"batch_size": 10}
        apply(ws, ops, program="default", **kwargs)
        loyalty.redeem(ws, "u1", 50, key="spend")  # FIFO: k3's lot, the first to expire
        results.append(apply(ws, [back], program="default", **kwargs))
        # k3's own lot is empty: its 50 come from k2 (expires before k1)
        assert {lot.key: lot.remaining for lot in loyalty.account(ws, "u1").lots} == {
            "k2": 50,
            "k1": 100,
        }
    assert results[0] == results[1]
    assert dump(pair[0]) == dump(pair[1])
