"""The points ledger: award, redeem, reverse, adjust, add growth value, expire, read.

Each write is one short transaction in ``ws.state``: the member's account row is locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serializes writers,
as SQLAlchemy drops the row lock there), the idempotency key is looked up under the lock
(a replay is answered from the first transaction's row and writes nothing), and the
transaction row, its lot and its legs are inserted and the account's balance and
version updated together. (A separate read before the lock, to spare replays the write
lock, cost new writes a fifth to a quarter of their rate, so there is none.)

A race on the key that the lock cannot see (the same key for two members) ends at the
unique index; the write is then retried once and answered as a replay or refused.

Points are integers. A member's points sit in *lots* (one per addition, with
``available_at`` and ``expires_at``); redemptions take from available lots whose expiry
comes first, expiry takes what is left of each expired lot. A debit that finds no lot
to take from (a reversal or a negative adjustment, only where the program allows
negative balances) is a leg without a lot: the member's debt, settled first by the next
credit.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, as_utc, check_timezone
from liucun.loyalty._book import (
    EXPIRY_KEY_PREFIX,
    _allows_negative,
    _available_from,
    _aware,
    _Book,
    _check_amount,
    _check_ids,
    _check_key,
    _fifo,
    _find,
    _find_keys,
    _in_program,
    _lapsed,
    _lock_id,
    _lock_member,
    _open_member,
    _open_members,
    _replay,
    _send,
    _when_text,
    _write,
    expiry_cutoff,
)
from liucun.loyalty._models import (
    UNTIL_RELEASED,
    Account,
    Entry,
    ExpiryResult,
    InsufficientPoints,
    LedgerError,
    Lot,
    Posting,
)
from liucun.loyalty._partial import partly_reversed_by
from liucun.loyalty._tier_store import member_tier
from liucun.state import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyProgramPolicy,
    LoyaltyTransaction,
)

DEFAULT_PROGRAM = "default"
#: Kinds that :func:`reverse` refuses, and what to do instead.
_IRREVERSIBLE = {
    "expiry": "write a new award or adjustment instead",
    "reversal": "re-issue the original operation under a new key instead",
    "release": "reverse the award itself if its points must go",
}

# -- public API ---------------------------------------------------------------------------


def award(
    ws: Any,
    user_id: str,
    points: int,
    *,
    key: str,
    reason: str | None = None,
    program: str = DEFAULT_PROGRAM,
    expires_at: datetime | None = None,
    available_at: datetime | timedelta | str | None = None,
    growth: int = 0,
    earned_at: datetime | None = None,
) -> Posting:
    """Add ``points`` to ``user_id``'s account (opened on first use) under ``key``.

    ``available_at`` makes the points pending until then: an instant, a duration from
    now (``timedelta(days=7)``, e.g. until an order can no longer be returned), or
    :data:`ON_RELEASE` (until a later action calls :func:`release`).
    ``expires_at`` is when what is left of them expires (see :func:`valid_until` for day
    or month rounding). ``growth`` adds growth value in the same transaction (see
    :func:`add_growth`); ``earned_at`` is when it was earned (an accrued order's time,
    default now): tiers count growth in their window by it. Replaying ``key`` with the
    same arguments returns the first result; with other arguments it raises
    :class:`IdempotencyConflict`.
    """
    one = _Award(user_id, points, key, reason, program, expires_at, available_at, growth, earned_at)

    def run(s: Session, now: datetime) -> Posting:
        acct = _open_member(s, program, user_id, now)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, one.request)
        return one.book(s, acct, now)

    return _write(ws, key, one.request, run)


def award_many(
    ws: Any, items: Iterable[Mapping[str, Any]], *, program: str = DEFAULT_PROGRAM
) -> list[Posting]:
    """Many awards in one transaction (one commit): what :func:`award` does for each
    item, a mapping of its arguments (``user_id``, ``points``, ``key`` and optionally
    ``reason``, ``expires_at``, ``available_at``, ``growth``, ``earned_at``).

    For callers with many awards at once (imports, journeys): the accounts are opened
    and locked once, in sorted id order, and the commit's flush is paid once. The batch
    is all or nothing: an invalid item or a key reused with other arguments
    (:class:`IdempotencyConflict`) refuses the whole batch with a sentence naming the
    item, and nothing is written. Each key stays idempotent on its own: a key written
    before (or earlier in the same batch) with the same arguments is answered as a
    replay. Returns the postings in the order of ``items``.
    """
    awards = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise LedgerError(
                f"award_many: item {i} must be a mapping of award's arguments, e.g. "
                f"{{'user_id': 'u1', 'points': 10, 'key': 'order-1:points'}}, got {item!r}"
            )
        unknown = sorted(set(item) - _AWARD_ITEM)
        missing = [name for name in ("user_id", "points", "key") if name not in item]
        if unknown or missing:
            wrong = [f"unknown argument(s) {', '.join(unknown)}"] if unknown else []
            wrong += [f"no {', '.join(missing)}"] if missing else []
            raise LedgerError(
                f"award_many: item {i} has {' and '.join(wrong)}; an item takes user_id, "
                "points and key, and optionally reason, expires_at, available_at, growth "
                "and earned_at; nothing was written",
                hint=Hint(option="items", example="{'user_id': 'u1', 'points': 10, 'key': 'k1'}"),
            )
        try:
            awards.append(
                _Award(
                    item["user_id"],
                    item["points"],
                    item["key"],
                    item.get("reason"),
                    program,
                    item.get("expires_at"),
                    item.get("available_at"),
                    item.get("growth", 0),
                    item.get("earned_at"),
                )
            )
        except LedgerError as exc:
            raise LedgerError(
                f"award_many: item {i}: {exc}; nothing was written", hint=exc.hint
            ) from None
    if not awards:
        return []

    def run(s: Session, now: datetime) -> list[Posting]:
        accounts = _open_members(s, program, [one.user_id for one in awards], now)
        written = _find_keys(s, [one.key for one in awards])
        postings = []
        queued: list[Any] = []  # PostgreSQL: the writes, sent together (see _Book.deferred)
        for one in awards:
            if one.key in written:
                _send(s, queued)
                done = _find(s, one.key)
                assert done is not None  # written before, or earlier in this transaction
                postings.append(_replay(s, done, one.request))
            else:
                postings.append(one.book(s, accounts[one.user_id], now, deferred=queued))
                written.add(one.key)
        _send(s, queued)
        return postings

    return _write(ws, awards[0].key, awards[0].request, run)


#: What an item of :func:`award_many` may name (award's arguments but the program).
_AWARD_ITEM = frozenset(
    {"user_id", "points", "key", "reason", "expires_at", "available_at", "growth", "earned_at"}
)


class _Award:
    """One award's arguments, checked, and its request (what a replay must match)."""

    def __init__(self, user_id: str, points: int, key: str, *terms: Any) -> None:
        """``terms``: reason, program, expires_at, available_at, growth, earned_at (as
        :func:`award` takes them)."""
        reason, program, expires_at, available_at, growth, earned_at = terms
        _check_amount(points, "points")
        _check_amount(growth, "growth", allow_zero=True)
        _check_ids(user_id, program, key)
        self.user_id, self.points, self.key, self.reason = user_id, points, key, reason
        self.growth, self.available_at = growth, available_at
        self.request = {
            "op": "award",
            "user_id": user_id,
            "program": program,
            "points": points,
            "growth": growth,
            "reason": reason,
            "expires_at": _when_text(expires_at, "expires_at"),
            "available_at": _when_text(available_at, "available_at"),
        }
        self.earned = _earned_request(self.request, earned_at)
        self.expires = None if expires_at is None else _aware(expires_at, "expires_at")

    def book(self, s: Session, acct: Any, now: datetime, *, deferred: Any = None) -> Posting:
        """Write the award on ``acct`` (locked; its key not written yet)."""
        available = _available_from(self.available_at, now)
        starts = now if available == UNTIL_RELEASED else available
        if self.expires is not None and self.expires <= starts:
            raise LedgerError(
                f"expires_at {self.expires.isoformat()} is not after the points become "
                f"available ({starts.isoformat()}); key {self.key!r} was not used",
                hint=Hint(option="expires_at"),
            )
        book = _Book(s, acct, now, deferred=deferred)
        lot = book.new_lot(available, self.expires)
        book.credit(self.points, lot)
        book.program_leg("issued", -self.points)
        if self.growth:
            book.growth(self.growth)
            book.program_leg("growth", -self.growth, unit="growth")
        return book.commit(self.key, "addition", self.request, self.reason, earned_at=self.earned)


