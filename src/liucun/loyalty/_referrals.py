"""Referrals: invite codes, the referee's first order crediting both sides, and no reward
when the identity merge shows that referrer and referee are one person.

- :func:`referral_code` gives a referrer one stable code per program (16 characters from
  :mod:`secrets`, the coupons' alphabet; created once, idempotently, under the key
  ``referral-code:<program>:<user>``).
- :func:`refer` records that a referee used a code (``pending``), under an idempotency
  key; refused (:class:`ReferralRefused`) for an unknown code, a referee who is the
  referrer (same id), or a referee referred before (once per program).
- :func:`credit_referrals` first picks up referrals that events carry (a ``signup`` or
  ``order`` event whose ``properties`` hold ``referral_code``, key
  ``referral-event:<event_id>``), then, for each pending referral whose referee's first
  order (the earliest ``order`` worth more than 0 in ``ws.events()``) came at or after
  the referral, credits both sides as ``program.referral`` says — points and growth
  through the ledger (:func:`~liucun.loyalty.award`, key ``referral:<id>:<side>``), a
  coupon through :func:`~liucun.loyalty.issue_coupon` (key ``referral:<id>:<side>:coupon``)
  — and marks it ``credited``. A referral is ``refused`` (with the reason stored) when
  the referee had ordered before being referred, or when referrer and referee are the
  same person: the same canonical id after identity resolution, or a shared alias
  (phone or e-mail hash, device…) in ``identity_links``. Rewards go to the canonical ids.
  Every step is keyed, so a run interrupted half-way completes on the next one and a
  second run credits nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import ibis
from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import LiucunError, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import _aware, _check_key
from liucun.loyalty._coupons import (
    CouponRefused,
    _check_user,
    _new_code,
    _write,
    issue_coupon,
)
from liucun.loyalty._ledger import DEFAULT_PROGRAM, add_growth, award
from liucun.loyalty._membership import _cutoff
from liucun.loyalty._models import IdempotencyConflict
from liucun.loyalty._program import Program, Reward
from liucun.state import LoyaltyReferral, LoyaltyReferralCode

#: Event types whose ``properties.referral_code`` records a referral.
REFERRAL_EVENT_TYPES = ("signup", "order")


class ReferralRefused(LiucunError, ValueError):
    """A referral was refused (unknown code, self-referral, referred before); nothing was
    written. The CLI exits with code 2."""


@dataclass(frozen=True)
class ReferralCode:
    """A referrer's invite code (``created``: this call made it)."""

    code: str
    user_id: str
    program: str
    created_at: datetime
    created: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return out


@dataclass(frozen=True)
class ReferralRecord:
    """A referee who used a referrer's code; ``status`` pending, credited or refused
    (``reason`` says why, or what a credit could not give)."""

    key: str
    program: str
    code: str
    referrer_id: str
    referee_id: str
    status: str
    reason: str | None
    referred_at: datetime
    first_order_event_id: str | None
    credited_at: datetime | None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("referred_at", "credited_at"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


@dataclass(frozen=True)
class CreditResult:
    """What :func:`credit_referrals` did: referrals picked up from events (new ones),
    codes in events liucun did not issue (``unknown_codes``), referrals credited and
    refused now, and how many stay pending (no first order yet)."""

    as_of: datetime
    picked_up: int
    unknown_codes: int
    credited: tuple[ReferralRecord, ...]
    refused: tuple[ReferralRecord, ...]
    pending: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "picked_up": self.picked_up,
            "unknown_codes": self.unknown_codes,
            "credited": [r.to_dict() for r in self.credited],
            "refused": [r.to_dict() for r in self.refused],
            "pending": self.pending,
        }


def referral_code(ws: Any, user_id: str, *, program: str = DEFAULT_PROGRAM) -> ReferralCode:
    """``user_id``'s invite code in ``program``: made on the first call, the same ever
    after (even when two processes ask at once)."""
    _check_user(user_id)
    key = f"referral-code:{program}:{user_id}"

    def run(s: Session, now: datetime) -> ReferralCode:
        row = s.scalar(select(LoyaltyReferralCode).where(LoyaltyReferralCode.key == key))
        if row is not None:
            return _code(row, created=False)
        row = LoyaltyReferralCode(
            code=_new_code(), key=key, program=program, user_id=user_id, created_at=now
        )
        s.add(row)
        s.flush()
        return _code(row, created=True)

    return _write(ws, run)


