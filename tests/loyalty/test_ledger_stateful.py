"""A hypothesis state machine runs the ledger against a plain in-memory model of lots.

The model is the definition written out: a lot per award (points, when available, when
it expires); a redemption takes from spendable lots in expiry order (never-expiring last,
then by availability, then by age); a reversed award takes its points back from its own
lot first, then from the others in the same order; a reversed redemption puts the points
back where they came from; expiry empties every lot whose time has come. Keys are
replayed with the same arguments (same result, nothing changes) and with other ones
(refused). After every step each member's spendable, pending and posted points must
match the model, and at the end ``check`` must hold. Runs on both state backends.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USERS = ("u1", "u2", "u3")
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class ModelLot:
    order: int
    key: str
    points: int
    available_at: datetime
    expires_at: datetime | None
    remaining: int

    def fifo(self) -> tuple[Any, ...]:
        return (self.expires_at is None, self.expires_at or _NEVER, self.available_at, self.order)


@dataclass
class Done:
    """A write that succeeded: how to call it again, and what it did."""

    call: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    user: str
    points: int
    taken: list[tuple[ModelLot, int]] = field(default_factory=list)
    reversed: bool = False


def make_machine(ws: Workspace, programs: itertools.count) -> type[RuleBasedStateMachine]:
    class Ledger(RuleBasedStateMachine):
        @initialize()
        def fresh(self) -> None:
            self.program = f"p{next(programs)}"
            self.clock = SimulatedClock(T0)
            ws.clock = self.clock
            self.lots: dict[str, list[ModelLot]] = {u: [] for u in USERS}
            self.done: dict[str, Done] = {}
            self.n = 0

        def key(self) -> str:
            self.n += 1
            return f"{self.program}:k{self.n}"

        def now(self) -> datetime:
            return self.clock.now()

        def spendable(self, user: str) -> list[ModelLot]:
            now = self.now()
            return sorted(
                (
                    lot
                    for lot in self.lots[user]
                    if lot.remaining > 0
                    and lot.available_at <= now
                    and (lot.expires_at is None or lot.expires_at > now)
                ),
                key=ModelLot.fifo,
            )

        @rule(
            user=st.sampled_from(USERS),
            points=st.integers(1, 200),
            pending_days=st.sampled_from([0, 0, 3, -1]),  # -1: until released
            valid_days=st.sampled_from([None, 5, 20, 60]),
        )
        def award(self, user: str, points: int, pending_days: int, valid_days: int | None) -> None:
            key = self.key()
            now = self.now()
            wait = max(pending_days, 0)
            expires = None if valid_days is None else now + timedelta(days=wait + valid_days)
            kwargs: dict[str, Any] = {"key": key, "program": self.program, "expires_at": expires}
            available = now + timedelta(days=wait)
            if pending_days > 0:
                kwargs["available_at"] = timedelta(days=pending_days)
            elif pending_days < 0:
                kwargs["available_at"] = loyalty.ON_RELEASE
                available = _NEVER
            posting = loyalty.award(ws, user, points, **kwargs)
            assert posting.points == points and not posting.replayed
            self.lots[user].append(ModelLot(self.n, key, points, available, expires, points))
            self.done[key] = Done("award", (user, points), kwargs, user, points)

        @rule(user=st.sampled_from(USERS), share=st.integers(1, 110))
        def redeem(self, user: str, share: int) -> None:
            """Up to 110 % of what the member can spend (so some are refused)."""
            key = self.key()
            lots = self.spendable(user)
            points = max(1, sum(lot.remaining for lot in lots) * share // 100)
            if points > sum(lot.remaining for lot in lots):
                with pytest.raises(loyalty.InsufficientPoints):
                    loyalty.redeem(ws, user, points, key=key, program=self.program)
                return
            posting = loyalty.redeem(ws, user, points, key=key, program=self.program)
            assert posting.points == -points
            taken, left = [], points
            for lot in lots:
                take = min(left, lot.remaining)
                if take:
                    lot.remaining -= take
                    taken.append((lot, take))
                    left -= take
            kwargs = {"key": key, "program": self.program}
            self.done[key] = Done("redeem", (user, points), kwargs, user, -points, taken)

        @precondition(lambda self: any(not d.reversed for d in self.done.values()))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            open_keys = sorted(k for k, d in self.done.items() if not d.reversed)
            original = data.draw(st.sampled_from(open_keys))
            d = self.done[original]
            key = self.key()
            if d.call == "award":
                own = next(lot for lot in self.lots[d.user] if lot.key == original)
                others = sorted(
                    (lot for lot in self.lots[d.user] if lot is not own and lot.remaining > 0),
                    key=ModelLot.fifo,
                )
                order = [own, *others]
                if sum(lot.remaining for lot in order) < d.points:
                    with pytest.raises(loyalty.InsufficientPoints):
                        loyalty.reverse(ws, original, key=key)
                    return
                left = d.points
                for lot in order:
                    take = min(left, lot.remaining)
                    lot.remaining -= take
                    left -= take
            else:
                for lot, take in d.taken:
                    lot.remaining += take
            posting = loyalty.reverse(ws, original, key=key)
            assert (posting.points, posting.reverses) == (-d.points, original)
            d.reversed = True
            with pytest.raises(loyalty.LedgerError, match="already reversed"):
                loyalty.reverse(ws, original, key=self.key())

        @precondition(
            lambda self: any(lot.available_at == _NEVER for v in self.lots.values() for lot in v)
        )
        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            waiting = sorted(
                (lot for v in self.lots.values() for lot in v if lot.available_at == _NEVER),
                key=lambda lot: lot.order,
            )
            lot = data.draw(st.sampled_from(waiting))
            posting = loyalty.release(ws, lot.key, key=self.key())
            assert (posting.kind, posting.points) == ("release", 0)
            lot.available_at = self.now()

        @precondition(lambda self: bool(self.done))
        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            key = data.draw(st.sampled_from(sorted(self.done)))
            d = self.done[key]
            posting = getattr(loyalty, d.call)(ws, *d.args, **d.kwargs)
            assert posting.replayed and posting.points == d.points and posting.key == key

        @precondition(lambda self: bool(self.done))
        @rule(data=st.data(), extra=st.integers(1, 5))
        def replay_with_other_points(self, data: st.DataObject, extra: int) -> None:
            key = data.draw(st.sampled_from(sorted(self.done)))
            d = self.done[key]
            user, points = d.args
            with pytest.raises(loyalty.IdempotencyConflict, match=repr(key)):
                getattr(loyalty, d.call)(ws, user, points + extra, **d.kwargs)

        @precondition(lambda self: len(self.done) >= 2)
        @rule(days=st.integers(1, 12))
        def time_passes_and_points_expire(self, days: int) -> None:
            self.clock.advance(timedelta(days=days))
            now = self.now()
            due = [
                lot
                for lots in self.lots.values()
                for lot in lots
                if lot.expires_at is not None and lot.expires_at <= now and lot.remaining > 0
            ]
            result = loyalty.expire(ws, as_of=now, program=self.program)
            assert result.points == sum(lot.remaining for lot in due)
            for lot in due:
                lot.remaining = 0
            assert loyalty.expire(ws, as_of=now, program=self.program).points == 0

        @invariant()
        def accounts_match_the_model(self) -> None:
            if not hasattr(self, "program"):
                return
            now = self.now()
            for user in USERS:
                acct = loyalty.account(ws, user, self.program)
                held = self.lots[user]
                pending = sum(lot.remaining for lot in held if lot.available_at > now)
                assert acct.posted == sum(lot.remaining for lot in held)
                assert acct.pending == pending
                assert acct.balance == sum(lot.remaining for lot in self.spendable(user))
                assert {lot.key: lot.remaining for lot in acct.lots} == {
                    lot.key: lot.remaining for lot in held if lot.remaining
                }

        def teardown(self) -> None:
            report = loyalty.check(ws)
            assert report.ok, report.violations

    return Ledger


def test_the_ledger_behaves_like_its_model(tmp_path: Path, state_url: str) -> None:
    """40 runs of up to 25 steps on SQLite, 15 on PostgreSQL (a few seconds each)."""
    runs = 40 if state_url.startswith("sqlite") else 15
    with init_workspace(tmp_path / "ws", state_url=state_url) as ws:
        machine = make_machine(ws, itertools.count())
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=runs,
                stateful_step_count=25,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
