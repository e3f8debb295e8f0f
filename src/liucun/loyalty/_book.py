"""One ledger transaction's bookkeeping (:class:`_Book`), locking and argument checks.

:mod:`liucun.loyalty._ledger` holds the operations; this module the mechanics they share:
the legs of a transaction on one locked member account, the replay of a key, the row
locks (``SELECT … FOR UPDATE`` in sorted id order on PostgreSQL; SQLite serializes
writers with ``BEGIN IMMEDIATE``), and the checks that turn bad arguments into sentences.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, StateError, as_utc
from liucun.loyalty._models import (
    ON_RELEASE,
    UNTIL_RELEASED,
    IdempotencyConflict,
    InsufficientPoints,
    LedgerError,
    Posting,
)
from liucun.state import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyProgramPolicy,
    LoyaltyTransaction,
)

T = TypeVar("T")
_TX = cast(Table, LoyaltyTransaction.__table__)
_LOT = cast(Table, LoyaltyLot.__table__)
_ENTRY = cast(Table, LoyaltyEntry.__table__)
_KEY_MAX = 200
#: Keys of expiry transactions (``expiry:<account id>:v<version>``); refused for callers.
EXPIRY_KEY_PREFIX = "expiry:"
_RETRIES = 3


# -- one transaction's bookkeeping --------------------------------------------------------


class _Book:
    """The legs of one transaction on one locked member account, applied at commit."""

    def __init__(self, s: Session, acct: LoyaltyAccount, now: datetime) -> None:
        self.s, self.acct, self.now = s, acct, now
        self._held: list[LoyaltyLot] | None = None
        self._new: list[LoyaltyLot] = []
        #: (on the member's account?, lot, program account, unit, amount)
        self.legs: list[tuple[bool, LoyaltyLot | None, str | None, str, int]] = []
        self.points = 0
        self.growth_delta = 0

    def lots(self, *, available_only: bool = False) -> list[LoyaltyLot]:
        """The account's lots still holding points, first to expire first (FIFO)."""
        if self._held is None:
            self._held = list(
                self.s.scalars(
                    select(LoyaltyLot)
                    .where(LoyaltyLot.account_id == self.acct.id, LoyaltyLot.remaining > 0)
                    .order_by(*_fifo())
                ).all()
            )
        return [
            lot
            for lot in self._held
            if lot.remaining > 0 and (not available_only or _spendable(lot, self.now))
        ]

    def lots_by_id(self, ids: Iterable[int]) -> dict[int, LoyaltyLot]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(LoyaltyLot).where(LoyaltyLot.id.in_(wanted))).all()
        return {lot.id: lot for lot in rows}

    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots() if lot.available_at > self.now)

    def available(self) -> int:
        """Points the member can spend now: not pending, not past their expiry."""
        lapsed = sum(lot.remaining for lot in self.lots() if _lapsed(lot, self.now))
        return self.acct.balance + self.points - self.pending() - lapsed

    def new_lot(self, available_at: datetime, expires_at: datetime | None) -> LoyaltyLot:
        """A lot for points credited by this transaction (stored at commit)."""
        lot = LoyaltyLot(
            account_id=self.acct.id,
            points=0,
            remaining=0,
            available_at=available_at,
            expires_at=expires_at,
        )
        self._new.append(lot)
        return lot

    def credit(self, amount: int, lot: LoyaltyLot) -> None:
        """Add ``amount`` to the member: first settling any debt, the rest into ``lot``."""
        debt = max(0, -(self.acct.balance + self.points))
        settled = min(amount, debt)
        if settled:
            self.legs.append((True, None, None, "points", settled))
        if amount - settled:
            lot.remaining += amount - settled
            self.legs.append((True, lot, None, "points", amount - settled))
        if lot in self._new:
            lot.points += amount
        self.points += amount

    def debit(self, amount: int, order: Iterable[LoyaltyLot], *, allow_negative: bool) -> None:
        """Take ``amount`` from the lots in ``order``; the rest becomes debt when allowed."""
        left = amount
        for lot in order:
            if left == 0:
                break
            take = min(left, lot.remaining)
            if take:
                lot.remaining -= take
                self.legs.append((True, lot, None, "points", -take))
                left -= take
        if left:
            if not allow_negative:
                raise InsufficientPoints(
                    f"user {self.acct.user_id!r} has only {amount - left:,} of the "
                    f"{amount:,} points to take in program {self.acct.program!r} (the rest "
                    "was spent or expired), and the program forbids negative balances; "
                    "nothing was written. Allow negative balances for the program to book "
                    "the shortfall as debt",
                    hint=Hint(option="allow_negative", example="True"),
                )
            self.legs.append((True, None, None, "points", -left))
        self.points -= amount

    def growth(self, amount: int) -> None:
        self.legs.append((True, None, None, "growth", amount))
        self.growth_delta += amount

    def program_leg(self, name: str, amount: int, *, unit: str = "points") -> None:
        self.legs.append((False, None, name, unit, amount))

    def commit(
        self,
        key: str,
        kind: str,
        request: dict[str, Any],
        reason: str | None,
        *,
        reverses: LoyaltyTransaction | None = None,
        earned_at: datetime | None = None,
    ) -> Posting:
        # Core statements, not the unit of work: an award is a handful of short
        # statements (the ORM's flush bookkeeping cost more than the database's work).
        acct, s = self.acct, self.s
        after = acct.balance + self.points
        values = {
            "key": key,
            "kind": kind,
            "program": acct.program,
            "user_id": acct.user_id,
            "account_id": acct.id,
            "points": self.points,
            "growth": self.growth_delta,
            "reason": reason,
            "request": _canonical(request),
            "reverses_id": None if reverses is None else reverses.id,
            "balance_after": after,
            "created_at": self.now,
            "earned_at": earned_at,
        }
        tx_id = s.execute(insert(_TX).values(values).returning(_TX.c.id)).scalar_one()
        # an addition's lot is kept even when debt took all of it (it records the terms)
        lot_ids: dict[int, int] = {}
        for lot in self._new:
            if lot.points > 0:
                lot_ids[id(lot)] = s.execute(
                    insert(_LOT)
                    .values(
                        account_id=acct.id,
                        transaction_id=tx_id,
                        points=lot.points,
                        remaining=lot.remaining,
                        available_at=lot.available_at,
                        expires_at=lot.expires_at,
                    )
                    .returning(_LOT.c.id)
                ).scalar_one()
        legs = [
            {
                "transaction_id": tx_id,
                "account_id": acct.id if member else None,
                "lot_id": None if lot is None else lot_ids.get(id(lot), lot.id),
                "program_account": name,
                "unit": unit,
                "amount": amount,
            }
            for member, lot, name, unit, amount in self.legs
            if amount != 0
        ]
        if legs:
            s.execute(insert(_ENTRY), legs)
        acct.balance += self.points
        acct.growth_value += self.growth_delta
        acct.version += 1
        acct.updated_at = self.now
        s.flush()
        return Posting(
            key=key,
            kind=kind,
            program=acct.program,
            user_id=acct.user_id,
            points=self.points,
            growth=self.growth_delta,
            balance_after=after,
            created_at=self.now,
            reason=reason,
            reverses=None if reverses is None else reverses.key,
        )


