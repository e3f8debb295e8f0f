"""Coupons and benefits: issue single-use codes, redeem them on orders, expire them, buy
benefits with points, list the rights a customer has, and check it all.

Every write is one short transaction in ``ws.state`` with an idempotency key (a unique
index): replaying a key with the same arguments returns the first result and writes
nothing; the same key with other arguments is refused with a sentence
(:class:`~liucun.loyalty.IdempotencyConflict`).

Limits are checked under the same lock as the write. The lock is the program's: on
PostgreSQL a transaction-scoped advisory lock on the program's name (coupon writes of
one program are serialized; issuance and redemption are far rarer than point awards),
on SQLite ``BEGIN IMMEDIATE`` (every writer is serialized anyway). A redemption also
locks its code row (``SELECT … FOR UPDATE``), and ``code_id`` is unique among
redemptions, so a code can never be redeemed twice, even by racing processes.

**What counts against caps and budgets** (the coupon's *committed value*, in the program
currency): a redeemed code counts the discount booked on its redemption; an unredeemed,
unexpired value coupon counts its face value (it is reserved when issued); a percent
coupon counts nothing until it is redeemed (its discount depends on the order), and its
redemption is refused when the discount would break a limit; an expired code counts
nothing (its reservation is released). The per-customer cap (``coupon_cap``) counts the
customer's codes issued in the same calendar period (program time zone); a coupon's
``budget`` counts all its codes; the program-wide budget (``coupon_budget`` on the
program, when the program model has it) all codes of the program.

A benefit bought with points (:func:`redeem_benefit`) writes its ledger redemption
(key ``benefit:<key>``) and its grant row in ONE transaction: the ledger's bookkeeping
(:class:`liucun.loyalty._book._Book`) is used directly under the member's account lock,
so there is never a redemption without its grant or the other way round.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, LiucunError, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import (
    _Book,
    _canonical,
    _check_key,
    _find,
    _lock_member,
    expiry_cutoff,
    lock_program,
)
from liucun.loyalty._ledger import DEFAULT_PROGRAM, valid_until
from liucun.loyalty._models import IdempotencyConflict, InsufficientPoints, LedgerError
from liucun.loyalty._program import UNLOCK_FIELDS, Benefit, Coupon, Program, load_program
from liucun.state import BenefitGrant, CouponCode, CouponRedemption

T = TypeVar("T")
_CODES = CouponCode.__table__
_REDEMPTIONS = CouponRedemption.__table__
_GRANTS = BenefitGrant.__table__
#: Code alphabet: no 0/O, 1/I/L, so a code read aloud or typed is not mistaken.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_CHARS = 16  # 16 × log2(31) ≈ 79 bits from `secrets`
_RETRIES = 4


# -- errors and results -------------------------------------------------------------------


class CouponRefused(LiucunError, ValueError):
    """A coupon or benefit operation was refused (a limit, a rule of the coupon);
    nothing was written. The CLI exits with code 2."""


class CouponLimitReached(CouponRefused):
    """A per-customer count or the per-customer value cap of a period is reached."""


class BudgetExhausted(CouponRefused):
    """A coupon's, a benefit's or the program's budget has no room for this."""


class CouponNotRedeemable(CouponRefused):
    """The code does not apply to this order: unknown, already redeemed, outside its
    validity, below the minimum order, another category, another customer."""


class CouponNotEligible(CouponRefused):
    """The customer's profile does not pass the coupon's ``unlock`` filter."""


class BenefitRefused(CouponRefused):
    """A benefit cannot be granted (not for points, over its per-period limit)."""


@dataclass(frozen=True)
class IssuedCoupon:
    """One issued code and its terms (``status``: issued, redeemed or expired)."""

    code: str
    key: str
    program: str
    coupon_id: str
    user_id: str
    kind: str
    amount: float
    min_order: float
    categories: tuple[str, ...] | None
    currency: str
    valid_from: datetime
    valid_until: datetime
    status: str
    issued_at: datetime
    redeemed_at: datetime | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "key": self.key,
            "program": self.program,
            "coupon_id": self.coupon_id,
            "user_id": self.user_id,
            "kind": self.kind,
            "amount": self.amount,
            "min_order": self.min_order,
            "categories": None if self.categories is None else list(self.categories),
            "currency": self.currency,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "status": self.status,
            "issued_at": self.issued_at.isoformat(),
            "redeemed_at": None if self.redeemed_at is None else self.redeemed_at.isoformat(),
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class CouponRedemptionResult:
    """One redemption: the cost booked (``discount``, program currency) for ROI."""

    code: str
    key: str
    coupon_id: str
    user_id: str
    order_id: str
    order_value: float
    discount: float
    currency: str
    redeemed_at: datetime
    source_event_id: str | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "key": self.key,
            "coupon_id": self.coupon_id,
            "user_id": self.user_id,
            "order_id": self.order_id,
            "order_value": self.order_value,
            "discount": self.discount,
            "currency": self.currency,
            "redeemed_at": self.redeemed_at.isoformat(),
            "source_event_id": self.source_event_id,
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class OrderRedemptions:
    """What :func:`redeem_from_orders` did with the order events carrying a code."""

    orders: int
    redeemed: int
    replayed: int
    unknown: int
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    discount: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "redeemed": self.redeemed,
            "replayed": self.replayed,
            "unknown": self.unknown,
            "refused": [{"event_id": e, "code": c, "reason": r} for e, c, r in self.refused],
            "discount": self.discount,
        }


