"""Shared by tests/loyalty/test_tier_store*.py: a workspace with the example program
applied, a clock moved to each review, and readers of the stored tiers, the history and
the warehouse's ``tier_changed`` events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.state import LoyaltyMemberTier, LoyaltyTierChange
from liucun.workspace import Workspace, init_workspace

EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"


def utc(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


T0 = utc(2026, 6, 15)


def tier_workspace(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    """The test files' ``ws`` fixture: a workspace at ``T0`` with the example program."""
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        loyalty.apply_program(w, EXAMPLE)
        yield w


def variant(ws: Workspace, tmp_path: Path, **replace: str) -> None:
    """Apply the example program with some lines replaced (old=new)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "variant.yaml"
    path.write_text(text, encoding="utf-8")
    loyalty.apply_program(ws, path)


def at(ws: Workspace, when: datetime) -> loyalty.TierReview:
    """Move the clock to ``when`` and review there."""
    ws.clock.set(when)  # type: ignore[attr-defined]
    return loyalty.review_tiers(ws)


def tiers(ws: Workspace) -> dict[str, str]:
    return loyalty.current_tiers(ws)


def history(ws: Workspace, user: str) -> list[tuple[str | None, str, str]]:
    return [(c.from_tier, c.to_tier, c.direction) for c in loyalty.tier_history(ws, user)]


def stored(ws: Workspace, user: str) -> LoyaltyMemberTier:
    with ws.state.read() as s:
        row = s.scalar(select(LoyaltyMemberTier).where(LoyaltyMemberTier.user_id == user))
    assert row is not None
    return row


def state_rows(ws: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored tier row and history row: a no-op review leaves them as they were."""
    with ws.state.read() as s:
        members = s.execute(
            select(
                LoyaltyMemberTier.user_id,
                LoyaltyMemberTier.tier,
                LoyaltyMemberTier.growth_in_window,
                LoyaltyMemberTier.tier_since,
                LoyaltyMemberTier.reviewed_at,
                LoyaltyMemberTier.grace_until,
                LoyaltyMemberTier.boost_tier,
                LoyaltyMemberTier.boost_until,
                LoyaltyMemberTier.updated_at,
            ).order_by(LoyaltyMemberTier.user_id)
        ).all()
        changes = s.execute(
            select(LoyaltyTierChange.event_id, LoyaltyTierChange.to_tier).order_by(
                LoyaltyTierChange.id
            )
        ).all()
    return {"members": [tuple(r) for r in members], "history": [tuple(r) for r in changes]}


def warehouse_events(ws: Workspace) -> list[dict[str, Any]]:
    ev = ws.table("events")
    rows = (
        ev.filter(ev.event_type == "tier_changed")
        .select("event_id", "user_id", "ts", "properties")
        .order_by("event_id")
        .to_pyarrow()
        .to_pylist()
    )
    return rows


def history_ids(ws: Workspace) -> list[str]:
    with ws.state.read() as s:
        return sorted(s.scalars(select(LoyaltyTierChange.event_id)).all())


def boost(ws: Workspace, user: str, tier: str, until: datetime) -> None:
    """What the recall package's own function does: write the two boost columns."""
    with ws.state.write() as s:
        s.execute(
            update(LoyaltyMemberTier)
            .where(LoyaltyMemberTier.user_id == user)
            .values(boost_tier=tier, boost_until=until)
        )