# -- helpers ------------------------------------------------------------------------------


def _write(ws: Any, key: str, request: dict[str, Any], run: Callable[[Session, datetime], T]) -> T:
    """``run`` in one write transaction (it answers a replayed key itself, under the
    account lock, writing nothing); again, up to :data:`_RETRIES` times, when a
    concurrent write took the key first (the unique index refused this one)."""
    store = ws.state
    attempt = 0
    while True:
        attempt += 1
        try:
            with store.write() as s:
                return run(s, as_utc(ws.clock.now()))
        except IntegrityError:
            if attempt >= _RETRIES:
                raise


def _find(s: Session, key: str) -> LoyaltyTransaction | None:
    """The transaction written under ``key`` (a cheap id lookup first: most keys are new)."""
    if s.scalar(select(_TX.c.id).where(_TX.c.key == key)) is None:
        return None
    return s.scalar(select(LoyaltyTransaction).where(LoyaltyTransaction.key == key))


def _replay(s: Session, done: LoyaltyTransaction, request: dict[str, Any]) -> Posting:
    first = json.loads(done.request)
    if first != json.loads(_canonical(request)):
        differs = [
            f"{name} ({_show(first.get(name))} then, {_show(request.get(name))} now)"
            for name in sorted(set(first) | set(request))
            if first.get(name) != json.loads(_canonical({name: request.get(name)}))[name]
        ]
        raise IdempotencyConflict(
            f"the idempotency key {done.key!r} was already used for {first.get('op')} of "
            f"user {done.user_id!r} with other arguments: this call differs in "
            f"{', '.join(differs)}; nothing was written. Repeat the first call's arguments "
            "to get its result, or use a new key for a new operation"
        )
    reverses_key = (
        s.scalar(select(LoyaltyTransaction.key).where(LoyaltyTransaction.id == done.reverses_id))
        if done.reverses_id is not None
        else None
    )
    return _posting(done, reverses_key=reverses_key, replayed=True)