def refer(
    ws: Any,
    code: str,
    referee_id: str,
    *,
    key: str,
    at: datetime | None = None,
    program: str = DEFAULT_PROGRAM,
) -> ReferralRecord:
    """Record that ``referee_id`` used the invite ``code`` at ``at`` (default now), as a
    pending referral, under ``key``. Replaying the key returns the first result; the same
    key with another code, referee or time is refused (:class:`IdempotencyConflict`)."""
    _check_user(referee_id)
    _check_key(key)
    wanted = str(code).strip().upper()
    given = None if at is None else _aware(at, "at")

    def run(s: Session, now: datetime) -> ReferralRecord:
        when = given or now
        done = s.scalar(select(LoyaltyReferral).where(LoyaltyReferral.key == key))
        if done is not None:
            same = (done.code, done.referee_id, done.program) == (wanted, referee_id, program)
            if not same or (given is not None and as_utc(done.referred_at) != given):
                raise IdempotencyConflict(
                    f"the idempotency key {key!r} was already used to refer {done.referee_id!r}"
                    f" with code {done.code} at {as_utc(done.referred_at).isoformat()}; this "
                    "call differs; nothing was written. Repeat the first call's arguments or "
                    "use a new key"
                )
            return _referral(done, replayed=True)
        if when > now:
            raise ReferralRefused(
                f"at {when.isoformat()} is after now ({now.isoformat()}); a referral is "
                "recorded when it happens"
            )
        owner = s.scalar(
            select(LoyaltyReferralCode).where(
                LoyaltyReferralCode.code == wanted, LoyaltyReferralCode.program == program
            )
        )
        if owner is None:
            raise ReferralRefused(
                f"{wanted!r} is not a referral code of program {program!r}; check the code "
                "(`liucun loyalty referral code USER` prints a referrer's); nothing was "
                "written"
            )
        if owner.user_id == referee_id:
            raise ReferralRefused(
                f"{referee_id!r} cannot use their own referral code {wanted}; a referral "
                "needs another customer; nothing was written"
            )
        before = s.scalar(
            select(LoyaltyReferral).where(
                LoyaltyReferral.program == program, LoyaltyReferral.referee_id == referee_id
            )
        )
        if before is not None:
            raise ReferralRefused(
                f"{referee_id!r} was already referred by {before.referrer_id!r} (code "
                f"{before.code}, {as_utc(before.referred_at):%Y-%m-%d}); a customer is "
                f"referred once per program, so key {key!r} was not used"
            )
        row = LoyaltyReferral(
            key=key,
            program=program,
            code=wanted,
            referrer_id=owner.user_id,
            referee_id=referee_id,
            status="pending",
            reason=None,
            referred_at=when,
        )
        s.add(row)
        s.flush()
        return _referral(row)

    return _write(ws, run)


