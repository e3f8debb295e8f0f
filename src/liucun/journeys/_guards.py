"""Send-time guards and arbitration (a stub until the guards land: every row is sent).

The worker calls :func:`review_batch` on the rows it claimed, inside the claiming
transaction, and acts on each :class:`Verdict` (docs/decisions/0007-journeys.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from liucun.state import OutboxMessage


@dataclass(frozen=True)
class Verdict:
    """``send``; ``suppress`` (dropped, with ``reason``); ``hold`` (quiet hours: due again
    at ``until``); ``defer`` (a frequency cap or arbitration: due again at ``until``)."""

    action: Literal["send", "suppress", "hold", "defer"]
    reason: str | None = None
    until: datetime | None = None


def review_batch(
    s: Session, ws: Any, rows: Sequence[OutboxMessage], *, now: datetime
) -> list[Verdict]:
    """One verdict per row of ``rows`` (same order)."""
    return [Verdict("send") for _ in rows]
