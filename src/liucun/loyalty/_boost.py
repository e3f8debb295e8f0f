"""Temporary tier upgrades (the recall package's): ``boost_tier`` on ``loyalty_member_tiers``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import _check_key, _write
from liucun.loyalty._ledger import DEFAULT_PROGRAM
from liucun.loyalty._models import IdempotencyConflict, LedgerError
from liucun.loyalty._program import Program
from liucun.state import LoyaltyMemberTier, LoyaltyNotice

#: ``loyalty_notices.kind`` of a tier boost (its key makes :func:`boost_tier` idempotent).
BOOST_NOTICE = "tier_boost"


@dataclass(frozen=True)
class TierBoost:
    """A temporary tier upgrade written by :func:`boost_tier`."""

    user_id: str
    program: str
    tier: str
    until: datetime
    key: str
    base_tier: str
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "program": self.program,
            "tier": self.tier,
            "until": self.until.isoformat(),
            "key": self.key,
            "base_tier": self.base_tier,
            "replayed": self.replayed,
        }


def boost_tier(
    ws: Any,
    user_id: str,
    *,
    tier: str,
    until: datetime,
    key: str,
    program: str = DEFAULT_PROGRAM,
    loaded: Program | None = None,
) -> TierBoost:
    """Give ``user_id`` the tier ``tier`` of ``program`` until ``until`` (a temporary
    upgrade: ``boost_tier`` and ``boost_until`` on ``loyalty_member_tiers``; the tier
    review keeps them and takes the higher of the two as the tier in effect).

    A member without a row gets one (the program's lowest tier, growth 0, tier since
    now). Idempotent under ``key`` (recorded in ``loyalty_notices``): a replay returns the
    first result and writes nothing; the same key with another user, tier or end is
    refused (:class:`IdempotencyConflict`). ``loaded`` is the program in force when the
    caller has it already (the loss-aversion job), saving a read.
    """
    prog = loaded if loaded is not None else active_program(ws, program)
    names = prog.tier_names()
    if tier not in names:
        raise ConfigError(
            f"program {program!r} has no tier {tier!r}; its tiers are "
            f"{', '.join(names) or 'none (define them under tiers)'}",
            hint=Hint(option="tier", example=names[-1] if names else "进阶"),
        )
    _check_key(key)
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise LedgerError(
            f"until must be an aware datetime, e.g. datetime(2027, 1, 1, tzinfo=UTC), got "
            f"{until!r}",
            hint=Hint(option="until"),
        )
    end = as_utc(until)
    wanted = {"user_id": user_id, "program": program, "tier": tier, "until": end.isoformat()}

    def run(s: Session, now: datetime) -> TierBoost:
        done = s.scalar(select(LoyaltyNotice).where(LoyaltyNotice.key == key))
        if done is not None:
            first = json.loads(done.details)
            was = {
                "user_id": done.user_id,
                "program": done.program,
                "tier": first.get("tier"),
                "until": first.get("until"),
            }
            if done.kind != BOOST_NOTICE or was != wanted:
                differs = ", ".join(
                    f"{k} ({was.get(k)!r} then, {wanted[k]!r} now)"
                    for k in wanted
                    if was.get(k) != wanted[k]
                )
                raise IdempotencyConflict(
                    f"the key {key!r} was already used for a {done.kind} notice with other "
                    f"arguments ({differs or 'another kind'}); nothing was written. Repeat "
                    "the first call's arguments, or use a new key"
                )
            return TierBoost(user_id, program, tier, end, key, first["base_tier"], True)
        if end <= now:
            raise LedgerError(
                f"until {end.isoformat()} is not after now ({now.isoformat()}): the upgrade "
                "would already be over; nothing was written",
                hint=Hint(option="until"),
            )
        row = s.scalar(
            select(LoyaltyMemberTier)
            .where(LoyaltyMemberTier.program == program, LoyaltyMemberTier.user_id == user_id)
            .with_for_update()
        )
        if row is None:
            row = LoyaltyMemberTier(
                program=program,
                user_id=user_id,
                tier=names[0],
                growth_in_window=0.0,
                tier_since=now,
                updated_at=now,
            )
            s.add(row)
        details = {
            "tier": tier,
            "until": end.isoformat(),
            "base_tier": row.tier,
            "previous_boost_tier": row.boost_tier,
            "previous_boost_until": None
            if row.boost_until is None
            else as_utc(row.boost_until).isoformat(),
        }
        row.boost_tier, row.boost_until, row.updated_at = tier, end, now
        s.add(
            LoyaltyNotice(
                key=key,
                program=program,
                user_id=user_id,
                kind=BOOST_NOTICE,
                points=0,
                details=notice_json(details),
                event_id=None,
                created_at=now,
            )
        )
        s.flush()
        return TierBoost(user_id, program, tier, end, key, row.tier)

    return _write(ws, key, wanted, run)


def notice_json(value: dict[str, Any]) -> str:
    """A notice's ``details`` (and an event's properties): canonical JSON."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