def credit_referrals(
    ws: Any,
    *,
    as_of: datetime | date | None = None,
    program: str = DEFAULT_PROGRAM,
    on_progress: Callable[[int, int], None] | None = None,
) -> CreditResult:
    """Pick up referrals from events, then credit (or refuse) every pending referral
    whose referee has a first order before ``as_of`` (default now; see the module
    docstring)."""
    cutoff = _cutoff(ws, as_of)
    prog = active_program(ws, program)
    picked, unknown = _pick_up(ws, cutoff, program)
    with ws.state.read() as s:
        every = [
            _referral(r)
            for r in s.scalars(
                select(LoyaltyReferral)
                .where(LoyaltyReferral.program == program)
                .order_by(LoyaltyReferral.id)
            ).all()
        ]
    pending = [r for r in every if r.status == "pending"]
    if not pending:
        return CreditResult(cutoff, picked, unknown, (), (), 0)
    people = sorted({r.referrer_id for r in pending} | {r.referee_id for r in every})
    canon = _canonical_ids(ws, people)
    # a customer referred under two ids that the merge joined is rewarded once
    taken = {canon[r.referee_id]: r for r in every if r.status == "credited"}
    firsts = _first_orders(ws, sorted(set(canon.values())), cutoff)
    shared = _shared_aliases(ws, people)
    credited: list[ReferralRecord] = []
    refused: list[ReferralRecord] = []
    waiting = 0
    for i, r in enumerate(pending):
        if on_progress is not None:
            on_progress(i, len(pending))
        referrer, referee = canon[r.referrer_id], canon[r.referee_id]
        first = firsts.get(referee)
        reason = _same_person(r, referrer, referee, shared)
        if reason is None and referee in taken:
            other = taken[referee]
            reason = (
                f"the identity merge shows referee {r.referee_id!r} is the customer "
                f"{referee!r}, already rewarded as {other.referee_id!r} (referral "
                f"{other.key!r}); a customer is referred once"
            )
        if reason is None and first is None:
            waiting += 1
            continue
        if reason is None and first is not None and first[1] < r.referred_at:
            reason = (
                f"{r.referee_id!r} first ordered at {first[1].isoformat()} (event "
                f"{first[0]}), before the referral at {r.referred_at.isoformat()}: not a new "
                "customer, so no referral reward"
            )
        if reason is not None:
            refused.append(_finish(ws, r.key, "refused", reason, None))
            continue
        assert first is not None
        rewards = prog.referral
        notes = [
            _reward(
                ws,
                prog,
                program,
                r,
                side,
                user,
                None if rewards is None else getattr(rewards, side),
            )
            for side, user in (("referrer", referrer), ("referee", referee))
        ]
        note = "; ".join(n for n in notes if n) or None
        done = _finish(ws, r.key, "credited", note, first[0])
        credited.append(done)
        taken[referee] = done
    if on_progress is not None:
        on_progress(len(pending), len(pending))
    return CreditResult(cutoff, picked, unknown, tuple(credited), tuple(refused), waiting)


def referrals(
    ws: Any, *, program: str = DEFAULT_PROGRAM, status: str | None = None
) -> list[ReferralRecord]:
    """The referrals of ``program`` (with one status), oldest first."""
    query = select(LoyaltyReferral).where(LoyaltyReferral.program == program)
    if status is not None:
        query = query.where(LoyaltyReferral.status == status)
    with ws.state.read() as s:
        return [_referral(r) for r in s.scalars(query.order_by(LoyaltyReferral.id)).all()]


# -- helpers ------------------------------------------------------------------------------


def _pick_up(ws: Any, cutoff: datetime, program: str) -> tuple[int, int]:
    """Refer the customers of signup/order events carrying ``referral_code``; returns
    (new referrals, events with a code liucun did not issue)."""
    from liucun.metrics import property_text

    t = ws.events()
    t = t.filter(t.event_type.isin(list(REFERRAL_EVENT_TYPES)) & (t.ts < cutoff))
    t = t.mutate(referral_code=property_text(t.properties, "referral_code"))
    t = t.filter(t.referral_code.notnull() & t.user_id.notnull())
    frame = t.select("event_id", "user_id", "ts", "referral_code").to_pandas()
    picked = unknown = 0
    for row in frame.sort_values(["ts", "event_id"]).itertuples(index=False):
        try:
            done = refer(
                ws,
                str(row.referral_code),
                str(row.user_id),
                key=f"referral-event:{row.event_id}",
                at=row.ts.to_pydatetime(),
                program=program,
            )
        except ReferralRefused as exc:
            if "is not a referral code" in str(exc):
                unknown += 1
            continue  # their own code, or referred before: nothing to record
        picked += 0 if done.replayed else 1
    return picked, unknown


def _canonical_ids(ws: Any, users: list[str]) -> dict[str, str]:
    """Each user id's canonical id after the identity merge (itself when not merged)."""
    from liucun.warehouse import current_identities

    ids = current_identities(ws.table("identities"))
    ids = ids.filter((ids.alias_type == "user_id") & ids["alias"].isin(users))
    rows = ids.select("alias", "canonical").to_pyarrow().to_pylist()
    found = {r["alias"]: r["canonical"] for r in rows}
    return {u: found.get(u, u) for u in users}