@dataclass(frozen=True)
class BenefitGrantResult:
    """A benefit bought with points: ``ledger_key`` is its ledger redemption."""

    key: str
    benefit_id: str
    user_id: str
    points: int
    value: float
    ledger_key: str
    balance_after: int
    granted_at: datetime
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "benefit_id": self.benefit_id,
            "user_id": self.user_id,
            "points": self.points,
            "value": self.value,
            "ledger_key": self.ledger_key,
            "balance_after": self.balance_after,
            "granted_at": self.granted_at.isoformat(),
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class Right:
    """A benefit a customer has (or may buy with points): why, and whether it is hidden
    (a perk not to be advertised: show it only once it is unlocked)."""

    benefit_id: str
    description: str
    unlocked_by: str
    hidden: bool
    points_cost: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "benefit_id": self.benefit_id,
            "description": self.description,
            "unlocked_by": self.unlocked_by,
            "hidden": self.hidden,
            "points_cost": self.points_cost,
        }


# -- issuance -----------------------------------------------------------------------------


def issue_coupon(
    ws: Any,
    coupon_id: str,
    user_id: str,
    *,
    key: str,
    program: Program | str | Path | None = None,
    profile: Mapping[str, Any] | None = None,
) -> IssuedCoupon:
    """Issue a new single-use code of the coupon ``coupon_id`` to ``user_id`` under ``key``.

    The code is valid from now to the end of the ``validity_days``-th day (program time
    zone). Refused (:class:`CouponLimitReached`, :class:`BudgetExhausted`) when the
    customer already holds ``per_customer`` codes of it, when its value would take the
    customer over the program's ``coupon_cap`` for the period, or the coupon's (or the
    program's) budget over its amount — checked under the lock of the write. A coupon
    with an ``unlock`` filter is refused (:class:`CouponNotEligible`) when ``profile``
    (the customer's profile) is given and does not pass it; without a profile the caller
    vouches for the audience (a journey that selected it by the same filter).
    """
    prog = _program(ws, program)
    coupon = _coupon(prog, coupon_id)
    _check_user(user_id)
    _check_key(key)
    if (
        coupon.unlock is not None
        and profile is not None
        and not profile_matches(coupon.unlock, {"user_id": user_id, **dict(profile)})
    ):
        raise CouponNotEligible(
            f"user {user_id!r} does not pass coupon {coupon_id!r}'s unlock filter "
            f"{coupon.unlock!r} on the profile given; no code was issued"
        )
    request = {
        "op": "issue_coupon",
        "program": prog.name,
        "coupon_id": coupon_id,
        "user_id": user_id,
    }
    cap = prog.coupon_cap
    program_budget = _program_budget(prog)

    def run(s: Session, now: datetime) -> IssuedCoupon:
        lock_program(s, "coupons", prog.name)
        done = s.scalar(select(CouponCode).where(CouponCode.key == key))
        if done is not None:
            _same_request(key, done.request, request, done.user_id)
            return _issued(done, replayed=True)
        period = check_issuance(s, prog, coupon, user_id, key=key, now=now)
        until = valid_until(now, days=coupon.validity_days, round_to="day", timezone=prog.timezone)
        values = {
            "code": _new_code(),
            "key": key,
            "request": _canonical(request),
            "program": prog.name,
            "coupon_id": coupon_id,
            "user_id": user_id,
            "kind": coupon.kind,
            "amount": float(coupon.amount),
            "min_order": float(coupon.min_order),
            "categories": None
            if coupon.categories is None
            else json.dumps(list(coupon.categories), ensure_ascii=False),
            "currency": prog.currency,
            "valid_from": now,
            "valid_until": until,
            "period_start": period,
            "per_customer": coupon.per_customer,
            "cap_amount": None if cap is None else float(cap.amount),
            "cap_per": None if cap is None else cap.per,
            "coupon_budget": None if coupon.budget is None else float(coupon.budget),
            "program_budget": program_budget,
            "status": "issued",
            "issued_at": now,
            "redeemed_at": None,
            "expired_at": None,
        }
        s.execute(_CODES.insert().values(values))
        return _issued(CouponCode(**values))

    return _write(ws, run)


def check_issuance(
    s: Session,
    prog: Program,
    coupon: Coupon,
    user_id: str,
    *,
    key: str,
    now: datetime,
    reserved: float = 0.0,
) -> str:
    """Refuse (:class:`CouponLimitReached`, :class:`BudgetExhausted`) a new code of
    ``coupon`` for ``user_id`` at ``now`` that the per-customer count, the value cap of
    the period or a budget forbids; return the cap period it would be issued in.

    :func:`issue_coupon` calls it under the program's lock; a preview (the loss-aversion
    dry run) calls it in a read, with ``reserved`` the value its earlier previewed codes
    of the same run would already take from the coupon's and the program's budgets.
    """
    coupon_id = coupon.id
    cap = prog.coupon_cap
    program_budget = _program_budget(prog)
    prog_rows = CouponCode.program == prog.name
    held = _count(s, prog_rows, CouponCode.user_id == user_id, CouponCode.coupon_id == coupon_id)
    if coupon.per_customer is not None and held >= coupon.per_customer:
        raise CouponLimitReached(
            f"user {user_id!r} already holds {held} code(s) of coupon "
            f"{coupon_id!r}, its per_customer limit of {coupon.per_customer}; no code "
            f"was issued (key {key!r} was not used). Raise coupons[].per_customer in "
            "the program to allow more"
        )
    value = coupon.amount if coupon.kind == "value" else 0.0
    period = _period_start(now, cap.per if cap else "month", prog.timezone)
    if cap is not None:
        used = _committed_sum(
            s, now, prog_rows, CouponCode.user_id == user_id, CouponCode.period_start == period
        )
        if used + value > cap.amount + 1e-9 or (value == 0 and used >= cap.amount):
            raise CouponLimitReached(
                f"user {user_id!r} has {_money(used, prog.currency)} of coupon value "
                f"in the {cap.per} starting {period}; {coupon_id!r} "
                f"({_face(coupon, prog.currency)}) would exceed the program's "
                f"coupon_cap of {_money(cap.amount, prog.currency)} per {cap.per}; no "
                f"code was issued (key {key!r} was not used)"
            )
    if coupon.budget is not None:
        _check_budget(
            _committed_sum(s, now, prog_rows, CouponCode.coupon_id == coupon_id) + reserved,
            value,
            coupon.budget,
            f"coupon {coupon_id!r}'s budget",
            prog.currency,
            key,
        )
    if program_budget is not None:
        _check_budget(
            _committed_sum(s, now, prog_rows) + reserved,
            value,
            program_budget,
            f"program {prog.name!r}'s coupon budget",
            prog.currency,
            key,
        )
    return period


