"""Partial reversals: :func:`reverse_share` takes back a share of an earlier addition.

A refund of part of an order takes back part of what the order earned; several partial
refunds of one order take back several parts. :func:`~liucun.loyalty.reverse` undoes a
whole write once (``reverses_id`` is unique), so a share has its own transaction shape:

- kind ``reversal`` with ``reverses_id`` NULL; the request (``op: reverse_share``) names
  the original's key and the **cumulative** share of the original's points and growth
  that stands reversed once this write is done (exact fractions, ``"49/151"``);
- what this write claims is ``floor(booked × share) − floor(booked × previous share)``,
  the previous share being the largest one of the original's earlier partial reversals,
  so the claims of all partial reversals of an original add up to at most what it booked
  and a refund of the rest takes exactly the rest;
- the points taken follow the return ``policy``: ``unlimited`` takes the whole claim
  (below zero only where the program allows negative balances), ``within_balance`` at
  most the member's balance, ``only_pending`` only what is left on the original's own
  lot if that lot was still pending at ``at`` (the refund's time). What is not taken is
  *limited*: ``Posting.points`` is minus what was taken, and :class:`ShareReversal`
  gives the claim and the limited rest. Growth value is always taken back in full.
- the legs mirror the original's: the member's points from the original's lot first,
  then from the other lots (FIFO), back to the ``issued`` program account; the growth
  back to ``growth``.

:func:`share_violations` is the part of :func:`~liucun.loyalty.check` that verifies
them: each names an addition or growth write of its own account, takes no more than
that write still held, and no original is both partly and wholly reversed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import Hint
from liucun.loyalty._book import (
    _allows_negative,
    _aware,
    _Book,
    _check_key,
    _find,
    _lock_id,
    _replay,
    _write,
)
from liucun.loyalty._models import LedgerError, Posting
from liucun.state import LoyaltyLot, LoyaltyTransaction

RETURN_POLICIES = ("only_pending", "within_balance", "unlimited")
#: Kinds of writes a share of which can be reversed.
SHAREABLE = ("addition", "growth")
SHARE_OP = "reverse_share"


@dataclass(frozen=True)
class ShareReversal:
    """What :func:`reverse_share` did: the ledger write, the points it claimed and the
    ``limited`` part of the claim the return policy did not let it take."""

    posting: Posting
    claimed: int
    limited: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.posting.to_dict(), "claimed": self.claimed, "limited": self.limited}


def reverse_share(
    ws: Any,
    original_key: str,
    *,
    key: str,
    points_share: Fraction | int,
    growth_share: Fraction | int,
    policy: str,
    at: datetime,
    reason: str | None = None,
) -> ShareReversal:
    """Take back the original write's points and growth until ``points_share`` and
    ``growth_share`` of them (cumulative, 0 to 1) stand reversed, under the return
    ``policy`` as of ``at`` (see the module docstring). Replaying ``key`` returns the
    first result."""
    if not isinstance(original_key, str) or not original_key:
        raise LedgerError("original_key must be the key of an earlier addition")
    _check_key(key)
    request = share_request(original_key, points_share, growth_share, policy, at, reason)

    def run(s: Session, now: datetime) -> ShareReversal:
        original = _find(s, original_key)
        if original is None:
            raise LedgerError(
                f"no ledger write has the key {original_key!r}, so no share of it can be "
                "reversed; check the key (liucun loyalty account USER lists them)"
            )
        acct = _lock_id(s, original.account_id)
        if (done := _find(s, key)) is not None:
            posting = _replay(s, done, request)
            claimed = _claims(s, original, before_id=done.id)[0]
            return ShareReversal(posting, claimed, claimed + posting.points)
        refuse_unshareable(s, original)
        claimed_points, claimed_growth = _claims(
            s, original, points_share=request["points_share"], growth_share=request["growth_share"]
        )
        book = _Book(s, acct, now)
        own = s.scalar(select(LoyaltyLot).where(LoyaltyLot.transaction_id == original.id))
        negative = _allows_negative(s, acct.program)
        take = allowed_take(
            claimed_points,
            policy=policy,
            balance=acct.balance,
            own_remaining=None if own is None else own.remaining,
            own_pending=own is not None and own.available_at > request_at(request),
            allow_negative=negative,
        )
        if take:
            order = book.lots()
            if own is not None:
                order = [own, *[lot for lot in order if lot.id != own.id]]
            book.debit(take, order, allow_negative=negative)
            book.program_leg("issued", take)
        if claimed_growth:
            book.growth(-claimed_growth)
            book.program_leg("growth", claimed_growth, unit="growth")
        posting = book.commit(key, "reversal", request, reason)
        return ShareReversal(posting, claimed_points, claimed_points - take)

    return _write(ws, key, request, run)


# -- shared with the batch path ------------------------------------------------------------


def share_request(
    original_key: str,
    points_share: Fraction | int,
    growth_share: Fraction | int,
    policy: str,
    at: datetime,
    reason: str | None,
) -> dict[str, Any]:
    """The request of a share reversal (checked): what a replay must repeat."""
    if policy not in RETURN_POLICIES:
        raise LedgerError(
            f"policy must be one of {', '.join(RETURN_POLICIES)}, got {policy!r}",
            hint=Hint(option="policy", example="within_balance"),
        )
    return {
        "op": SHARE_OP,
        "original_key": original_key,
        "points_share": _share_text(points_share, "points_share"),
        "growth_share": _share_text(growth_share, "growth_share"),
        "policy": policy,
        "at": _aware(at, "at").isoformat(),
        "reason": reason,
    }


def request_at(request: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(request["at"])


def claim(booked: int, share: str, previous: str | None) -> int:
    """What a share reversal claims of ``booked``: the floor of ``booked × share`` minus
    the floor of ``booked × previous`` (the largest earlier share), never below 0."""
    before = Fraction(previous) if previous is not None else Fraction(0)
    now = Fraction(share)
    return max(0, int(booked * now) - int(booked * before))


def allowed_take(
    claimed: int,
    *,
    policy: str,
    balance: int,
    own_remaining: int | None,
    own_pending: bool,
    allow_negative: bool,
) -> int:
    """How many of ``claimed`` points the return ``policy`` lets a share reversal take."""
    if policy == "only_pending":
        room = own_remaining if own_pending and own_remaining is not None else 0
    elif policy == "unlimited" and allow_negative:
        room = claimed
    else:  # within_balance (and unlimited where negative balances are forbidden)
        room = max(0, balance)
    return max(0, min(claimed, room))


def refuse_unshareable(s: Session, original: LoyaltyTransaction) -> None:
    """A :class:`LedgerError` when no share of ``original`` can be reversed."""
    if original.kind not in SHAREABLE:
        raise LedgerError(
            f"the write {original.key!r} is a {original.kind}; only a share of an addition "
            "or a growth write can be reversed"
        )
    whole = s.scalar(
        select(LoyaltyTransaction.key).where(LoyaltyTransaction.reverses_id == original.id)
    )
    if whole is not None:
        raise LedgerError(
            f"the write {original.key!r} was wholly reversed by {whole!r}; nothing is left "
            "to take back, and nothing was written"
        )


def partial_reversals(s: Session, account_ids: list[int]) -> dict[str, list[tuple[int, dict]]]:
    """The share reversals on ``account_ids``: original key → ``(id, request)``, oldest
    first."""
    out: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    if not account_ids:
        return out
    T = LoyaltyTransaction
    for i in range(0, len(account_ids), 1000):
        rows = s.execute(
            select(T.id, T.request)
            .where(
                T.account_id.in_(account_ids[i : i + 1000]),
                T.kind == "reversal",
                T.reverses_id.is_(None),
            )
            .order_by(T.id)
        ).all()
        for tx_id, text in rows:
            request = json.loads(text)
            if request.get("op") == SHARE_OP:
                out[request["original_key"]].append((tx_id, request))
    return out


def partly_reversed_by(s: Session, original: LoyaltyTransaction) -> list[str]:
    """Keys of the share reversals of ``original`` (for :func:`reverse` to refuse a whole
    reversal after them)."""
    done = partial_reversals(s, [original.account_id]).get(original.key, [])
    ids = [tx_id for tx_id, _ in done]
    if not ids:
        return []
    return list(s.scalars(select(LoyaltyTransaction.key).where(LoyaltyTransaction.id.in_(ids))))


def _claims(
    s: Session,
    original: LoyaltyTransaction,
    *,
    points_share: str = "0",
    growth_share: str = "0",
    before_id: int | None = None,
) -> tuple[int, int]:
    """The points and growth a share reversal of ``original`` claims: up to the given
    shares, or (a replay) the one written as ``before_id``."""
    earlier = partial_reversals(s, [original.account_id]).get(original.key, [])
    if before_id is not None:
        mine = next(r for i, r in earlier if i == before_id)
        points_share, growth_share = mine["points_share"], mine["growth_share"]
        earlier = [(i, r) for i, r in earlier if i < before_id]
    prev_p = max((Fraction(r["points_share"]) for _, r in earlier), default=None)
    prev_g = max((Fraction(r["growth_share"]) for _, r in earlier), default=None)
    return (
        claim(original.points, points_share, None if prev_p is None else str(prev_p)),
        claim(original.growth, growth_share, None if prev_g is None else str(prev_g)),
    )


def _share_text(value: Fraction | int, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise LedgerError(f"{name} must be a Fraction between 0 and 1, got {value!r}")
    share = Fraction(value)
    if not 0 <= share <= 1:
        raise LedgerError(f"{name} must lie between 0 and 1, got {share}")
    return str(share)


# -- check ---------------------------------------------------------------------------------


def share_violations(s: Session, txs: dict[int, Any]) -> list[str]:
    """Share reversals that name no shareable write of their account, or take more than
    their original held; originals both partly and wholly reversed."""
    by_key = {tx.key: tx for tx in txs.values()}
    whole = {tx.reverses_id for tx in txs.values() if tx.reverses_id is not None}
    taken: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    out: list[str] = []
    T = LoyaltyTransaction
    rows = s.execute(
        select(T.id, T.request).where(T.kind == "reversal", T.reverses_id.is_(None))
    ).all()
    for tx_id, text in rows:
        tx = txs[tx_id]
        request = json.loads(text)
        original = by_key.get(request.get("original_key", ""))
        if request.get("op") != SHARE_OP or original is None:
            out.append(f"reversal {tx.key!r} names no original write it reverses")
            continue
        if original.kind not in SHAREABLE or original.account_id != tx.account_id:
            out.append(
                f"reversal {tx.key!r} takes a share of {original.key!r}, which is not an "
                "addition or growth write of the same account"
            )
        if tx.points > 0 or tx.growth > 0:
            out.append(f"reversal {tx.key!r} adds ({tx.points:+,}, {tx.growth:+,}) instead")
        taken[original.key][0] -= tx.points
        taken[original.key][1] -= tx.growth
    for key, (points, growth) in taken.items():
        original = by_key[key]
        if points > original.points or growth > original.growth:
            out.append(
                f"share reversals of {key!r} take {points:,} points and {growth:,} growth, "
                f"more than it booked ({original.points:,}, {original.growth:,})"
            )
        if original.id in whole:
            out.append(f"{key!r} was reversed wholly and in shares")
    return out