def _show(value: Any) -> str:
    return "none" if value is None else repr(value)


def _posting(
    tx: LoyaltyTransaction, *, reverses_key: str | None, replayed: bool = False
) -> Posting:
    return Posting(
        key=tx.key,
        kind=tx.kind,
        program=tx.program,
        user_id=tx.user_id,
        points=tx.points,
        growth=tx.growth,
        balance_after=tx.balance_after,
        created_at=tx.created_at,
        reason=tx.reason,
        reverses=reverses_key,
        replayed=replayed,
    )


def _lock_member(
    s: Session, program: str, user_id: str, now: datetime, *, create: bool
) -> LoyaltyAccount | None:
    query = (
        select(LoyaltyAccount)
        .where(LoyaltyAccount.program == program, LoyaltyAccount.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    acct = s.scalar(query)
    if acct is None and create:
        dialect = s.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LoyaltyAccount)
        s.execute(
            insert.values(
                program=program,
                user_id=user_id,
                balance=0,
                growth_value=0,
                version=0,
                opened_at=now,
                updated_at=now,
            ).on_conflict_do_nothing(index_elements=["program", "user_id"])
        )
        acct = s.scalar(query)
    return acct


def _open_member(s: Session, program: str, user_id: str, now: datetime) -> LoyaltyAccount:
    """The member's account, locked; opened (balance 0) by the first write."""
    acct = _lock_member(s, program, user_id, now, create=True)
    if acct is None:  # pragma: no cover - the insert above or a concurrent one made it
        raise StateError(f"the account of {user_id!r} in {program!r} could not be opened")
    return acct


def _lock_id(s: Session, account_id: int) -> LoyaltyAccount:
    """Lock one account by id (a write that touched several would lock them in sorted id
    order: :func:`_lock_ids`)."""
    return _lock_ids(s, [account_id])[0]


def _lock_ids(s: Session, account_ids: Iterable[int]) -> list[LoyaltyAccount]:
    ids = sorted(set(account_ids))
    rows = s.scalars(
        select(LoyaltyAccount)
        .where(LoyaltyAccount.id.in_(ids))
        .order_by(LoyaltyAccount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return list(rows)


def _allows_negative(s: Session, program: str) -> bool:
    allowed = s.scalar(
        select(LoyaltyProgramPolicy.allow_negative).where(LoyaltyProgramPolicy.name == program)
    )
    return bool(allowed)


def _fifo() -> tuple[Any, ...]:
    """Lots in redemption order: the first to expire first, never-expiring ones last."""
    return (
        LoyaltyLot.expires_at.is_(None),
        LoyaltyLot.expires_at,
        LoyaltyLot.available_at,
        LoyaltyLot.id,
    )


def _in_program(query: Any, program: str | None) -> Any:
    if program is None:
        return query
    return query.join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyLot.account_id).where(
        LoyaltyAccount.program == program
    )


def _lapsed(lot: LoyaltyLot, now: datetime) -> bool:
    """Past its expiry (what is left goes at the next :func:`expire`)."""
    return lot.expires_at is not None and lot.expires_at <= now


def _spendable(lot: LoyaltyLot, now: datetime) -> bool:
    return lot.available_at <= now and not _lapsed(lot, now)


def _canonical(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)


def _when_text(value: datetime | timedelta | str | None, name: str) -> str | None:
    """How a time argument is compared on replay: as given (a duration stays a duration)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return f"+{value.total_seconds():g}s"
    if isinstance(value, str) and name == "available_at":
        if value != ON_RELEASE:
            raise LedgerError(
                f"available_at must be a datetime, a timedelta or {ON_RELEASE!r}, got {value!r}",
                hint=Hint(option="available_at", example=repr(ON_RELEASE)),
            )
        return value
    return _aware(value, name).isoformat()


def _available_from(value: datetime | timedelta | str | None, now: datetime) -> datetime:
    if value is None:
        return now
    if value == ON_RELEASE:
        return UNTIL_RELEASED
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise LedgerError(f"available_at must not be a negative duration, got {value}")
        return now + value
    return _aware(value, "available_at")


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise LedgerError(f"{name} must be a datetime, got {value!r}", hint=Hint(option=name))
    if value.tzinfo is None:
        raise LedgerError(
            f"{name} {value.isoformat()} has no time zone; pass an aware datetime, e.g. "
            "datetime(2027, 1, 1, tzinfo=UTC)",
            hint=Hint(option=name),
        )
    return as_utc(value)


def lock_program(s: Session, scope: str, program: str) -> None:
    """Serialize the writes of ``scope`` (coupons, tiers) in ``program``: on PostgreSQL a
    transaction-scoped advisory lock on the name; SQLite's ``BEGIN IMMEDIATE`` already
    serialized the writer."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": f"liucun.{scope}:{program}"}
        )


