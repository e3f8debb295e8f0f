"""Accrual's write path: many ledger writes per transaction, equal in effect to one call
per write.

:func:`apply_batch` applies accrual's operations (:mod:`liucun.loyalty._ops`),
``batch_size`` of them per transaction, and books exactly the same transactions, lots,
legs and balances as one ledger call per operation (``apply_each``; a test compares the
two entry by entry on both backends):

1. the keys of the batch are looked up in one query: a key already written is a replay
   (the same request) or a *drift* (another request: what the ledger booked stands);
2. the members' accounts are opened in one insert, then locked with the originals'
   accounts in sorted id order (``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
   already holds the write lock), and the lots, earlier share reversals and whole
   reversals the batch needs are read in one query each;
3. each operation is booked in memory in order, with the same rules as the single calls
   (debt settled first by a credit, the original's lot first then FIFO by expiry for a
   reversal, the return policy on what it may take);
4. transactions, lots and legs are inserted in bulk with ids allocated up front
   (:mod:`liucun.loyalty._bulk`: ``COPY`` on PostgreSQL, ``executemany`` on SQLite);
   changed lots and each account are updated once.

A key taken by a concurrent writer between the lookup and the insert ends at the unique
index; the batch is then rolled back and run again (its replays are found the second
time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.loyalty._book import _allows_negative, _canonical
from liucun.loyalty._bulk import (
    insert_missing,
    insert_rows,
    next_ids,
    select_in,
    update_rows,
)
from liucun.loyalty._models import (
    ON_RELEASE,
    UNTIL_RELEASED,
)
from liucun.loyalty._ops import (
    Earn,
    Op,
    Outcome,
    Release,
    ShareBack,
    _op_name,
    earn_request,
    release_request,
)
from liucun.loyalty._partial import (
    SHAREABLE,
    allowed_take,
    claim,
    partial_reversals,
    share_request,
)
from liucun.state import LoyaltyAccount, LoyaltyEntry, LoyaltyLot, LoyaltyTransaction

_TX = cast(Table, LoyaltyTransaction.__table__)
_LOT = cast(Table, LoyaltyLot.__table__)
_ENTRY = cast(Table, LoyaltyEntry.__table__)
_ACCT = cast(Table, LoyaltyAccount.__table__)
_RETRIES = 3


# -- the batch path ---------------------------------------------------------------------


class _Rollback(Exception):
    """Ends a dry run's transaction (nothing it wrote is kept)."""