# -- redemption ---------------------------------------------------------------------------


def redeem_coupon(
    ws: Any,
    code: str,
    *,
    order_id: str,
    order_value: float,
    key: str,
    categories: Iterable[str] | None = None,
    user_id: str | None = None,
    at: datetime | None = None,
    currency: str | None = None,
    source_event_id: str | None = None,
) -> CouponRedemptionResult:
    """Redeem ``code`` on order ``order_id`` worth ``order_value`` (program currency).

    The discount booked is the coupon's value (at most the order's value) or its percent
    of the order's value, rounded to cents. Refused (:class:`CouponNotRedeemable`, nothing
    written) when the code is unknown or already redeemed, ``at`` (the order's time,
    default now) lies outside its validity, the order is below its minimum, none of
    ``categories`` (the order's) is one of the coupon's, ``user_id`` is not the code's
    holder, or ``currency`` is not the program's; a percent coupon's discount that would
    break a cap or budget is refused too (:class:`CouponLimitReached`,
    :class:`BudgetExhausted`).
    """
    if not isinstance(code, str) or not code.strip():
        raise CouponNotRedeemable("code must be the coupon code printed for the customer")
    if not isinstance(order_id, str) or not order_id.strip():
        raise LedgerError(f"order_id must be a non-empty text, got {order_id!r}")
    if (
        isinstance(order_value, bool)
        or not isinstance(order_value, int | float)
        or not (order_value >= 0)
    ):
        raise LedgerError(
            f"order_value must be a number ≥ 0 (the order's value in the program currency), "
            f"got {order_value!r}"
        )
    _check_key(key)
    cats = None if categories is None else sorted({str(c) for c in categories if c})
    code = code.strip().upper()
    when = None if at is None else as_utc(at)
    request = {
        "op": "redeem_coupon",
        "code": code,
        "order_id": order_id,
        "order_value": float(order_value),
        "categories": cats,
        "user_id": user_id,
        "at": None if when is None else when.isoformat(),
        "currency": currency,
    }

    def run(s: Session, now: datetime) -> CouponRedemptionResult:
        program = s.scalar(select(CouponCode.program).where(CouponCode.code == code))
        if program is not None:
            lock_program(s, "coupons", program)
        done = s.scalar(select(CouponRedemption).where(CouponRedemption.key == key))
        if done is not None:
            row = s.get(CouponCode, done.code_id)
            _same_request(key, done.request, request, row.user_id if row else "?")
            return _redemption(done, row, replayed=True)
        if program is None:
            raise CouponNotRedeemable(
                f"no coupon code {code!r} was issued; check the code "
                "(liucun loyalty coupon list USER shows a customer's codes)"
            )
        row = s.scalar(
            select(CouponCode)
            .where(CouponCode.code == code)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        moment = when or now
        if moment > now:
            raise LedgerError(
                f"at {moment.isoformat()} is after now ({now.isoformat()}): an order "
                "cannot be redeemed ahead of time"
            )
        _redeemable(s, row, moment, order_id, float(order_value), cats, user_id, currency)
        discount = _discount(row, float(order_value))
        if row.kind == "percent":
            _check_limits_for(s, row, discount, now, key)
        values = {
            "code_id": row.id,
            "key": key,
            "request": _canonical(request),
            "order_id": order_id,
            "order_value": float(order_value),
            "discount": discount,
            "currency": row.currency,
            "source_event_id": source_event_id,
            "redeemed_at": moment,
        }
        s.execute(_REDEMPTIONS.insert().values(values))
        row.status = "redeemed"
        row.redeemed_at = moment
        s.flush()
        return _redemption(CouponRedemption(**values), row)

    return _write(ws, run)


def redeem_from_orders(
    ws: Any, *, since: datetime | date | None = None, events: Any = None
) -> OrderRedemptions:
    """Redeem the codes that ``order`` events carry in ``properties.coupon_code``.

    Reads ``ws.events()`` (or ``events``, an Ibis table of the events' columns), orders
    at or after ``since`` when given. Each (order event, code) is redeemed under the key
    ``order-event:<event_id>:<code>``, at the order's time, on its ``revenue`` as the
    order's value, its ``category`` and its customer: running it again redeems nothing
    twice. Codes liucun did not issue (e.g. a shop's own campaign codes) are counted as
    ``unknown``; refusals (another customer's code, a second use, an expired code) are
    listed with their sentence and do not stop the run.
    """
    from liucun.metrics import property_text

    t = ws.events() if events is None else events
    t = t.filter(t.event_type == "order")
    t = t.mutate(coupon_code=property_text(t.properties, "coupon_code"))
    t = t.filter(t.coupon_code.notnull())
    if since is not None:
        t = t.filter(t.ts >= as_utc(since))
    frame = t.select(
        "event_id",
        "user_id",
        "ts",
        "revenue",
        "currency",
        "order_id",
        "category",
        "coupon_code",
    ).to_pandas()
    wanted = sorted({str(c).strip().upper() for c in frame.coupon_code})
    with ws.state.read() as s:
        ours: set[str] = set()
        for i in range(0, len(wanted), 500):
            ours |= set(
                s.scalars(
                    select(CouponCode.code).where(CouponCode.code.in_(wanted[i : i + 500]))
                ).all()
            )
    redeemed = replayed = unknown = 0
    discount = 0.0
    refused: list[tuple[str, str, str]] = []
    for row in frame.sort_values(["ts", "event_id"]).itertuples(index=False):
        code = str(row.coupon_code).strip().upper()
        if code not in ours:
            unknown += 1
            continue
        try:
            done = redeem_coupon(
                ws,
                code,
                order_id=str(row.order_id) if _present(row.order_id) else str(row.event_id),
                order_value=float(row.revenue) if _present(row.revenue) else 0.0,
                key=f"order-event:{row.event_id}:{code}",
                categories=[row.category] if _present(row.category) else None,
                user_id=str(row.user_id) if _present(row.user_id) else None,
                at=row.ts.to_pydatetime(),
                currency=str(row.currency) if _present(row.currency) else None,
                source_event_id=str(row.event_id),
            )
        except CouponRefused as exc:
            refused.append((str(row.event_id), code, str(exc)))
            continue
        if done.replayed:
            replayed += 1
        else:
            redeemed += 1
            discount += done.discount
    return OrderRedemptions(
        orders=len(frame),
        redeemed=redeemed,
        replayed=replayed,
        unknown=unknown,
        refused=refused,
        discount=round(discount, 2),
    )


def expire_coupons(ws: Any, as_of: datetime | date) -> int:
    """Mark every unredeemed code whose validity ended at or before ``as_of`` expired;
    returns how many were marked (0 when run again: idempotent). ``as_of`` may not lie
    after the workspace clock's now."""
    cutoff = expiry_cutoff(ws, as_of, "coupons")
    with ws.state.write() as s:
        result = s.execute(
            update(_CODES)
            .where(_CODES.c.status == "issued", _CODES.c.valid_until <= cutoff)
            .values(status="expired", expired_at=cutoff)
        )
        return int(result.rowcount or 0)


def list_coupons(ws: Any, user_id: str, *, program: str | None = None) -> list[IssuedCoupon]:
    """``user_id``'s codes, oldest first (in every program, or only ``program``)."""
    with ws.state.read() as s:
        query = select(CouponCode).where(CouponCode.user_id == user_id)
        if program is not None:
            query = query.where(CouponCode.program == program)
        return [_issued(c) for c in s.scalars(query.order_by(CouponCode.id)).all()]


# -- benefits -----------------------------------------------------------------------------


def redeem_benefit(
    ws: Any,
    user_id: str,
    benefit_id: str,
    *,
    key: str,
    program: Program | str | Path | None = None,
    ledger_program: str = DEFAULT_PROGRAM,
) -> BenefitGrantResult:
    """Buy the benefit ``benefit_id`` (e.g. ``shipping_upgrade``) with ``user_id``'s points.

    One transaction: the member's account is locked, the per-customer limit of the
    benefit's period and its budget (points × point value, program currency) checked,
    the points redeemed in the ledger of ``ledger_program`` under the key
    ``benefit:<key>`` and the grant recorded. Refused (:class:`BenefitRefused`,
    :class:`BudgetExhausted`, :class:`~liucun.loyalty.InsufficientPoints`) with nothing
    written.
    """
    prog = _program(ws, program)
    benefit = _benefit(prog, benefit_id)
    _check_user(user_id)
    _check_key(key)
    if benefit.points_cost is None:
        raise BenefitRefused(
            f"benefit {benefit_id!r} is not for points (it has no points_cost); it is "
            "unlocked by tier or behaviour, see eligible_benefits"
        )
    points = benefit.points_cost
    value = round(points * prog.points.point_value, 2)
    ledger_key = f"benefit:{key}"
    _check_key(ledger_key)
    reason = f"benefit {benefit_id}"
    request = {
        "op": "redeem_benefit",
        "program": prog.name,
        "benefit_id": benefit_id,
        "user_id": user_id,
        "ledger_program": ledger_program,
    }
    ledger_request = {
        "op": "redeem",
        "user_id": user_id,
        "program": ledger_program,
        "points": points,
        "reason": reason,
    }

    def run(s: Session, now: datetime) -> BenefitGrantResult:
        if benefit.budget is not None:
            lock_program(s, "coupons", prog.name)
        acct = _lock_member(s, ledger_program, user_id, now, create=False)
        done = s.scalar(select(BenefitGrant).where(BenefitGrant.key == key))
        if done is not None:
            _same_request(key, done.request, request, done.user_id)
            return _grant(done, _balance_after(s, done.ledger_key), replayed=True)
        if _find(s, ledger_key) is not None:
            raise IdempotencyConflict(
                f"the ledger key {ledger_key!r} (derived from key {key!r}) was already used "
                "by another ledger write; use a new key for this benefit"
            )
        period = _period_start(now, benefit.period, prog.timezone)
        grants = s.scalars(
            select(BenefitGrant).where(
                BenefitGrant.program == prog.name, BenefitGrant.benefit_id == benefit_id
            )
        ).all()
        if benefit.per_customer is not None:
            mine = [g for g in grants if g.user_id == user_id and g.period_start == period]
            if len(mine) >= benefit.per_customer:
                raise BenefitRefused(
                    f"user {user_id!r} already got benefit {benefit_id!r} {len(mine)} "
                    f"time(s) in the {benefit.period} starting {period}, its per_customer "
                    f"limit of {benefit.per_customer}; no points were taken (key {key!r} "
                    "was not used)"
                )
        if benefit.budget is not None:
            _check_budget(
                sum(g.value for g in grants),
                value,
                benefit.budget,
                f"benefit {benefit_id!r}'s budget",
                prog.currency,
                key,
            )
        if acct is None:
            raise InsufficientPoints(
                f"user {user_id!r} has no points in program {ledger_program!r} (no account "
                f"yet), fewer than the {points:,} benefit {benefit_id!r} costs; nothing "
                "was redeemed"
            )
        book = _Book(s, acct, now)
        available = book.available()
        if points > available:
            raise InsufficientPoints(
                f"user {user_id!r} has {available:,} points available, fewer than the "
                f"{points:,} benefit {benefit_id!r} costs; nothing was redeemed (key "
                f"{key!r} was not used)"
            )
        book.debit(points, book.lots(available_only=True), allow_negative=False)
        book.program_leg("redeemed", points)
        posting = book.commit(ledger_key, "redemption", ledger_request, reason)
        values = {
            "key": key,
            "request": _canonical(request),
            "program": prog.name,
            "benefit_id": benefit_id,
            "user_id": user_id,
            "points": points,
            "value": value,
            "ledger_key": ledger_key,
            "period_start": period,
            "per_customer": benefit.per_customer,
            "period": benefit.period,
            "budget": None if benefit.budget is None else float(benefit.budget),
            "granted_at": now,
        }
        s.execute(_GRANTS.insert().values(values))
        return _grant(BenefitGrant(**values), posting.balance_after)

    return _write(ws, run)


def benefits_for(
    program: Program, profile: Mapping[str, Any], *, tier: str | None = None
) -> list[Right]:
    """The benefits a customer with ``profile`` has under ``program``: a pure function.

    A benefit is unlocked by the tier (``tier``, else ``profile["tier"]``) when the tier
    is one of its ``tiers`` or lists it among its ``perks``, and by its ``unlock`` filter
    (the segment filter language over :data:`UNLOCK_FIELDS`; a field missing from the
    profile is null, so a comparison with it is false) evaluated on the profile. A
    benefit with both ``tiers`` and ``unlock`` needs both. A benefit with neither but a
    ``points_cost`` is listed as buyable (``unlocked_by="points"``). ``hidden`` perks are
    listed once unlocked, flagged, for the caller not to advertise before.
    """
    tier = tier if tier is not None else profile.get("tier")
    perks = {p for t in program.tiers if t.name == tier for p in t.perks}
    out: list[Right] = []
    for b in program.benefits:
        by_tier = tier is not None and (b.id in perks or (b.tiers is not None and tier in b.tiers))
        reasons: list[str] = []
        if b.tiers is not None or b.unlock is not None:
            if b.tiers is not None and not by_tier:
                continue
            if b.unlock is not None and not profile_matches(b.unlock, {**profile, "tier": tier}):
                continue
            if b.tiers is not None:
                reasons.append(f"tier {tier}")
            if b.unlock is not None:
                reasons.append(f"unlock: {b.unlock}")
        elif by_tier:
            reasons.append(f"tier {tier} perk")
        elif b.points_cost is not None:
            reasons.append(f"points ({b.points_cost:,})")
        else:
            continue
        out.append(Right(b.id, b.description, "; ".join(reasons), b.hidden, b.points_cost))
    return out


def eligible_coupons(
    program: Program, profile: Mapping[str, Any], *, tier: str | None = None
) -> list[str]:
    """Ids of the coupons the customer with ``profile`` may be issued (a pure function):
    those without an ``unlock`` filter, and those whose filter the profile passes (e.g.
    ``frequent_buyer``: "orders >= 4 and days_since_last <= 30")."""
    full = {**dict(profile), **({"tier": tier} if tier is not None else {})}
    return [c.id for c in program.coupons if c.unlock is None or profile_matches(c.unlock, full)]


def eligible_benefits(
    ws: Any,
    user_id: str,
    *,
    profile: Mapping[str, Any],
    program: Program | str | Path | None = None,
    ledger_program: str = DEFAULT_PROGRAM,
    tier: str | None = None,
) -> list[Right]:
    """:func:`benefits_for` on ``profile`` completed with ``user_id``'s loyalty account
    (``points_balance``, ``growth_value``; ``tier`` from the account when it has one and
    none is given). What the profile already says wins."""
    from liucun.loyalty._ledger import account

    acct = account(ws, user_id, ledger_program)
    full = {
        "user_id": user_id,
        "points_balance": acct.balance,
        "growth_value": acct.growth_value,
        **({"tier": acct.tier} if acct.tier is not None else {}),
        **dict(profile),
    }
    return benefits_for(_program(ws, program), full, tier=tier)


def profile_matches(filter_text: str, profile: Mapping[str, Any]) -> bool:
    """Whether one customer's ``profile`` (a mapping of :data:`UNLOCK_FIELDS`) passes the
    segment filter ``filter_text``: the filter runs on a one-row table (DuckDB)."""
    import ibis
    import pyarrow as pa

    from liucun.segments import parse_filter

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
    }
    columns = {}
    for name, kind in UNLOCK_FIELDS.items():
        value = profile.get(name)
        if value is not None and kind in ("int64", "float64"):
            value = float(value) if kind == "float64" else int(value)
        columns[name] = pa.array([value], type=types[kind])
    table = ibis.memtable(pa.table(columns))
    expr = parse_filter(filter_text, table)
    return bool(table.filter(expr).count().to_pyarrow().as_py())