def _check_amount(value: Any, name: str, *, allow_zero: bool = False) -> None:
    ok = (
        isinstance(value, int) and not isinstance(value, bool) and value >= (0 if allow_zero else 1)
    )
    if not ok:
        raise LedgerError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} whole number, "
            f"got {value!r}",
            hint=Hint(option=name, example="100"),
        )


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > _KEY_MAX:
        raise LedgerError(
            f"key must be a non-empty text of at most {_KEY_MAX} characters that names this "
            f"operation (e.g. 'order-1234:points'), got {key!r}",
            hint=Hint(option="key", example="order-1234:points"),
        )
    if key.startswith(EXPIRY_KEY_PREFIX):
        raise LedgerError(
            f"key {key!r} starts with {EXPIRY_KEY_PREFIX!r}, which is reserved for the keys "
            "expire() gives its own transactions; choose another key",
            hint=Hint(option="key", example="order-1234:points"),
        )


def _check_ids(user_id: Any, program: Any, key: Any) -> None:
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 200:
        raise LedgerError(f"user_id must be a non-empty text (≤ 200 characters), got {user_id!r}")
    if not isinstance(program, str) or not program.strip() or len(program) > 100:
        raise LedgerError(f"program must be a non-empty name (≤ 100 characters), got {program!r}")
    _check_key(key)


def expiry_cutoff(ws: Any, as_of: datetime | date, what: str, verb: str = "expired") -> datetime:
    """``as_of`` as an aware UTC instant, refused (:class:`ConfigError`) when it lies
    after the workspace clock's now: ``what`` (points, coupons, tiers) cannot be
    ``verb`` (expired, reviewed) ahead of time."""
    return not_after_now(ws, as_utc(as_of), f"{what} cannot be {verb} ahead of time")


def not_after_now(ws: Any, cutoff: datetime, refusal: str) -> datetime:
    """``cutoff``, refused (:class:`ConfigError`, ending in ``refusal``) when it lies after
    the workspace clock's now."""
    now = as_utc(ws.clock.now())
    if cutoff > now:
        raise ConfigError(
            f"as_of {cutoff.isoformat()} is after now ({now.isoformat()}): {refusal}; pass "
            "a day up to today",
            hint=Hint(option="as_of", example=f"{now:%Y-%m-%d}"),
        )
    return cutoff