def apply_batch(
    ws: Any,
    ops: Sequence[Op],
    *,
    program: str,
    batch_size: int = 2000,
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Apply ``ops`` in order, ``batch_size`` per transaction (see the module docstring).

    With ``dry_run`` every batch runs in one transaction that is rolled back: the
    outcomes are what a real run would do, and nothing is written.
    """
    store = ws.state
    chunks = [ops[i : i + batch_size] for i in range(0, len(ops), max(1, batch_size))]
    out: list[Outcome] = []

    def progress() -> None:
        if on_progress is not None:
            on_progress(len(out), len(ops))

    progress()
    if dry_run:
        try:
            with store.write() as s:
                for chunk in chunks:
                    out.extend(_Chunk(s, program, as_utc(ws.clock.now())).apply(chunk))
                    progress()
                raise _Rollback
        except _Rollback:
            pass
        return out
    for chunk in chunks:
        attempt = 0
        while True:
            attempt += 1
            try:
                with store.write() as s:
                    done = _Chunk(s, program, as_utc(ws.clock.now())).apply(chunk)
                break
            except IntegrityError:  # a concurrent writer took one of the keys
                if attempt >= _RETRIES:
                    raise
        out.extend(done)
        progress()
    return out


class _Acct:
    __slots__ = ("balance", "changed", "growth", "id", "lots", "program", "user_id", "version")

    def __init__(self, row: Any) -> None:
        self.id, self.user_id, self.program = row.id, row.user_id, row.program
        self.balance, self.growth, self.version = row.balance, row.growth_value, row.version
        self.lots: list[_Lot] = []
        self.changed = False


class _Lot:
    __slots__ = ("available_at", "expires_at", "id", "points", "remaining", "seq", "tx")

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def fifo(self) -> tuple[Any, ...]:
        e = self.expires_at
        return (e is None, e or UNTIL_RELEASED, self.available_at, self.seq)


@dataclass
class _Original:
    """A write a share reversal or a release refers to (in the ledger or this batch)."""

    key: str
    id: int | None
    tx: int | None  # index of the new transaction in this batch
    kind: str
    account_id: int
    points: int
    growth: int
    lot: _Lot | None = None
    whole: bool = False


class _Chunk:
    """One batch: the reads, the bookkeeping in memory and the bulk writes."""

    def __init__(self, s: Session, program: str, now: datetime) -> None:
        self.s, self.program, self.now = s, program, now
        self.txs: list[dict[str, Any]] = []
        self.legs: list[tuple[int, int | None, _Lot | None, str | None, str, int]] = []
        self.new_lots: list[_Lot] = []
        #: stored lots this batch changed (updated once at the end)
        self.touched: dict[int, _Lot] = {}
        #: earlier share reversals of the batch's originals: original key → (id, request)
        self.shares: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        #: new lots sort after every stored one in FIFO ties, as their ids will
        self.next_seq = 2**62

    # -- reads --------------------------------------------------------------------------

    def _rows(self, columns: Sequence[Any], column: Any, values: Sequence[Any]) -> list[Any]:
        return select_in(self.s, columns, column, values)

    def _open(self, users: list[str]) -> dict[str, int]:
        """Account ids of ``users`` in the program, opening those without one (in the
        order the operations name them, as one call per operation would)."""
        cols = (_ACCT.c.id, _ACCT.c.user_id)
        mine = _ACCT.c.program == self.program
        known = {r.user_id: r.id for r in select_in(self.s, cols, _ACCT.c.user_id, users, mine)}
        missing = [u for u in users if u not in known]
        if missing:
            ids = next_ids(self.s, _ACCT, len(missing))
            rows = [
                {
                    "id": i,
                    "program": self.program,
                    "user_id": u,
                    "balance": 0,
                    "growth_value": 0,
                    "version": 0,
                    "opened_at": self.now,
                    "updated_at": self.now,
                }
                for i, u in zip(ids, missing, strict=True)
            ]
            insert_missing(self.s, _ACCT, rows, ["program", "user_id"])
            for r in select_in(self.s, cols, _ACCT.c.user_id, missing, mine):
                known[r.user_id] = r.id
        return known

    def _lock(self, ids: Iterable[int]) -> dict[int, _Acct]:
        """The accounts ``ids``, locked in sorted id order."""
        cols = (_ACCT.c.id, _ACCT.c.user_id, _ACCT.c.program, _ACCT.c.balance)
        cols += (_ACCT.c.growth_value, _ACCT.c.version)
        rows = select_in(self.s, cols, _ACCT.c.id, sorted(set(ids)), lock=True)
        return {r.id: _Acct(r) for r in rows}

    # -- the batch ------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> list[Outcome]:
        s = self.s
        keys = [op.key for op in ops]
        tx_cols = (_TX.c.id, _TX.c.key, _TX.c.kind, _TX.c.account_id, _TX.c.points)
        tx_cols += (_TX.c.growth, _TX.c.request)
        done = {r.key: r for r in self._rows(tx_cols, _TX.c.key, keys)}
        users = list(
            dict.fromkeys(op.user_id for op in ops if isinstance(op, Earn) and op.key not in done)
        )
        account_of = self._open(users) if users else {}
        refs = sorted({op.original_key for op in ops if not isinstance(op, Earn)})
        originals = {
            r.key: _Original(r.key, r.id, None, r.kind, r.account_id, r.points, r.growth)
            for r in self._rows(tx_cols, _TX.c.key, refs)
        }
        accts = self._lock([*account_of.values(), *(o.account_id for o in originals.values())])
        # the keys again, under the locks (a concurrent run may have written some)
        done = {r.key: r for r in self._rows(tx_cols, _TX.c.key, keys)}
        referred = set(refs)
        needs_lots = {o.account_id for o in originals.values()}
        needs_lots |= {
            account_of[op.user_id]
            for op in ops
            if isinstance(op, Earn) and op.key in referred and op.user_id in account_of
        }
        self._load_lots(accts, sorted(needs_lots), originals)
        self.shares = partial_reversals(s, sorted(needs_lots))
        previous = {
            key: (
                max(Fraction(r["points_share"]) for _, r in rows),
                max(Fraction(r["growth_share"]) for _, r in rows),
            )
            for key, rows in self.shares.items()
        }
        ids = [o.id for o in originals.values() if o.id is not None]
        wholly = {r.reverses_id for r in self._rows((_TX.c.reverses_id,), _TX.c.reverses_id, ids)}
        for o in originals.values():
            o.whole = o.id in wholly
        negative = _allows_negative(s, self.program)
        out: list[Outcome] = []
        written: dict[str, str] = {}
        for op in ops:
            kind = _op_name(op)
            request = self._request(op)
            first = done.get(op.key)
            if first is not None or op.key in written:
                text = first.request if first is not None else written[op.key]
                same = text == _canonical(request)
                if same and first is not None:
                    out.append(self._replayed(op, kind, first, originals, request))
                else:
                    out.append(Outcome(op.key, op.rule, kind, "replayed" if same else "drifted"))
                continue
            if isinstance(op, Earn):
                out.append(self._earn(op, accts[account_of[op.user_id]], request, originals))
            elif isinstance(op, ShareBack):
                out.append(self._share(op, accts, request, originals, previous, negative))
            else:
                out.append(self._release(op, accts, request, originals))
            if out[-1].status == "written":
                written[op.key] = self.txs[-1]["request"]
        self._flush(accts)
        return out

    def _request(self, op: Op) -> dict[str, Any]:
        if isinstance(op, Earn):
            return earn_request(op, self.program)
        if isinstance(op, ShareBack):
            return share_request(
                op.original_key, op.points_share, op.growth_share, op.policy, op.at, op.reason
            )
        return release_request(op)

    def _replayed(
        self, op: Op, kind: str, first: Any, originals: dict[str, _Original], request: Any
    ) -> Outcome:
        limited = 0
        if isinstance(op, ShareBack):  # what it claimed, as reverse_share answers a replay
            original = originals.get(op.original_key)
            if original is not None and original.id is not None:
                done = self.shares.get(original.key, [])
                earlier = [r for i, r in done if i < first.id]
                prev = max((Fraction(r["points_share"]) for r in earlier), default=None)
                got = claim(original.points, request["points_share"], _text(prev))
                limited = got + first.points
        return Outcome(op.key, op.rule, kind, "replayed", first.points, first.growth, limited)

    def _load_lots(
        self, accts: dict[int, _Acct], account_ids: list[int], originals: dict[str, _Original]
    ) -> None:
        cols = (_LOT.c.id, _LOT.c.account_id, _LOT.c.transaction_id, _LOT.c.points)
        cols += (_LOT.c.remaining, _LOT.c.available_at, _LOT.c.expires_at)
        rows: dict[int, Any] = {}
        for r in select_in(self.s, cols, _LOT.c.account_id, account_ids, _LOT.c.remaining > 0):
            rows[r.id] = r
        ids = [o.id for o in originals.values() if o.id is not None]
        for r in self._rows(cols, _LOT.c.transaction_id, ids):
            rows[r.id] = r
        by_tx: dict[int, _Lot] = {}
        for r in sorted(rows.values(), key=lambda r: r.id):
            lot = _Lot(
                id=r.id,
                seq=r.id,
                tx=None,
                points=r.points,
                remaining=r.remaining,
                available_at=r.available_at,
                expires_at=r.expires_at,
            )
            by_tx[r.transaction_id] = lot
            if r.remaining > 0 and r.account_id in accts:
                accts[r.account_id].lots.append(lot)
        for o in originals.values():
            o.lot = by_tx.get(o.id) if o.id is not None else None

    # -- bookkeeping ------------------------------------------------------------------------

    def _tx(self, acct: _Acct, key: str, kind: str, request: Any, reason: str | None) -> int:
        self.txs.append(
            {
                "key": key,
                "kind": kind,
                "program": acct.program,
                "user_id": acct.user_id,
                "account_id": acct.id,
                "points": 0,
                "growth": 0,
                "reason": reason,
                "request": _canonical(request),
                "reverses_id": None,
                "balance_after": acct.balance,
                "created_at": self.now,
                "earned_at": None,
            }
        )
        return len(self.txs) - 1

    def _touch(self, lot: _Lot) -> None:
        if lot.id is not None:
            self.touched[id(lot)] = lot

    def _leg(
        self, t: int, acct: _Acct | None, lot: _Lot | None, name: str | None, unit: str, n: int
    ) -> None:
        if n:
            self.legs.append((t, None if acct is None else acct.id, lot, name, unit, n))

    def _done(self, t: int, acct: _Acct, points: int, growth: int) -> None:
        tx = self.txs[t]
        tx["points"], tx["growth"] = points, growth
        acct.balance += points
        acct.growth += growth
        acct.version += 1
        acct.changed = True
        tx["balance_after"] = acct.balance

    def _earn(
        self, op: Earn, acct: _Acct, request: Any, originals: dict[str, _Original]
    ) -> Outcome:
        kind = "addition" if op.points else "growth"
        if op.points and op.expires_at is not None and op.available_at != ON_RELEASE:
            starts = self.now if op.available_at is None else cast(datetime, op.available_at)
            if as_utc(op.expires_at) <= as_utc(starts):  # award refuses it the same way
                why = f"expires_at is not after the points become available ({op.key!r})"
                return Outcome(op.key, op.rule, "earn", "skipped", note=why)
        t = self._tx(acct, op.key, kind, request, op.reason)
        self.txs[t]["earned_at"] = as_utc(op.earned_at)
        lot = None
        if op.points:
            if op.available_at == ON_RELEASE:
                available = UNTIL_RELEASED
            elif op.available_at is None:
                available = self.now
            else:
                available = as_utc(cast(datetime, op.available_at))
            lot = _Lot(
                id=None,
                seq=self.next_seq,
                tx=t,
                points=op.points,
                remaining=0,
                available_at=available,
                expires_at=None if op.expires_at is None else as_utc(op.expires_at),
            )
            self.next_seq += 1
            self.new_lots.append(lot)
            debt = max(0, -acct.balance)
            settled = min(op.points, debt)
            self._leg(t, acct, None, None, "points", settled)
            lot.remaining = op.points - settled
            self._leg(t, acct, lot, None, "points", op.points - settled)
            if lot.remaining:
                acct.lots.append(lot)
            self._leg(t, None, None, "issued", "points", -op.points)
        if op.growth:
            self._leg(t, acct, None, None, "growth", op.growth)
            self._leg(t, None, None, "growth", "growth", -op.growth)
        self._done(t, acct, op.points, op.growth)
        originals[op.key] = _Original(op.key, None, t, kind, acct.id, op.points, op.growth, lot=lot)
        return Outcome(op.key, op.rule, "earn", "written", op.points, op.growth)

    def _share(
        self,
        op: ShareBack,
        accts: dict[int, _Acct],
        request: Any,
        originals: dict[str, _Original],
        previous: dict[str, tuple[Fraction, Fraction]],
        negative: bool,
    ) -> Outcome:
        o = originals.get(op.original_key)
        why = _unshareable(op.original_key, o)
        if why is not None or o is None:
            return Outcome(op.key, op.rule, "reversal", "skipped", note=why)
        acct = accts[o.account_id]
        prev_p, prev_g = previous.get(o.key, (None, None))
        claimed_p = claim(o.points, request["points_share"], _text(prev_p))
        claimed_g = claim(o.growth, request["growth_share"], _text(prev_g))
        own = o.lot
        take = allowed_take(
            claimed_p,
            policy=op.policy,
            balance=acct.balance,
            own_remaining=None if own is None else own.remaining,
            own_pending=own is not None and own.available_at > as_utc(op.at),
            allow_negative=negative,
        )
        t = self._tx(acct, op.key, "reversal", request, op.reason)
        if take:
            held = sorted((lot for lot in acct.lots if lot.remaining > 0), key=_Lot.fifo)
            order = [own, *[lot for lot in held if lot is not own]] if own else held
            left = take
            for lot in order:
                if left == 0:
                    break
                n = min(left, lot.remaining)
                if n:
                    lot.remaining -= n
                    self._touch(lot)
                    self._leg(t, acct, lot, None, "points", -n)
                    left -= n
            self._leg(t, acct, None, None, "points", -left)  # debt (only where allowed)
            acct.lots = [lot for lot in acct.lots if lot.remaining > 0]
            self._leg(t, None, None, "issued", "points", take)
        if claimed_g:
            self._leg(t, acct, None, None, "growth", -claimed_g)
            self._leg(t, None, None, "growth", "growth", claimed_g)
        self._done(t, acct, -take, -claimed_g)
        old_p, old_g = previous.get(o.key, (Fraction(0), Fraction(0)))
        previous[o.key] = (
            max(old_p, Fraction(request["points_share"])),
            max(old_g, Fraction(request["growth_share"])),
        )
        return Outcome(op.key, op.rule, "reversal", "written", -take, -claimed_g, claimed_p - take)

    def _release(
        self,
        op: Release,
        accts: dict[int, _Acct],
        request: Any,
        originals: dict[str, _Original],
    ) -> Outcome:
        o = originals.get(op.original_key)
        lot = None if o is None else o.lot
        if o is None or lot is None or lot.available_at != UNTIL_RELEASED:
            why = f"the write {op.original_key!r} has no points waiting for a release"
            return Outcome(op.key, op.rule, "release", "skipped", note=why)
        since = as_utc(op.available_at)
        until = None if op.expires_at is None else as_utc(op.expires_at)
        if since > self.now or (until is not None and until <= since):
            why = f"release of {op.original_key!r} at {since.isoformat()} is out of order"
            return Outcome(op.key, op.rule, "release", "skipped", note=why)
        acct = accts[o.account_id]
        t = self._tx(acct, op.key, "release", request, op.reason)
        lot.available_at = since
        if until is not None:
            lot.expires_at = until
        self._touch(lot)
        self._done(t, acct, 0, 0)
        return Outcome(op.key, op.rule, "release", "written")

    # -- writes ---------------------------------------------------------------------------

    def _flush(self, accts: dict[int, _Acct]) -> None:
        s = self.s
        if not self.txs:
            return
        tx_ids = next_ids(s, _TX, len(self.txs))
        for tx, tx_id in zip(self.txs, tx_ids, strict=True):
            tx["id"] = tx_id
        insert_rows(s, _TX, self.txs)
        kept = [lot for lot in self.new_lots if lot.points > 0]
        for lot, lot_id in zip(kept, next_ids(s, _LOT, len(kept)), strict=True):
            lot.id = lot_id
        insert_rows(
            s,
            _LOT,
            [
                {
                    "id": lot.id,
                    "account_id": self.txs[lot.tx]["account_id"],
                    "transaction_id": tx_ids[lot.tx],
                    "points": lot.points,
                    "remaining": lot.remaining,
                    "available_at": lot.available_at,
                    "expires_at": lot.expires_at,
                }
                for lot in kept
            ],
        )
        insert_rows(
            s,
            _ENTRY,
            [
                {
                    "transaction_id": tx_ids[t],
                    "account_id": account_id,
                    "lot_id": None if lot is None else lot.id,
                    "program_account": name,
                    "unit": unit,
                    "amount": amount,
                }
                for t, account_id, lot, name, unit, amount in self.legs
            ],
        )
        update_rows(
            s,
            _LOT,
            [
                {
                    "id": lot.id,
                    "remaining": lot.remaining,
                    "available_at": lot.available_at,
                    "expires_at": lot.expires_at,
                }
                for lot in self.touched.values()
            ],
        )
        update_rows(
            s,
            _ACCT,
            [
                {
                    "id": a.id,
                    "balance": a.balance,
                    "growth_value": a.growth,
                    "version": a.version,
                    "updated_at": self.now,
                }
                for a in accts.values()
                if a.changed
            ],
        )


def _text(share: Fraction | None) -> str | None:
    return None if share is None else str(share)


def _unshareable(key: str, o: _Original | None) -> str | None:
    if o is None:
        return f"no ledger write has the key {key!r}, so no share of it can be reversed"
    if o.kind not in SHAREABLE:
        return f"the write {key!r} is a {o.kind}; only a share of an addition can be reversed"
    if o.whole:
        return f"the write {key!r} was wholly reversed; nothing is left to take back"
    return None