def coupon_summary(ws: Any, *, program: str | None = None) -> list[dict[str, Any]]:
    """Per coupon (program, coupon_id): codes ``issued``, ``redeemed``, ``expired`` and
    still ``open``, the ``redemption_rate`` (redeemed / issued), the ``cost`` booked (sum
    of discounts, program currency) and the ``currency`` — the report's coupon section."""
    red = func.sum(case((_CODES.c.status == "redeemed", 1), else_=0))
    exp = func.sum(case((_CODES.c.status == "expired", 1), else_=0))
    query = (
        select(
            _CODES.c.program,
            _CODES.c.coupon_id,
            func.min(_CODES.c.currency),
            func.count(_CODES.c.id),
            red,
            exp,
            func.coalesce(func.sum(_REDEMPTIONS.c.discount), 0.0),
        )
        .select_from(_CODES.outerjoin(_REDEMPTIONS, _REDEMPTIONS.c.code_id == _CODES.c.id))
        .group_by(_CODES.c.program, _CODES.c.coupon_id)
        .order_by(_CODES.c.program, _CODES.c.coupon_id)
    )
    if program is not None:
        query = query.where(_CODES.c.program == program)
    with ws.state.read() as s:
        rows = s.execute(query).all()
    return [
        {
            "program": prog,
            "coupon_id": cid,
            "issued": int(n),
            "redeemed": int(r or 0),
            "expired": int(e or 0),
            "open": int(n) - int(r or 0) - int(e or 0),
            "redemption_rate": (int(r or 0) / int(n)) if n else 0.0,
            "cost": round(float(cost or 0.0), 2),
            "currency": cur,
        }
        for prog, cid, cur, n, r, e, cost in rows
    ]


