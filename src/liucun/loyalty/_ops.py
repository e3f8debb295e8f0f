"""Accrual's ledger operations and the reference path: one ledger call per operation.

An accrual run turns a plan into three kinds of operation — :class:`Earn` (what
:func:`~liucun.loyalty.award` or :func:`~liucun.loyalty.add_growth` writes),
:class:`ShareBack` (:func:`~liucun.loyalty.reverse_share`) and :class:`Release`
(:func:`~liucun.loyalty.release`). :func:`apply_each` makes one ledger call per
operation; :func:`~liucun.loyalty._batch.apply_batch` books the same in batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from liucun.core import as_utc
from liucun.loyalty._book import _when_text
from liucun.loyalty._ledger import add_growth, award, release
from liucun.loyalty._models import IdempotencyConflict, LedgerError
from liucun.loyalty._partial import reverse_share


@dataclass(frozen=True, slots=True)
class Earn:
    """Points (and growth) a rule earned for an event: ``award`` (or ``add_growth`` when
    no points). ``available_at`` is an instant or :data:`ON_RELEASE`."""

    key: str
    user_id: str
    points: int
    growth: int
    available_at: datetime | str | None
    expires_at: datetime | None
    earned_at: datetime
    reason: str
    rule: str


@dataclass(frozen=True, slots=True)
class ShareBack:
    """A refund: take back the original's points and growth up to these cumulative
    shares under ``policy`` as of ``at`` (``reverse_share``)."""

    key: str
    original_key: str
    points_share: Fraction
    growth_share: Fraction
    policy: str
    at: datetime
    reason: str
    rule: str


@dataclass(frozen=True, slots=True)
class Release:
    """An order's pending points become available at ``available_at`` (``release``)."""

    key: str
    original_key: str
    available_at: datetime
    expires_at: datetime | None
    reason: str
    rule: str


Op = Earn | ShareBack | Release


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one operation: ``written``, ``replayed`` (the key was written with
    the same request), ``drifted`` (written with another request; it stands) or
    ``skipped`` (``note`` says why: nothing to reverse or release)."""

    key: str
    rule: str
    op: str
    status: str
    points: int = 0
    growth: int = 0
    limited: int = 0
    note: str | None = None


def earn_request(op: Earn, program: str) -> dict[str, Any]:
    """The request ``award`` / ``add_growth`` records for ``op`` (a replay repeats it)."""
    earned = as_utc(op.earned_at).isoformat()
    if op.points:
        return {
            "op": "award",
            "user_id": op.user_id,
            "program": program,
            "points": op.points,
            "growth": op.growth,
            "reason": op.reason,
            "expires_at": _when_text(op.expires_at, "expires_at"),
            "available_at": _when_text(op.available_at, "available_at"),
            "earned_at": earned,
        }
    return {
        "op": "add_growth",
        "user_id": op.user_id,
        "program": program,
        "growth": op.growth,
        "reason": op.reason,
        "earned_at": earned,
    }


def release_request(op: Release) -> dict[str, Any]:
    request: dict[str, Any] = {"op": "release", "original_key": op.original_key}
    request["reason"] = op.reason
    request["available_at"] = as_utc(op.available_at).isoformat()
    if op.expires_at is not None:
        request["expires_at"] = as_utc(op.expires_at).isoformat()
    return request


# -- one call per operation -----------------------------------------------------------------


def apply_each(ws: Any, ops: Iterable[Op], *, program: str) -> list[Outcome]:
    """Apply ``ops`` with one ledger call each (the reference :func:`apply_batch` equals)."""
    out: list[Outcome] = []
    for op in ops:
        kind = _op_name(op)
        try:
            if isinstance(op, Earn):
                if op.points:
                    posting = award(
                        ws,
                        op.user_id,
                        op.points,
                        key=op.key,
                        reason=op.reason,
                        program=program,
                        expires_at=op.expires_at,
                        available_at=op.available_at,
                        growth=op.growth,
                        earned_at=op.earned_at,
                    )
                else:
                    posting = add_growth(
                        ws,
                        op.user_id,
                        op.growth,
                        key=op.key,
                        reason=op.reason,
                        program=program,
                        earned_at=op.earned_at,
                    )
                limited = 0
            elif isinstance(op, ShareBack):
                done = reverse_share(
                    ws,
                    op.original_key,
                    key=op.key,
                    points_share=op.points_share,
                    growth_share=op.growth_share,
                    policy=op.policy,
                    at=op.at,
                    reason=op.reason,
                )
                posting, limited = done.posting, done.limited
            else:
                posting = release(
                    ws,
                    op.original_key,
                    key=op.key,
                    reason=op.reason,
                    available_at=op.available_at,
                    expires_at=op.expires_at,
                )
                limited = 0
        except IdempotencyConflict:
            out.append(Outcome(op.key, op.rule, kind, "drifted"))
            continue
        except LedgerError as exc:
            out.append(Outcome(op.key, op.rule, kind, "skipped", note=str(exc)))
            continue
        status = "replayed" if posting.replayed else "written"
        out.append(Outcome(op.key, op.rule, kind, status, posting.points, posting.growth, limited))
    return out


def _op_name(op: Op) -> str:
    if isinstance(op, Earn):
        return "earn"
    return "reversal" if isinstance(op, ShareBack) else "release"
