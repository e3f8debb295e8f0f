"""Partner events read from state: ``points_changed`` (a loyalty ledger transaction that
moved a member's points) and ``coupon_issued`` (a single-use code issued), for
:func:`liucun.journeys._partner.notify_partners`.

Each subscription keeps the last state id it read of each table in its cursor
(``points_id``, ``coupons_id``); a new one starts with the rows written since it was
created. On PostgreSQL the last :data:`~liucun.journeys._journey_events.OVERLAP_IDS`
ids are read again (late commits): the outbox keys drop what was handed before. The
code of a coupon is never sent (a partner learns that a coupon was issued, not the
code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.journeys._journey_events import LIMIT, OVERLAP_IDS
from liucun.state import CouponCode, LoyaltyTransaction

#: Partner events read from state tables.
STATE_EVENTS: tuple[str, ...] = ("points_changed", "coupon_issued")


def _points(s: Session, after: int | None, created: datetime, limit: int) -> list[Any]:
    T = LoyaltyTransaction
    query = select(T).where(T.points != 0)
    query = query.where(T.id > after) if after is not None else query.where(T.created_at >= created)
    return list(s.scalars(query.order_by(T.id).limit(limit)))


def _coupons(s: Session, after: int | None, created: datetime, limit: int) -> list[Any]:
    C = CouponCode
    query = select(C)
    query = query.where(C.id > after) if after is not None else query.where(C.issued_at >= created)
    return list(s.scalars(query.order_by(C.id).limit(limit)))


def _point_event(r: LoyaltyTransaction) -> tuple[str, str, datetime, str, dict[str, Any]]:
    at = as_utc(r.earned_at or r.created_at)
    data = {
        "from": int(r.balance_after - r.points),
        "to": int(r.balance_after),
        "points": int(r.points),
        "kind": r.kind,
        "reason": r.reason,
        "program": r.program,
    }
    return "points_changed", str(r.user_id), at, str(r.key), data


def _coupon_event(r: CouponCode) -> tuple[str, str, datetime, str, dict[str, Any]]:
    data = {
        "coupon_id": r.coupon_id,
        "program": r.program,
        "kind": r.kind,
        "amount": float(r.amount),
        "currency": r.currency,
        "valid_from": as_utc(r.valid_from).isoformat(),
        "valid_until": as_utc(r.valid_until).isoformat(),
    }
    return "coupon_issued", str(r.user_id), as_utc(r.issued_at), str(r.key), data


_SOURCES: dict[str, tuple[str, Any, Any, Any]] = {
    "points_changed": ("points_id", LoyaltyTransaction, _points, _point_event),
    "coupon_issued": ("coupons_id", CouponCode, _coupons, _coupon_event),
}


def state_events(
    s: Session, types: frozenset[str], created: datetime, cursor: dict[str, Any]
) -> tuple[list[tuple[str, str, datetime, str, dict[str, Any]]], dict[str, int]]:
    """The state-sourced events of ``types`` after ``cursor`` (or since ``created``), as
    ``(type, user_id, occurred_at, occurrence, data)``, and the cursor's new ids."""
    late = OVERLAP_IDS if s.get_bind().dialect.name == "postgresql" else 0
    out: list[tuple[str, str, datetime, str, dict[str, Any]]] = []
    marks: dict[str, int] = {}
    for kind in STATE_EVENTS:
        if kind not in types:
            continue
        name, model, read, make = _SOURCES[kind]
        last = cursor.get(name)
        if last is None:  # the first read: what was written since the subscription
            rows = read(s, None, created, LIMIT)
            top = s.scalar(select(func.max(model.id))) or 0
            marks[name] = max([int(top)] + [r.id for r in rows])
        elif not read(s, int(last), created, 1):
            marks[name] = int(last)  # nothing new: the overlap is not read again
            continue
        else:
            rows = read(s, max(0, int(last) - late), created, LIMIT)
            marks[name] = max([int(last)] + [r.id for r in rows])
        out.extend(make(r) for r in rows)
    return out, marks