# -- check --------------------------------------------------------------------------------


def coupon_check(ws: Any) -> list[str]:
    """Violations of the coupon invariants (empty when all hold), each a sentence naming
    the code or the group: no code redeemed twice, every redemption inside its code's
    validity and matching its code's status, discounts within the order and the coupon's
    value, per-customer counts, caps and budgets (as recorded on the codes when issued)
    respected, benefit grants within their per-period limits and budgets and paid by
    their ledger redemption."""
    out: list[str] = []
    with ws.state.read() as s:
        codes = {c.id: c for c in s.scalars(select(CouponCode).order_by(CouponCode.id)).all()}
        reds = s.scalars(select(CouponRedemption).order_by(CouponRedemption.id)).all()
        grants = s.scalars(select(BenefitGrant).order_by(BenefitGrant.id)).all()
        from liucun.state import LoyaltyTransaction

        ledger = {
            t.key: t
            for t in s.scalars(
                select(LoyaltyTransaction).where(
                    LoyaltyTransaction.key.in_([g.ledger_key for g in grants] or ["-"])
                )
            ).all()
        }
    by_code: dict[int, list[CouponRedemption]] = {}
    for r in reds:
        by_code.setdefault(r.code_id, []).append(r)
    for code_id, rs in by_code.items():
        c = codes.get(code_id)
        name = c.code if c else f"id {code_id}"
        if len(rs) > 1:
            out.append(
                f"coupon code {name} was redeemed {len(rs)} times (orders "
                f"{', '.join(r.order_id for r in rs)}); a code is single-use"
            )
        if c is None:
            out.append(
                f"redemption {rs[0].key!r} names coupon code id {code_id}, which does not exist"
            )
            continue
        for r in rs:
            if not (c.valid_from <= r.redeemed_at < c.valid_until):
                out.append(
                    f"coupon code {name} was redeemed at {r.redeemed_at.isoformat()} "
                    f"(order {r.order_id}), outside its validity {c.valid_from.isoformat()}"
                    f" – {c.valid_until.isoformat()}"
                )
            top = c.amount if c.kind == "value" else _discount(c, r.order_value)
            if r.discount < 0 or r.discount > min(top, r.order_value) + 0.005:
                out.append(
                    f"coupon code {name}: the discount {r.discount:g} booked on order "
                    f"{r.order_id} is not within 0 – {min(top, r.order_value):g}"
                )
        if c.status != "redeemed":
            out.append(f"coupon code {name} has a redemption but its status is {c.status!r}")
    for c in codes.values():
        if c.status == "redeemed" and c.id not in by_code:
            out.append(f"coupon code {c.code} is marked redeemed but has no redemption")
    # counts, caps and budgets, against the limits recorded on the latest code of a group
    at = as_utc(ws.clock.now())
    paid = {r.code_id: r.discount for r in reds}

    def committed(c: CouponCode) -> float:
        if c.id in paid:
            return paid[c.id]
        if c.status == "issued" and c.kind == "value" and c.valid_until > at:
            return c.amount
        return 0.0

    groups: dict[tuple[Any, ...], list[CouponCode]] = {}
    for c in codes.values():
        groups.setdefault(("count", c.program, c.user_id, c.coupon_id), []).append(c)
        if c.cap_per is not None:
            groups.setdefault(("cap", c.program, c.user_id, c.period_start), []).append(c)
        groups.setdefault(("coupon", c.program, c.coupon_id), []).append(c)
        groups.setdefault(("program", c.program), []).append(c)
    for gkey, members in groups.items():
        last = members[-1]
        total = sum(committed(c) for c in members)
        if gkey[0] == "count":
            # the n-th code of a customer was issued while n - 1 were held
            over = [
                c
                for i, c in enumerate(members)
                if c.per_customer is not None and i >= c.per_customer
            ]
            if over:
                out.append(
                    f"user {gkey[2]!r} holds {len(members)} codes of coupon {gkey[3]!r}, "
                    f"over its per_customer limit of {over[0].per_customer} (code "
                    f"{over[0].code})"
                )
        elif gkey[0] == "cap" and last.cap_amount is not None:
            if total > last.cap_amount + 0.005:
                out.append(
                    f"user {gkey[2]!r} has {total:g} {last.currency} of coupon value in "
                    f"the {last.cap_per} starting {gkey[3]}, over the cap of "
                    f"{last.cap_amount:g}"
                )
        elif gkey[0] == "coupon" and last.coupon_budget is not None:
            if total > last.coupon_budget + 0.005:
                out.append(
                    f"coupon {gkey[2]!r} has committed {total:g} {last.currency}, over "
                    f"its budget of {last.coupon_budget:g}"
                )
        elif (
            gkey[0] == "program"
            and last.program_budget is not None
            and total > last.program_budget + 0.005
        ):
            out.append(
                f"program {gkey[1]!r} has committed {total:g} {last.currency} of "
                f"coupons, over its coupon budget of {last.program_budget:g}"
            )
    ggroups: dict[tuple[str, ...], list[BenefitGrant]] = {}
    for g in grants:
        ggroups.setdefault((g.program, g.benefit_id, g.user_id, g.period_start), []).append(g)
        t = ledger.get(g.ledger_key)
        if t is None or t.kind != "redemption" or t.points != -g.points or t.user_id != g.user_id:
            out.append(
                f"benefit grant {g.key!r} ({g.benefit_id} for {g.user_id!r}) has no "
                f"matching ledger redemption of {g.points:,} points under "
                f"{g.ledger_key!r}"
            )
    for (_prog, bid, user, period), gs in ggroups.items():
        limit = gs[-1].per_customer
        if limit is not None and len(gs) > limit:
            out.append(
                f"user {user!r} got benefit {bid!r} {len(gs)} times in the "
                f"{gs[-1].period} starting {period}, over its limit of {limit}"
            )
    budgets: dict[tuple[str, str], list[BenefitGrant]] = {}
    for g in grants:
        budgets.setdefault((g.program, g.benefit_id), []).append(g)
    for (prog, bid), gs in budgets.items():
        budget = gs[-1].budget
        if budget is not None and sum(g.value for g in gs) > budget + 0.005:
            out.append(
                f"benefit {bid!r} of program {prog!r} granted "
                f"{sum(g.value for g in gs):g}, over its budget of {budget:g}"
            )
    return out


