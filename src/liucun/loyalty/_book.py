"""One ledger transaction's bookkeeping (:class:`_Book`), locking and argument checks.

:mod:`liucun.loyalty._ledger` holds the operations; this module the mechanics they share:
the legs of a transaction on one locked member account, the replay of a key, the row
locks (``SELECT … FOR UPDATE`` in sorted id order on PostgreSQL; SQLite serializes
writers with ``BEGIN IMMEDIATE``), and the checks that turn bad arguments into sentences.

The hot path (lock, key lookup, the writes of :meth:`_Book.commit`) runs prebuilt Core
statements on plain rows (:class:`_Account`, :class:`_Lot`), never ORM loads or flushes:
the ORM's bookkeeping cost several times the database's work. On PostgreSQL the
transaction row, its lot, its legs, the lots it took from and the account's new balance
are one statement (data-modifying CTEs), so an award is four round trips: lock, key
lookup, write, commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, TextClause, bindparam, insert, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

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
_ACCOUNT = cast(Table, LoyaltyAccount.__table__)
_KEY_MAX = 200
#: Keys of expiry transactions (``expiry:<account id>:v<version>``); refused for callers.
EXPIRY_KEY_PREFIX = "expiry:"
_RETRIES = 3


# -- plain rows and prebuilt statements ---------------------------------------------------


@dataclass(slots=True, eq=False)
class _Account:
    """A member account as read under its lock (what :class:`_Book` needs of it)."""

    id: int
    program: str
    user_id: str
    balance: int
    growth_value: int
    version: int


@dataclass(slots=True, eq=False)
class _Lot:
    """A lot as read (or about to be written: ``id`` None until :meth:`_Book.commit`)."""

    id: int | None
    account_id: int
    transaction_id: int | None
    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None


_ACCOUNT_COLUMNS = [_ACCOUNT.c[name] for name in _Account.__dataclass_fields__]
_LOT_COLUMNS = [_LOT.c[name] for name in _Lot.__dataclass_fields__]
_LOCK_MEMBER = (
    select(*_ACCOUNT_COLUMNS)
    .where(_ACCOUNT.c.program == bindparam("program"), _ACCOUNT.c.user_id == bindparam("user_id"))
    .with_for_update()
)
_LOCK_IDS = (
    select(*_ACCOUNT_COLUMNS)
    .where(_ACCOUNT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNT.c.id)
    .with_for_update()
)
_OPEN = {
    name: dialect.insert(_ACCOUNT)
    .on_conflict_do_nothing(index_elements=["program", "user_id"])
    .returning(*_ACCOUNT_COLUMNS)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_HELD = (
    select(*_LOT_COLUMNS)
    .where(_LOT.c.account_id == bindparam("account_id"), _LOT.c.remaining > 0)
    .order_by(_LOT.c.expires_at.is_(None), _LOT.c.expires_at, _LOT.c.available_at, _LOT.c.id)
)
_OPEN_MANY = {
    name: dialect.insert(_ACCOUNT).on_conflict_do_nothing(index_elements=["program", "user_id"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_IN_PROGRAM = (
    _ACCOUNT.c.program == bindparam("program"),
    _ACCOUNT.c.user_id.in_(bindparam("user_ids", expanding=True)),
)
_MEMBER_USERS = select(_ACCOUNT.c.user_id).where(*_IN_PROGRAM)
_MEMBER_IDS = select(_ACCOUNT.c.id).where(*_IN_PROGRAM)
_KEYS_WRITTEN = select(_TX.c.key).where(_TX.c.key.in_(bindparam("keys", expanding=True)))
_LOTS_BY_ID = select(*_LOT_COLUMNS).where(_LOT.c.id.in_(bindparam("ids", expanding=True)))
_KEY_ID = select(_TX.c.id).where(_TX.c.key == bindparam("key"))
_INSERT_TX = insert(_TX).returning(_TX.c.id)
_INSERT_LOT = insert(_LOT).returning(_LOT.c.id)
_INSERT_LEGS = insert(_ENTRY)
_UPDATE_LOT = (
    update(_LOT).where(_LOT.c.id == bindparam("b_id")).values(remaining=bindparam("b_remaining"))
)
#: The new balance is written only over the version read under the lock (a second guard).
_UPDATE_ACCOUNT = (
    update(_ACCOUNT)
    .where(_ACCOUNT.c.id == bindparam("b_id"), _ACCOUNT.c.version == bindparam("b_version"))
    .values(
        balance=bindparam("b_balance"),
        growth_value=bindparam("b_growth_value"),
        version=bindparam("b_next"),
        updated_at=bindparam("b_now"),
    )
)
_TX_COLUMNS = [c.name for c in _TX.columns if c.name != "id"]
_LOT_INSERT_COLUMNS = [c.name for c in _LOT.columns if c.name != "id"]
_LEG_COLUMNS = [c.name for c in _ENTRY.columns if c.name != "id"]
_WRITES: dict[tuple[Any, ...], TextClause] = {}


def _conn(s: Session) -> Connection:
    return s.connection()


def _account(row: Any) -> _Account:
    return _Account(*row)


def _written(obj: Any, **values: Any) -> None:
    """Set ``values`` on ``obj`` as already in the database (an ORM instance passed in by
    a caller is then not flushed a second time)."""
    if sa_inspect(obj, raiseerr=False) is None:
        for name, value in values.items():
            setattr(obj, name, value)
    else:
        for name, value in values.items():
            set_committed_value(obj, name, value)


def _pg_write(has_lot: bool, legs: tuple[bool, ...], updates: int) -> TextClause:
    """One PostgreSQL statement writing a transaction: its row, at most one new lot, its
    legs (``legs``: does each one name the new lot?), ``updates`` lots it took from or
    gave back to, and the account's new balance over the version read under the lock.
    Answers the transaction's id and whether the account row was updated."""
    shape = (has_lot, legs, updates)
    if (found := _WRITES.get(shape)) is not None:
        return found
    tx_values = ", ".join(f":{name}" for name in _TX_COLUMNS)
    parts = [
        f"tx AS (INSERT INTO {_TX.name} ({', '.join(_TX_COLUMNS)}) "
        f"VALUES ({tx_values}) RETURNING id)"
    ]
    if has_lot:
        lot_values = ", ".join(
            "(SELECT id FROM tx)" if name == "transaction_id" else f":lot_{name}"
            for name in _LOT_INSERT_COLUMNS
        )
        parts.append(
            f"lot AS (INSERT INTO {_LOT.name} ({', '.join(_LOT_INSERT_COLUMNS)}) "
            f"VALUES ({lot_values}) RETURNING id)"
        )
    if legs:
        rows = []
        for i, new_lot in enumerate(legs):
            cells = []
            for name in _LEG_COLUMNS:
                if name == "transaction_id":
                    cells.append("(SELECT id FROM tx)")
                elif name == "lot_id" and new_lot:
                    cells.append("(SELECT id FROM lot)")
                else:
                    cells.append(f":leg{i}_{name}")
            rows.append(f"({', '.join(cells)})")
        parts.append(
            f"legs AS (INSERT INTO {_ENTRY.name} ({', '.join(_LEG_COLUMNS)}) "
            f"VALUES {', '.join(rows)})"
        )
    if updates:
        cases = " ".join(
            f"WHEN :upd{i}_id THEN CAST(:upd{i}_remaining AS BIGINT)" for i in range(updates)
        )
        ids = ", ".join(f":upd{i}_id" for i in range(updates))
        parts.append(
            f"lots AS (UPDATE {_LOT.name} SET remaining = CASE id {cases} END WHERE id IN ({ids}))"
        )
    parts.append(
        f"acct AS (UPDATE {_ACCOUNT.name} SET balance = :b_balance, "
        "growth_value = :b_growth_value, version = :b_next, updated_at = :b_now "
        "WHERE id = :b_id AND version = :b_version RETURNING id)"
    )
    sql = (
        f"WITH {', '.join(parts)} "
        # 1 / 0 when the version read under the lock is gone: the statement fails
        "SELECT (SELECT id FROM tx) AS id, 1 / (SELECT count(*) FROM acct) AS updated"
    )
    _WRITES[shape] = found = text(sql)
    return found