def add_growth(
    ws: Any,
    user_id: str,
    growth: int,
    *,
    key: str,
    reason: str | None = None,
    program: str = DEFAULT_PROGRAM,
    earned_at: datetime | None = None,
) -> Posting:
    """Add growth value (成长值) to ``user_id``'s account under ``key``.

    Growth value is earned, never spent: no redemption takes it; only a reversal of the
    transaction that earned it removes it. Tiers are computed from it, not from points;
    ``earned_at`` (default now) places it in their window.
    """
    _check_amount(growth, "growth")
    _check_ids(user_id, program, key)
    request = {
        "op": "add_growth",
        "user_id": user_id,
        "program": program,
        "growth": growth,
        "reason": reason,
    }
    earned = _earned_request(request, earned_at)

    def run(s: Session, now: datetime) -> Posting:
        acct = _open_member(s, program, user_id, now)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, request)
        book = _Book(s, acct, now)
        book.growth(growth)
        book.program_leg("growth", -growth, unit="growth")
        return book.commit(key, "growth", request, reason, earned_at=earned)

    return _write(ws, key, request, run)


def redeem(
    ws: Any,
    user_id: str,
    points: int,
    *,
    key: str,
    reason: str | None = None,
    program: str = DEFAULT_PROGRAM,
) -> Posting:
    """Take ``points`` from ``user_id``'s available points, oldest expiry first (FIFO).

    Raises :class:`InsufficientPoints` (nothing written) when fewer are available;
    pending points cannot be redeemed. No program policy lets a redemption overdraw.
    """
    _check_amount(points, "points")
    _check_ids(user_id, program, key)
    request = {
        "op": "redeem",
        "user_id": user_id,
        "program": program,
        "points": points,
        "reason": reason,
    }

    def run(s: Session, now: datetime) -> Posting:
        acct = _lock_member(s, program, user_id, now, create=False)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, request)
        if acct is None:
            raise InsufficientPoints(
                f"user {user_id!r} has no points in program {program!r} (no account yet), "
                f"fewer than the {points:,} to redeem; nothing was redeemed"
            )
        book = _Book(s, acct, now)
        available = book.available()
        if points > available:
            pending = book.pending()
            more = f"; {pending:,} more are pending" if pending else ""
            raise InsufficientPoints(
                f"user {user_id!r} has {available:,} points available in program "
                f"{program!r}, fewer than the {points:,} to redeem{more}; nothing was "
                f"redeemed (key {key!r} was not used)"
            )
        book.debit(points, book.lots(available_only=True), allow_negative=False)
        book.program_leg("redeemed", points)
        return book.commit(key, "redemption", request, reason)

    return _write(ws, key, request, run)