# -- helpers ------------------------------------------------------------------------------


def _write(ws: Any, run: Callable[[Session, datetime], T]) -> T:
    """``run`` in one write transaction; again when a unique index refused it (a
    concurrent write took the key, or — once in 2^79 — the random code was taken)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            with ws.state.write() as s:
                return run(s, as_utc(ws.clock.now()))
        except IntegrityError:
            if attempt >= _RETRIES:
                raise


def _count(s: Session, *where: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(_CODES).where(*where)) or 0)


def _committed_sum(s: Session, now: datetime, *where: Any) -> float:
    """The committed value of the codes matching ``where`` (see the module docstring):
    the booked discount of a redeemed code, the face value of an unredeemed, unexpired
    value coupon, else nothing."""
    value = case(
        (_REDEMPTIONS.c.id.is_not(None), _REDEMPTIONS.c.discount),
        (
            and_(_CODES.c.status == "issued", _CODES.c.kind == "value", _CODES.c.valid_until > now),
            _CODES.c.amount,
        ),
        else_=0.0,
    )
    query = (
        select(func.coalesce(func.sum(value), 0.0))
        .select_from(_CODES.outerjoin(_REDEMPTIONS, _REDEMPTIONS.c.code_id == _CODES.c.id))
        .where(*where)
    )
    return float(s.scalar(query) or 0.0)


def _check_limits_for(
    s: Session, row: CouponCode, discount: float, now: datetime, key: str
) -> None:
    """A percent coupon's discount against the cap and budgets recorded on its code."""
    others = (CouponCode.program == row.program, CouponCode.id != row.id)
    cur = row.currency
    if row.cap_amount is not None:
        used = _committed_sum(
            s,
            now,
            *others,
            CouponCode.user_id == row.user_id,
            CouponCode.period_start == row.period_start,
        )
        if used + discount > row.cap_amount + 1e-9:
            raise CouponLimitReached(
                f"the discount {_money(discount, cur)} of code {row.code} would take user "
                f"{row.user_id!r} to {_money(used + discount, cur)} of coupon value in the "
                f"{row.cap_per} starting {row.period_start}, over the cap of "
                f"{_money(row.cap_amount, cur)}; nothing was redeemed (key {key!r} was "
                "not used)"
            )
    if row.coupon_budget is not None:
        _check_budget(
            _committed_sum(s, now, *others, CouponCode.coupon_id == row.coupon_id),
            discount,
            row.coupon_budget,
            f"coupon {row.coupon_id!r}'s budget",
            cur,
            key,
            verb="redeemed",
        )
    if row.program_budget is not None:
        _check_budget(
            _committed_sum(s, now, *others),
            discount,
            row.program_budget,
            f"program {row.program!r}'s coupon budget",
            cur,
            key,
            verb="redeemed",
        )


