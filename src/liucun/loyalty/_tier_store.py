"""Tiers in force, as stored in state (``loyalty_member_tiers``, migration 0005)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from liucun.state import LoyaltyMemberTier


def current_tiers(ws: Any, program: str = "default") -> dict[str, str]:
    """Each member's stored tier in ``program`` (members never reviewed are absent)."""
    with ws.state.read() as s:
        rows = s.execute(
            select(LoyaltyMemberTier.user_id, LoyaltyMemberTier.tier).where(
                LoyaltyMemberTier.program == program
            )
        ).all()
    return {user: tier for user, tier in rows}