def adjust(
    ws: Any,
    user_id: str,
    points: int,
    *,
    key: str,
    reason: str,
    program: str = DEFAULT_PROGRAM,
) -> Posting:
    """Correct ``user_id``'s balance by ``points`` (positive or negative) with a reason.

    A positive adjustment is a lot that is available now and never expires; a negative
    one takes from lots like a redemption (pending ones too) and may go below zero only
    where the program allows negative balances (:func:`set_policy`).
    """
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise LedgerError(f"points must be a non-zero whole number, got {points!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise LedgerError(
            "an adjustment needs a reason (who asked and why), e.g. reason='ticket 4411'",
            hint=Hint(option="reason", example="'ticket 4411'"),
        )
    _check_ids(user_id, program, key)
    request = {
        "op": "adjust",
        "user_id": user_id,
        "program": program,
        "points": points,
        "reason": reason,
    }

    def run(s: Session, now: datetime) -> Posting:
        acct = _open_member(s, program, user_id, now)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, request)
        book = _Book(s, acct, now)
        if points > 0:
            book.credit(points, book.new_lot(now, None))
        else:
            book.debit(-points, book.lots(), allow_negative=_allows_negative(s, program))
        book.program_leg("adjustment", -points)
        return book.commit(key, "adjustment", request, reason)

    return _write(ws, key, request, run)