def _check_budget(
    used: float,
    value: float,
    budget: float,
    what: str,
    currency: str,
    key: str,
    *,
    verb: str = "issued",
) -> None:
    if used + value > budget + 1e-9 or (value == 0 and used >= budget):
        raise BudgetExhausted(
            f"{what} of {_money(budget, currency)} has {_money(max(budget - used, 0), currency)}"
            f" left, not enough for {_money(value, currency)}; nothing was {verb} (key "
            f"{key!r} was not used). Raise the budget in the program or wait for unused "
            "codes to expire"
        )


def _redeemable(
    s: Session,
    row: CouponCode,
    moment: datetime,
    order_id: str,
    order_value: float,
    cats: list[str] | None,
    user_id: str | None,
    currency: str | None,
) -> None:
    if row.status == "redeemed":
        first = s.scalar(select(CouponRedemption).where(CouponRedemption.code_id == row.id))
        where = f" on order {first.order_id} at {first.redeemed_at.isoformat()}" if first else ""
        raise CouponNotRedeemable(
            f"coupon code {row.code} was already redeemed{where}; a code is single-use, "
            f"so order {order_id} gets no discount from it"
        )
    if row.status == "expired" or moment >= row.valid_until:
        raise CouponNotRedeemable(
            f"coupon code {row.code} expired at {row.valid_until.isoformat()}, before "
            f"order {order_id} ({moment.isoformat()}); issue a new code if it should apply"
        )
    if moment < row.valid_from:
        raise CouponNotRedeemable(
            f"coupon code {row.code} is valid only from {row.valid_from.isoformat()}, after "
            f"order {order_id} ({moment.isoformat()})"
        )
    if user_id is not None and user_id != row.user_id:
        raise CouponNotRedeemable(
            f"coupon code {row.code} was issued to user {row.user_id!r}, not to "
            f"{user_id!r} who placed order {order_id}; codes are personal"
        )
    if currency is not None and currency != row.currency:
        raise CouponNotRedeemable(
            f"order {order_id} is in {currency} but coupon code {row.code} is in "
            f"{row.currency} (the program's currency); pass the order's value converted "
            f"to {row.currency} and currency={row.currency!r}"
        )
    if order_value < row.min_order:
        raise CouponNotRedeemable(
            f"order {order_id} is worth {_money(order_value, row.currency)}, below coupon "
            f"code {row.code}'s minimum order of {_money(row.min_order, row.currency)}"
        )
    if row.categories is not None:
        allowed = json.loads(row.categories)
        if cats is None:
            raise CouponNotRedeemable(
                f"coupon code {row.code} applies only to categories {allowed}; pass the "
                f"categories of order {order_id} (categories=[...])"
            )
        if not set(cats) & set(allowed):
            raise CouponNotRedeemable(
                f"coupon code {row.code} applies only to categories {allowed}, and order "
                f"{order_id} has {cats}"
            )