def _send(s: Session, deferred: list[tuple[TextClause, dict[str, Any]]]) -> None:
    """Send the queued writes in order, each run of the same statement as one
    ``executemany`` (psycopg pipelines it: one round trip for the run)."""
    conn = _conn(s)
    start = 0
    while start < len(deferred):
        statement = deferred[start][0]
        end = start + 1
        while end < len(deferred) and deferred[end][0] is statement:
            end += 1
        _send_write(conn, statement, [params for _, params in deferred[start:end]])
        start = end
    deferred.clear()


def _send_write(conn: Connection, statement: TextClause, params: Any) -> Any:
    try:
        return conn.execute(statement, params)
    except DataError as exc:
        if "division by zero" not in str(exc.orig):
            raise
        raise StateError(
            "a ledger account changed under its lock (the version read with the lock is "
            "gone); nothing was written, retry the call"
        ) from None


# -- one transaction's bookkeeping --------------------------------------------------------


class _Book:
    """The legs of one transaction on one locked member account, applied at commit.

    ``acct`` is the account as locked (:func:`_lock_member`, :func:`_lock_id`); lots
    passed to :meth:`debit` or :meth:`credit` may be read by :meth:`lots`,
    :meth:`lots_by_id` or as ORM objects: :meth:`commit` writes what changed either way.
    """

    def __init__(
        self,
        s: Session,
        acct: _Account | LoyaltyAccount,
        now: datetime,
        *,
        deferred: list[tuple[TextClause, dict[str, Any]]] | None = None,
    ) -> None:
        self.s, self.acct, self.now = s, acct, now
        #: where the PostgreSQL statement of :meth:`commit` is queued instead of sent, to
        #: be sent with others by :func:`_send` (for writes that read no lots: awards)
        self.deferred = deferred
        self._held: list[_Lot] | None = None
        self._new: list[_Lot] = []
        #: lots read before this transaction whose ``remaining`` it changed, by identity
        self._touched: dict[int, Any] = {}
        #: (on the member's account?, lot, program account, unit, amount)
        self.legs: list[tuple[bool, Any, str | None, str, int]] = []
        self.points = 0
        self.growth_delta = 0

    def lots(self, *, available_only: bool = False) -> list[_Lot]:
        """The account's lots still holding points, first to expire first (FIFO)."""
        if self._held is None:
            rows = _conn(self.s).execute(_HELD, {"account_id": self.acct.id})
            self._held = [_Lot(*row) for row in rows]
        return [
            lot
            for lot in self._held
            if lot.remaining > 0 and (not available_only or _spendable(lot, self.now))
        ]

    def lots_by_id(self, ids: Iterable[int]) -> dict[int, _Lot]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = _conn(self.s).execute(_LOTS_BY_ID, {"ids": wanted})
        return {lot.id: lot for lot in (_Lot(*row) for row in rows) if lot.id is not None}

    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots() if lot.available_at > self.now)

    def available(self) -> int:
        """Points the member can spend now: not pending, not past their expiry."""
        lapsed = sum(lot.remaining for lot in self.lots() if _lapsed(lot, self.now))
        return self.acct.balance + self.points - self.pending() - lapsed

    def new_lot(self, available_at: datetime, expires_at: datetime | None) -> _Lot:
        """A lot for points credited by this transaction (stored at commit)."""
        lot = _Lot(
            id=None,
            account_id=self.acct.id,
            transaction_id=None,
            points=0,
            remaining=0,
            available_at=available_at,
            expires_at=expires_at,
        )
        self._new.append(lot)
        return lot

    def _is_new(self, lot: Any) -> bool:
        return any(lot is new for new in self._new)

    def credit(self, amount: int, lot: Any) -> None:
        """Add ``amount`` to the member: first settling any debt, the rest into ``lot``."""
        debt = max(0, -(self.acct.balance + self.points))
        settled = min(amount, debt)
        if settled:
            self.legs.append((True, None, None, "points", settled))
        new = self._is_new(lot)
        if amount - settled:
            lot.remaining += amount - settled
            self.legs.append((True, lot, None, "points", amount - settled))
            if not new:
                self._touched[id(lot)] = lot
        if new:
            lot.points += amount
        self.points += amount

    def debit(self, amount: int, order: Iterable[Any], *, allow_negative: bool) -> None:
        """Take ``amount`` from the lots in ``order``; the rest becomes debt when allowed."""
        left = amount
        for lot in order:
            if left == 0:
                break
            take = min(left, lot.remaining)
            if take:
                lot.remaining -= take
                self.legs.append((True, lot, None, "points", -take))
                if not self._is_new(lot):
                    self._touched[id(lot)] = lot
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
        acct = self.acct
        after = acct.balance + self.points
        tx = {
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
        # an addition's lot is kept even when debt took all of it (it records the terms)
        new_lots = [lot for lot in self._new if lot.points > 0]
        legs = [
            (member, lot, name, unit, amount)
            for member, lot, name, unit, amount in self.legs
            if amount != 0
        ]
        touched = sorted(self._touched.values(), key=lambda lot: lot.id)
        account = {
            "b_id": acct.id,
            "b_version": acct.version,
            "b_balance": after,
            "b_growth_value": acct.growth_value + self.growth_delta,
            "b_next": acct.version + 1,
            "b_now": self.now,
        }
        conn = _conn(self.s)
        if conn.dialect.name == "postgresql" and len(new_lots) <= 1:
            updated = self._write_one_statement(conn, tx, new_lots, legs, touched, account)
        else:
            if self.deferred:
                _send(self.s, self.deferred)
            updated = self._write_statements(conn, tx, new_lots, legs, touched, account)
        if updated != 1:
            raise StateError(
                f"the account of {acct.user_id!r} in {acct.program!r} changed under its lock "
                f"(version {acct.version} is gone); nothing was written, retry the call"
            )
        for lot in touched:
            _written(lot, remaining=lot.remaining)
        _written(
            acct,
            balance=after,
            growth_value=account["b_growth_value"],
            version=account["b_next"],
        )
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

    def _write_one_statement(
        self,
        conn: Connection,
        tx: dict[str, Any],
        new_lots: list[_Lot],
        legs: list[tuple[bool, Any, str | None, str, int]],
        touched: list[Any],
        account: dict[str, Any],
    ) -> int:
        """PostgreSQL: every write of the transaction in one round trip."""
        new = new_lots[0] if new_lots else None
        params: dict[str, Any] = {**tx, **account}
        if new is not None:
            params.update(
                lot_account_id=new.account_id,
                lot_points=new.points,
                lot_remaining=new.remaining,
                lot_available_at=new.available_at,
                lot_expires_at=new.expires_at,
            )
        names_new = []
        for i, (member, lot, name, unit, amount) in enumerate(legs):
            names_new.append(lot is not None and lot is new)
            params[f"leg{i}_account_id"] = self.acct.id if member else None
            params[f"leg{i}_lot_id"] = None if lot is None or lot is new else lot.id
            params[f"leg{i}_program_account"] = name
            params[f"leg{i}_unit"] = unit
            params[f"leg{i}_amount"] = amount
        for i, lot in enumerate(touched):
            params[f"upd{i}_id"] = lot.id
            params[f"upd{i}_remaining"] = lot.remaining
        statement = _pg_write(new is not None, tuple(names_new), len(touched))
        if self.deferred is not None:
            self.deferred.append((statement, params))
            return 1  # the statement itself fails when the account's version is gone
        tx_id, updated = _send_write(conn, statement, params).one()
        if new is not None:
            new.transaction_id = tx_id
        return int(updated)

    def _write_statements(
        self,
        conn: Connection,
        tx: dict[str, Any],
        new_lots: list[_Lot],
        legs: list[tuple[bool, Any, str | None, str, int]],
        touched: list[Any],
        account: dict[str, Any],
    ) -> int:
        """One statement per table (SQLite, where a statement is no round trip; and a
        PostgreSQL transaction with several new lots)."""
        tx_id = conn.execute(_INSERT_TX, tx).scalar_one()
        for lot in new_lots:
            lot.transaction_id = tx_id
            lot.id = conn.execute(
                _INSERT_LOT,
                {name: getattr(lot, name) for name in _LOT_INSERT_COLUMNS},
            ).scalar_one()
        if legs:
            conn.execute(
                _INSERT_LEGS,
                [
                    {
                        "transaction_id": tx_id,
                        "account_id": self.acct.id if member else None,
                        "lot_id": None if lot is None else lot.id,
                        "program_account": name,
                        "unit": unit,
                        "amount": amount,
                    }
                    for member, lot, name, unit, amount in legs
                ],
            )
        if touched:
            conn.execute(
                _UPDATE_LOT, [{"b_id": lot.id, "b_remaining": lot.remaining} for lot in touched]
            )
        return conn.execute(_UPDATE_ACCOUNT, account).rowcount


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
    if _conn(s).execute(_KEY_ID, {"key": key}).scalar() is None:
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
) -> _Account | None:
    """The member's account, locked (``None`` when it has none and ``create`` is false;
    with ``create`` the first write opens it at balance 0, the insert holding its lock)."""
    conn = _conn(s)
    names = {"program": program, "user_id": user_id}
    row = conn.execute(_LOCK_MEMBER, names).first()
    if row is None and create:
        opened = {"balance": 0, "growth_value": 0, "version": 0, "opened_at": now}
        row = conn.execute(_OPEN[conn.dialect.name], {**names, **opened, "updated_at": now}).first()
        if row is None:  # a concurrent write opened it first: wait for its lock
            row = conn.execute(_LOCK_MEMBER, names).first()
    return None if row is None else _account(row)