def _first_orders(ws: Any, users: list[str], cutoff: datetime) -> dict[str, tuple[str, datetime]]:
    """Each customer's first order worth more than 0 before ``cutoff`` (ingest refuses an
    order without revenue): (event id, ts)."""
    if not users:
        return {}
    t = ws.events()
    orders = t.filter(
        (t.event_type == "order") & t.user_id.isin(users) & (t.ts < cutoff) & (t.revenue > 0)
    )
    ranked = orders.mutate(
        _n=ibis.row_number().over(group_by="user_id", order_by=[orders.ts, orders.event_id])
    )
    first = ranked.filter(ranked._n == 0).select("user_id", "event_id", "ts")
    return {r["user_id"]: (r["event_id"], as_utc(r["ts"])) for r in first.to_pyarrow().to_pylist()}


def _shared_aliases(ws: Any, users: list[str]) -> dict[str, set[tuple[str, str]]]:
    """The aliases other than user ids linked directly to each user id (``identity_links``,
    either side): a phone or e-mail hash, a device, a cookie."""
    links = ws.table("identity_links")
    a = links.filter((links.alias_type_a == "user_id") & links.alias_a.isin(users)).select(
        user=links.alias_a, kind=links.alias_type_b, alias=links.alias_b
    )
    b = links.filter((links.alias_type_b == "user_id") & links.alias_b.isin(users)).select(
        user=links.alias_b, kind=links.alias_type_a, alias=links.alias_a
    )
    both = a.union(b)
    both = both.filter(both.kind != "user_id")
    out: dict[str, set[tuple[str, str]]] = {}
    for r in both.to_pyarrow().to_pylist():
        out.setdefault(r["user"], set()).add((r["kind"], r["alias"]))
    return out


def _same_person(
    r: ReferralRecord, referrer: str, referee: str, shared: dict[str, set[tuple[str, str]]]
) -> str | None:
    if referrer == referee:
        return (
            f"the identity merge shows referrer {r.referrer_id!r} and referee "
            f"{r.referee_id!r} are the same customer (both resolve to {referrer!r}); no "
            "reward for referring oneself"
        )
    common = shared.get(r.referrer_id, set()) & shared.get(r.referee_id, set())
    if common:
        kinds = ", ".join(sorted({kind for kind, _ in common}))
        return (
            f"referrer {r.referrer_id!r} and referee {r.referee_id!r} share a {kinds} in "
            "the identity links: the same person, so no referral reward"
        )
    return None


def _reward(
    ws: Any,
    prog: Program,
    program: str,
    r: ReferralRecord,
    side: str,
    user: str,
    reward: Reward | None,
) -> str | None:
    """Give one side its reward (keyed); a sentence when a coupon could not be issued."""
    if reward is None:
        return None
    key = f"referral:{r.key}:{side}"
    reason = f"referral {r.code}: {r.referee_id} referred by {r.referrer_id}"
    if reward.points:
        award(
            ws, user, reward.points, key=key, growth=reward.growth, reason=reason, program=program
        )
    elif reward.growth:
        add_growth(ws, user, reward.growth, key=key, reason=reason, program=program)
    if reward.coupon:
        try:
            issue_coupon(ws, reward.coupon, user, key=f"{key}:coupon", program=prog)
        except CouponRefused as exc:
            return f"the {side}'s coupon {reward.coupon!r} was not issued: {exc}"
    return None


def _finish(
    ws: Any, key: str, status: str, reason: str | None, event_id: str | None
) -> ReferralRecord:
    def run(s: Session, now: datetime) -> ReferralRecord:
        row = s.scalar(select(LoyaltyReferral).where(LoyaltyReferral.key == key).with_for_update())
        assert row is not None
        if row.status == "pending":
            row.status, row.reason = status, reason
            row.first_order_event_id = event_id
            row.credited_at = now if status == "credited" else None
        return _referral(row)

    return _write(ws, run)


def _code(row: LoyaltyReferralCode, *, created: bool) -> ReferralCode:
    return ReferralCode(row.code, row.user_id, row.program, as_utc(row.created_at), created)


def _referral(row: LoyaltyReferral, *, replayed: bool = False) -> ReferralRecord:
    return ReferralRecord(
        key=row.key,
        program=row.program,
        code=row.code,
        referrer_id=row.referrer_id,
        referee_id=row.referee_id,
        status=row.status,
        reason=row.reason,
        referred_at=as_utc(row.referred_at),
        first_order_event_id=row.first_order_event_id,
        credited_at=None if row.credited_at is None else as_utc(row.credited_at),
        replayed=replayed,
    )