def _discount(row: CouponCode, order_value: float) -> float:
    """The coupon's value (at most the order's) or its percent of the order, in cents
    rounded half up on the decimal figures (15 % of 33.30 is 5.00, not the 4.99 that
    binary floating point gives)."""
    if row.kind == "value":
        return _cents(min(row.amount, order_value))
    return _cents(Decimal(repr(order_value)) * Decimal(repr(row.amount)) / 100)


def _cents(value: float | Decimal) -> float:
    return float(
        Decimal(repr(value) if isinstance(value, float) else value).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    )


def _same_request(key: str, first_text: str, request: dict[str, Any], user: str) -> None:
    first = json.loads(first_text)
    now = json.loads(_canonical(request))
    if first != now:
        differs = [
            f"{name} ({first.get(name)!r} then, {now.get(name)!r} now)"
            for name in sorted(set(first) | set(now))
            if first.get(name) != now.get(name)
        ]
        raise IdempotencyConflict(
            f"the idempotency key {key!r} was already used for {first.get('op')} of user "
            f"{user!r} with other arguments: this call differs in {', '.join(differs)}; "
            "nothing was written. Repeat the first call's arguments to get its result, or "
            "use a new key for a new operation"
        )


def _period_start(at: datetime, per: str, timezone: str) -> str:
    local = as_utc(at).astimezone(ZoneInfo(timezone)).date()
    if per == "week":
        local -= timedelta(days=local.weekday())
    elif per == "month":
        local = local.replace(day=1)
    elif per == "quarter":
        local = local.replace(month=(local.month - 1) // 3 * 3 + 1, day=1)
    elif per == "year":
        local = local.replace(month=1, day=1)
    return local.isoformat()


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_CHARS, 4))


def _program(ws: Any, program: Program | str | Path | None) -> Program:
    """``program`` as given, loaded from its file, or (None) the default program in force
    (``liucun loyalty program apply``)."""
    if program is None:
        return active_program(ws)
    if isinstance(program, Program):
        return program
    if isinstance(program, str | Path):
        return load_program(program)
    raise ConfigError(
        f"program must be a loaded Program or the path of a program file, got {program!r}",
        hint=Hint(option="program", example="examples/loyalty/program.yaml"),
    )


def _program_budget(program: Program) -> float | None:
    return None if program.coupon_budget is None else float(program.coupon_budget)


def _coupon(program: Program, coupon_id: str) -> Coupon:
    for c in program.coupons:
        if c.id == coupon_id:
            return c
    raise LedgerError(
        f"program {program.name!r} has no coupon {coupon_id!r}; its coupons are "
        f"{sorted(c.id for c in program.coupons) or 'none (define them under coupons)'}",
        hint=Hint(option="coupon_id"),
    )


def _benefit(program: Program, benefit_id: str) -> Benefit:
    for b in program.benefits:
        if b.id == benefit_id:
            return b
    raise LedgerError(
        f"program {program.name!r} has no benefit {benefit_id!r}; its benefits are "
        f"{sorted(b.id for b in program.benefits) or 'none (define them under benefits)'}",
        hint=Hint(option="benefit_id"),
    )


def _check_user(user_id: Any) -> None:
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 200:
        raise LedgerError(f"user_id must be a non-empty text (≤ 200 characters), got {user_id!r}")


def _present(value: Any) -> bool:
    return value is not None and value == value and str(value) != ""


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _face(coupon: Coupon, currency: str) -> str:
    if coupon.kind == "value":
        return _money(coupon.amount, currency)
    return f"{coupon.amount:g} % off"


def _balance_after(s: Session, ledger_key: str) -> int:
    from liucun.state import LoyaltyTransaction

    value = s.scalar(
        select(LoyaltyTransaction.balance_after).where(LoyaltyTransaction.key == ledger_key)
    )
    return int(value or 0)


def _issued(c: CouponCode, *, replayed: bool = False) -> IssuedCoupon:
    return IssuedCoupon(
        code=c.code,
        key=c.key,
        program=c.program,
        coupon_id=c.coupon_id,
        user_id=c.user_id,
        kind=c.kind,
        amount=c.amount,
        min_order=c.min_order,
        categories=None if c.categories is None else tuple(json.loads(c.categories)),
        currency=c.currency,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        status=c.status,
        issued_at=c.issued_at,
        redeemed_at=c.redeemed_at,
        replayed=replayed,
    )


def _redemption(
    r: CouponRedemption, c: CouponCode | None, *, replayed: bool = False
) -> CouponRedemptionResult:
    return CouponRedemptionResult(
        code=c.code if c else "?",
        key=r.key,
        coupon_id=c.coupon_id if c else "?",
        user_id=c.user_id if c else "?",
        order_id=r.order_id,
        order_value=r.order_value,
        discount=r.discount,
        currency=r.currency,
        redeemed_at=r.redeemed_at,
        source_event_id=r.source_event_id,
        replayed=replayed,
    )


def _grant(g: BenefitGrant, balance_after: int, *, replayed: bool = False) -> BenefitGrantResult:
    return BenefitGrantResult(
        key=g.key,
        benefit_id=g.benefit_id,
        user_id=g.user_id,
        points=g.points,
        value=g.value,
        ledger_key=g.ledger_key,
        balance_after=balance_after,
        granted_at=g.granted_at,
        replayed=replayed,
    )