def _open_member(s: Session, program: str, user_id: str, now: datetime) -> _Account:
    """The member's account, locked; opened (balance 0) by the first write."""
    acct = _lock_member(s, program, user_id, now, create=True)
    if acct is None:  # pragma: no cover - the insert above or a concurrent one made it
        raise StateError(f"the account of {user_id!r} in {program!r} could not be opened")
    return acct


def _open_members(
    s: Session, program: str, user_ids: Iterable[str], now: datetime
) -> dict[str, _Account]:
    """Several members' accounts, locked in sorted id order; the missing ones are opened
    first, in sorted user order (two writers opening the same members then wait for each
    other instead of deadlocking)."""
    conn = _conn(s)
    wanted = sorted(set(user_ids))
    names = {"program": program, "user_ids": wanted}
    have = set(conn.execute(_MEMBER_USERS, names).scalars())
    missing = [user_id for user_id in wanted if user_id not in have]
    if missing:
        opened = {"balance": 0, "growth_value": 0, "version": 0, "opened_at": now}
        conn.execute(
            _OPEN_MANY[conn.dialect.name],
            [{"program": program, "user_id": u, **opened, "updated_at": now} for u in missing],
        )
    ids = conn.execute(_MEMBER_IDS, names).scalars().all()
    return {acct.user_id: acct for acct in _lock_ids(s, ids)}


def _find_keys(s: Session, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are written already (one lookup)."""
    return set(_conn(s).execute(_KEYS_WRITTEN, {"keys": sorted(set(keys))}).scalars())


def _lock_id(s: Session, account_id: int) -> _Account:
    """Lock one account by id (a write that touched several would lock them in sorted id
    order: :func:`_lock_ids`)."""
    return _lock_ids(s, [account_id])[0]


def _lock_ids(s: Session, account_ids: Iterable[int]) -> list[_Account]:
    """Lock accounts in sorted id order (one statement: the rows are locked as read, in
    the ``ORDER BY``)."""
    ids = sorted(set(account_ids))
    return [_account(row) for row in _conn(s).execute(_LOCK_IDS, {"ids": ids})]


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
