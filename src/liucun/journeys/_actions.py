"""Internal channels: coupon, points, task, tag, tier (a stub until the actions land)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from liucun.state import OutboxMessage

#: Outbox channels performed inside liucun (idempotent by the row's key).
INTERNAL_CHANNELS: tuple[str, ...] = ("coupon", "points", "task", "tag", "tier")


@dataclass(frozen=True)
class ActionResult:
    """What an internal action did: ``ok``; ``refused`` with the reason (a coupon limit,
    a budget) is final and not retried; ``reference`` names what was created."""

    ok: bool
    reference: str | None = None
    detail: str | None = None
    refused: bool = False


def execute_internal(ws: Any, row: OutboxMessage) -> ActionResult:
    """Perform the internal action of outbox ``row`` (idempotent under ``row.key``)."""
    raise NotImplementedError(f"internal channel {row.channel!r} is not implemented yet")