def reverse(ws: Any, original_key: str, *, key: str, reason: str | None = None) -> Posting:
    """Undo the transaction written under ``original_key`` with opposite legs, under ``key``.

    A reversed addition takes its points back from its own lot first, then from the
    member's other lots; what is missing is refused (:class:`InsufficientPoints`) unless
    the program allows negative balances. A reversed redemption puts the points back in
    the lots they came from (an expired lot's points then expire at the next
    :func:`expire`). Expiries and reversals cannot be reversed; nothing is reversed twice.
    """
    if not isinstance(original_key, str) or not original_key:
        raise LedgerError("original_key must be the key of an earlier ledger write")
    _check_key(key)
    request = {"op": "reverse", "original_key": original_key, "reason": reason}

    def run(s: Session, now: datetime) -> Posting:
        original = _find(s, original_key)
        if original is None:
            if (done := _find(s, key)) is not None:
                return _replay(s, done, request)
            raise LedgerError(
                f"no ledger write has the key {original_key!r}, so there is nothing to "
                "reverse; check the key (liucun loyalty account USER lists them)"
            )
        acct = _lock_id(s, original.account_id)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, request)
        if original.kind in _IRREVERSIBLE:
            article = "an" if original.kind == "expiry" else "a"
            raise LedgerError(
                f"the write {original_key!r} is {article} {original.kind}, which cannot be "
                f"reversed; {_IRREVERSIBLE[original.kind]}"
            )
        earlier = s.scalar(
            select(LoyaltyTransaction.key).where(LoyaltyTransaction.reverses_id == original.id)
        )
        if earlier is not None:
            raise LedgerError(
                f"the write {original_key!r} was already reversed by {earlier!r}; "
                "nothing was written"
            )
        if shares := partly_reversed_by(s, original):
            raise LedgerError(
                f"shares of the write {original_key!r} were already reversed by "
                f"{', '.join(map(repr, shares))}; reverse the rest with reverse_share "
                "(share 1); nothing was written"
            )
        book = _Book(s, acct, now)
        legs = s.scalars(
            select(LoyaltyEntry)
            .where(LoyaltyEntry.transaction_id == original.id)
            .order_by(LoyaltyEntry.id)
        ).all()
        if original.points > 0:  # an addition or a positive adjustment: take the points back
            own = s.scalar(select(LoyaltyLot).where(LoyaltyLot.transaction_id == original.id))
            order = book.lots()
            if own is not None:
                order = [own, *[lot for lot in order if lot.id != own.id]]
            book.debit(original.points, order, allow_negative=_allows_negative(s, acct.program))
        else:  # a redemption or a negative adjustment: put the points back where they were
            lots = book.lots_by_id(leg.lot_id for leg in legs if leg.lot_id is not None)
            for leg in legs:
                if leg.account_id is not None and leg.unit == "points" and leg.amount < 0:
                    target = lots.get(leg.lot_id) if leg.lot_id is not None else None
                    book.credit(-leg.amount, target or book.new_lot(now, None))
        if original.growth:
            book.growth(-original.growth)
        for leg in legs:
            if leg.program_account is not None:
                book.program_leg(leg.program_account, -leg.amount, unit=leg.unit)
        return book.commit(key, "reversal", request, reason, reverses=original)

    return _write(ws, key, request, run)


