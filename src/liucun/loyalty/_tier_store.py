"""Tiers in force, as stored in state (``loyalty_member_tiers``, migration 0005), and
their history (``loyalty_tier_history``): the readers. :func:`~liucun.loyalty.review_tiers`
(:mod:`liucun.loyalty._tier_review`) writes both.

**Effective tier**: the temporary upgrade (``boost_tier`` while ``boost_until`` lies
after the instant, written by the recall package, never by a review) when it ranks
above the tier earned, else the tier earned. The history records changes of the
effective tier. Tiers follow earned growth, never the spendable points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._program import Program
from liucun.state import LoyaltyMemberTier, LoyaltyTierChange

#: Columns of loyalty_member_tiers a review writes (never ``boost_tier``/``boost_until``).
STORED_COLUMNS = ("tier", "growth_in_window", "tier_since", "reviewed_at", "grace_until")
#: Columns of :func:`tier_members`' result.
MEMBER_COLUMNS: tuple[str, ...] = (
    "user_id",
    "tier",
    "earned_tier",
    "tier_since",
    "growth_in_window",
    "reviewed_at",
    "grace_until",
    "boost_tier",
    "boost_until",
)


@dataclass(frozen=True)
class TierChange:
    """One change of a member's effective tier (a ``loyalty_tier_history`` row, the
    ``tier_changed`` event ``event_id`` in the warehouse)."""

    user_id: str
    program: str
    from_tier: str | None
    to_tier: str
    direction: str
    reason: str
    growth_in_window: float
    changed_at: datetime
    event_id: str
    program_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "program": self.program,
            "from": self.from_tier,
            "to": self.to_tier,
            "direction": self.direction,
            "reason": self.reason,
            "growth_in_window": _number(self.growth_in_window),
            "changed_at": self.changed_at.isoformat(),
            "event_id": self.event_id,
        }


# -- reading -------------------------------------------------------------------------------


def current_tiers(ws: Any, program: str = "default") -> dict[str, str]:
    """Each member's stored (earned) tier in ``program`` (members never reviewed are
    absent); :func:`tier_members` gives the effective tier too."""
    with ws.state.read() as s:
        rows = s.execute(
            select(LoyaltyMemberTier.user_id, LoyaltyMemberTier.tier).where(
                LoyaltyMemberTier.program == program
            )
        ).all()
    return {user: tier for user, tier in rows}


def effective_tier(
    tier: str | None,
    boost_tier: str | None,
    boost_until: datetime | None,
    at: datetime,
    names: list[str] | None,
) -> str | None:
    """The tier a member holds at ``at``: ``boost_tier`` while ``boost_until`` lies after
    ``at`` and it ranks above ``tier`` in ``names`` (the program's tiers, lowest first),
    else ``tier``. A boost of a tier the program does not know is ignored; without the
    program (``names`` None) a live boost wins."""
    if boost_tier is None or boost_until is None or as_utc(boost_until) <= as_utc(at):
        return tier
    if names is None:
        return boost_tier
    rank = {n: i for i, n in enumerate(names)}
    if boost_tier not in rank:
        return tier
    return boost_tier if tier is None or rank[boost_tier] > rank.get(tier, -1) else tier


def member_tier(ws: Any, user_id: str, program: str = "default", *, at: datetime) -> str | None:
    """``user_id``'s effective tier at ``at`` (:func:`effective_tier`); None before the
    member's first review. (``account(ws, user).tier`` reads it.)"""
    with ws.state.read() as s:
        row = s.execute(
            select(
                LoyaltyMemberTier.tier, LoyaltyMemberTier.boost_tier, LoyaltyMemberTier.boost_until
            ).where(LoyaltyMemberTier.program == program, LoyaltyMemberTier.user_id == user_id)
        ).first()
    if row is None:
        return None
    tier, boost, until = row
    if boost is None or until is None or until <= as_utc(at) or boost == tier:
        return tier  # no live boost: the program need not be read
    return effective_tier(tier, boost, until, at, _names_in_force(ws, program))


def tier_history(ws: Any, user_id: str, program: str = "default") -> list[TierChange]:
    """Every change of ``user_id``'s effective tier in ``program``, oldest first."""
    with ws.state.read() as s:
        rows = s.scalars(
            select(LoyaltyTierChange)
            .where(LoyaltyTierChange.program == program, LoyaltyTierChange.user_id == user_id)
            .order_by(LoyaltyTierChange.changed_at, LoyaltyTierChange.id)
        ).all()
    return [change_of(r) for r in rows]


def tier_members(
    ws: Any, program: str = "default", *, tier: str | None = None, as_of: datetime | None = None
) -> pd.DataFrame:
    """The members of ``program`` with their tier (:data:`MEMBER_COLUMNS`; ``tier`` is
    the effective tier at ``as_of``, default now; ``earned_tier`` the one their growth
    holds), only those whose effective tier is ``tier`` when given; sorted by user."""
    at = as_utc(as_of or ws.clock.now())
    names = _names_in_force(ws, program)
    if tier is not None and names is not None and tier not in names:
        raise ConfigError(
            f"program {program!r} has no tier {tier!r}; its tiers are {', '.join(names)}",
            hint=Hint(option="tier", example=names[0]),
        )
    with ws.state.read() as s:
        frame = stored_tiers(s, program)
    frame = frame.rename(columns={"tier": "earned_tier"})
    frame["tier"] = [
        effective_tier(t, b, u, at, names)
        for t, b, u in zip(frame.earned_tier, frame.boost_tier, frame.boost_until, strict=True)
    ]
    if tier is not None:
        frame = frame[frame.tier == tier]
    return frame[list(MEMBER_COLUMNS)].sort_values("user_id").reset_index(drop=True)


def tier_distribution(
    ws: Any, program: str = "default", *, as_of: datetime | None = None
) -> pd.DataFrame:
    """Members per effective tier at ``as_of`` (default now): ``tier, threshold, members,
    share, boosted, in_grace``, the program's tiers lowest first (empty ones included);
    a stored tier the program no longer has comes last without a threshold."""
    at = as_utc(as_of or ws.clock.now())
    members = tier_members(ws, program, as_of=at)
    prog = _program_in_force(ws, program)
    thresholds = {t.name: float(t.threshold) for t in prog.tiers} if prog else {}
    order = list(thresholds) + sorted(set(members.tier) - set(thresholds))
    boosted = members.tier != members.earned_tier
    grace = pd.to_datetime(members.grace_until, utc=True).notna()
    total = len(members)
    rows = [
        {
            "tier": name,
            "threshold": thresholds.get(name),
            "members": int((members.tier == name).sum()),
            "share": float((members.tier == name).sum() / total) if total else 0.0,
            "boosted": int((boosted & (members.tier == name)).sum()),
            "in_grace": int((grace & (members.tier == name)).sum()),
        }
        for name in order
    ]
    return pd.DataFrame(
        rows, columns=["tier", "threshold", "members", "share", "boosted", "in_grace"]
    )


def stored_tiers(s: Session, program: str) -> pd.DataFrame:
    cols = ("user_id", *STORED_COLUMNS, "boost_tier", "boost_until")
    rows = s.execute(
        select(*(getattr(LoyaltyMemberTier, c) for c in cols)).where(
            LoyaltyMemberTier.program == program
        )
    ).all()
    frame = pd.DataFrame(rows, columns=list(cols))
    for col in ("tier_since", "reviewed_at", "grace_until", "boost_until"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
    frame["growth_in_window"] = pd.to_numeric(frame.growth_in_window).astype("float64")
    return frame


# -- small helpers -------------------------------------------------------------------------


def _names_in_force(ws: Any, program: str) -> list[str] | None:
    prog = _program_in_force(ws, program)
    return prog.tier_names() if prog is not None and prog.tiers else None


def _program_in_force(ws: Any, program: str) -> Program | None:
    # imported here: _apply imports the ledger, whose account() reads this module
    from liucun.loyalty._apply import active_program

    try:
        return active_program(ws, program)
    except ConfigError:  # no program applied yet
        return None


def change_of(r: LoyaltyTierChange) -> TierChange:
    return TierChange(
        user_id=r.user_id,
        program=r.program,
        from_tier=r.from_tier,
        to_tier=r.to_tier,
        direction=r.direction,
        reason=r.reason,
        growth_in_window=r.growth_in_window,
        changed_at=r.changed_at,
        event_id=r.event_id,
        program_digest=r.program_digest,
    )


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)