def release(
    ws: Any,
    original_key: str,
    *,
    key: str,
    reason: str | None = None,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Posting:
    """Make the points of the award under ``original_key`` (made with
    ``available_at=ON_RELEASE``) available now: the later action they waited for happened.

    ``available_at`` (not after now) is when it happened, if earlier than now (an
    accrual run releasing an order delivered yesterday); ``expires_at`` sets the lot's
    expiry, counted from then. The transaction (kind ``release``) moves no points, so it
    has no legs; it records when and why the lot became available. Releasing twice is
    refused.
    """
    if not isinstance(original_key, str) or not original_key:
        raise LedgerError("original_key must be the key of an award made with ON_RELEASE")
    _check_key(key)
    request: dict[str, Any] = {"op": "release", "original_key": original_key, "reason": reason}
    since = None if available_at is None else _aware(available_at, "available_at")
    until = None if expires_at is None else _aware(expires_at, "expires_at")
    if since is not None:  # recorded only when given: earlier releases keep their request
        request["available_at"] = since.isoformat()
    if until is not None:
        request["expires_at"] = until.isoformat()

    def run(s: Session, now: datetime) -> Posting:
        original = _find(s, original_key)
        if original is None:
            raise LedgerError(
                f"no ledger write has the key {original_key!r}, so nothing can be released"
            )
        acct = _lock_id(s, original.account_id)
        if (done := _find(s, key)) is not None:
            return _replay(s, done, request)
        lot = s.scalar(select(LoyaltyLot).where(LoyaltyLot.transaction_id == original.id))
        if lot is None or lot.available_at != UNTIL_RELEASED:
            raise LedgerError(
                f"the write {original_key!r} has no points waiting for a release (only an "
                "award made with available_at=ON_RELEASE has, until it is released once)"
            )
        if since is not None and since > now:
            raise LedgerError(
                f"available_at {since.isoformat()} is after now ({now.isoformat()}): a "
                "release records an action that happened; award with an instant instead"
            )
        starts = now if since is None else since
        if until is not None and until <= starts:
            raise LedgerError(
                f"expires_at {until.isoformat()} is not after the points become available "
                f"({starts.isoformat()}); key {key!r} was not used",
                hint=Hint(option="expires_at"),
            )
        lot.available_at = starts
        if until is not None:
            lot.expires_at = until
        return _Book(s, acct, now).commit(key, "release", request, reason)

    return _write(ws, key, request, run)


def expire(
    ws: Any,
    *,
    as_of: datetime | date,
    program: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExpiryResult:
    """Expire what is left of every lot whose ``expires_at`` is at or before ``as_of``
    (in every program, or only in ``program``).

    One transaction per account (key ``expiry:<account id>:v<version>``). Idempotent: a
    second run finds nothing left to expire and writes nothing. ``as_of`` may not lie
    after the workspace clock's now. ``on_progress(done_accounts, total_accounts)`` is
    called before each account and once at the end.
    """
    cutoff = expiry_cutoff(ws, as_of, "points")
    store = ws.state
    with store.read() as s:
        account_ids = sorted(
            s.scalars(
                _in_program(
                    select(LoyaltyLot.account_id)
                    .where(LoyaltyLot.remaining > 0, LoyaltyLot.expires_at <= cutoff)
                    .distinct(),
                    program,
                )
            ).all()
        )
    points = lots = accounts = 0
    keys: list[str] = []
    for done, account_id in enumerate(account_ids):
        if on_progress is not None:
            on_progress(done, len(account_ids))
        with store.write() as s:
            now = as_utc(ws.clock.now())
            acct = _lock_id(s, account_id)
            expiring = s.scalars(
                select(LoyaltyLot)
                .where(
                    LoyaltyLot.account_id == account_id,
                    LoyaltyLot.remaining > 0,
                    LoyaltyLot.expires_at <= cutoff,
                )
                .order_by(LoyaltyLot.expires_at, LoyaltyLot.id)
            ).all()
            if not expiring:
                continue  # another run expired them first
            total = sum(lot.remaining for lot in expiring)
            key = f"{EXPIRY_KEY_PREFIX}{acct.id}:v{acct.version}"
            request = {
                "op": "expire",
                "account_id": acct.id,
                "as_of": cutoff.isoformat(),
                "points": total,
            }
            book = _Book(s, acct, now)
            book.debit(total, list(expiring), allow_negative=False)
            book.program_leg("expired", total)
            book.commit(key, "expiry", request, f"expired as of {cutoff.isoformat()}")
        points += total
        lots += len(expiring)
        accounts += 1
        keys.append(key)
    if on_progress is not None:
        on_progress(len(account_ids), len(account_ids))
    return ExpiryResult(as_of=cutoff, points=points, accounts=accounts, lots=lots, keys=keys)


def account(
    ws: Any,
    user_id: str,
    program: str = DEFAULT_PROGRAM,
    *,
    as_of: datetime | None = None,
) -> Account:
    """``user_id``'s account: spendable and pending points, growth value, the effective
    tier (a temporary upgrade while it lasts, else the tier of the last review; None
    before any review), its entries (oldest first) and the lots still holding points. A
    member never written to has an empty account (nothing is opened by reading)."""
    now = as_utc(as_of) if as_of is not None else as_utc(ws.clock.now())
    tier = member_tier(ws, user_id, program, at=now)
    with ws.state.read() as s:
        acct = s.scalar(
            select(LoyaltyAccount).where(
                LoyaltyAccount.program == program, LoyaltyAccount.user_id == user_id
            )
        )
        if acct is None:
            return Account(
                user_id=user_id,
                program=program,
                balance=0,
                pending=0,
                posted=0,
                growth_value=0,
                version=0,
                as_of=now,
                tier=tier,
            )
        txs = s.scalars(
            select(LoyaltyTransaction)
            .where(LoyaltyTransaction.account_id == acct.id)
            .order_by(LoyaltyTransaction.id)
        ).all()
        keys = {t.id: t.key for t in txs}
        lots = s.scalars(
            select(LoyaltyLot)
            .where(LoyaltyLot.account_id == acct.id, LoyaltyLot.remaining > 0)
            .order_by(*_fifo())
        ).all()
    pending = sum(lot.remaining for lot in lots if lot.available_at > now)
    lapsed = sum(lot.remaining for lot in lots if _lapsed(lot, now))
    return Account(
        user_id=user_id,
        program=program,
        balance=acct.balance - pending - lapsed,
        pending=pending,
        posted=acct.balance,
        growth_value=acct.growth_value,
        version=acct.version,
        as_of=now,
        tier=tier,
        entries=[
            Entry(
                key=t.key,
                kind=t.kind,
                points=t.points,
                growth=t.growth,
                balance_after=t.balance_after,
                created_at=t.created_at,
                reason=t.reason,
                reverses=keys.get(t.reverses_id) if t.reverses_id is not None else None,
            )
            for t in txs
        ],
        lots=[
            Lot(
                points=lot.points,
                remaining=lot.remaining,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                key=keys.get(lot.transaction_id, ""),
            )
            for lot in lots
        ],
    )


def set_policy(ws: Any, program: str = DEFAULT_PROGRAM, *, allow_negative: bool) -> None:
    """Set ``program``'s negative-balance policy (forbidden by default).

    With ``allow_negative=True`` a reversal or a negative adjustment may take a member
    below zero (a refund after the points were spent); redemptions never overdraw.
    """
    _check_ids("-", program, "-")
    with ws.state.write() as s:
        store_policy(s, program, allow_negative=allow_negative, now=as_utc(ws.clock.now()))


def store_policy(s: Session, program: str, *, allow_negative: bool, now: datetime) -> None:
    """Write ``program``'s policy in the open transaction ``s`` (no row change when it is
    already so)."""
    row = s.scalar(select(LoyaltyProgramPolicy).where(LoyaltyProgramPolicy.name == program))
    if row is None:
        s.add(LoyaltyProgramPolicy(name=program, allow_negative=allow_negative, updated_at=now))
    elif row.allow_negative != allow_negative:
        row.allow_negative = allow_negative
        row.updated_at = now


def valid_until(
    start: datetime,
    *,
    days: int = 0,
    months: int = 0,
    round_to: str | None = None,
    timezone: str = "UTC",
) -> datetime:
    """When points awarded at ``start`` expire: ``months`` then ``days`` later, rounded up
    to the end of that day (``round_to="day"``) or month (``"month"``) in ``timezone``.

    The end is exclusive: "the end of 31 January" is midnight starting 1 February, local.

    >>> from datetime import UTC
    >>> valid_until(datetime(2026, 1, 31, 15, tzinfo=UTC), months=1).isoformat()
    '2026-02-28T15:00:00+00:00'
    >>> valid_until(datetime(2026, 3, 10, 15, tzinfo=UTC), months=12, round_to="month").isoformat()
    '2027-04-01T00:00:00+00:00'
    >>> valid_until(datetime(2026, 3, 10, 15, tzinfo=UTC), days=30, round_to="day",
    ...             timezone="Asia/Shanghai").isoformat()
    '2026-04-09T16:00:00+00:00'
    """
    if round_to not in (None, "day", "month"):
        raise ConfigError(
            f"round_to must be None, 'day' or 'month', got {round_to!r}",
            hint=Hint(option="round_to", example="'month'"),
        )
    zone = ZoneInfo(check_timezone(timezone))
    local = _aware(start, "start").astimezone(zone)
    if months:
        month_index = local.month - 1 + months
        year, month = local.year + month_index // 12, month_index % 12 + 1
        day = min(local.day, calendar.monthrange(year, month)[1])
        local = local.replace(year=year, month=month, day=day)
    local = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone)
    if round_to == "day" and local.timetz().replace(tzinfo=None) != time():
        local = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
    elif round_to == "month":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        local = datetime(year, month, 1, tzinfo=zone)
    return as_utc(local)


def _earned_request(request: dict[str, Any], earned_at: datetime | None) -> datetime | None:
    """``earned_at`` checked, and recorded in ``request`` when given (a write made
    without it keeps the request it always had, so its replays still match)."""
    if earned_at is None:
        return None
    earned = _aware(earned_at, "earned_at")
    request["earned_at"] = earned.isoformat()
    return earned
