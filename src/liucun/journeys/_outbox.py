"""The transactional outbox: side effects written in the same transaction as the state
change that decided them, delivered later by workers (docs/decisions/0007-journeys.md).

:func:`enqueue` is what the engine calls; claiming, sending, retries and outcomes live
beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.state import OutboxMessage


@dataclass(frozen=True)
class Outgoing:
    """One side effect to enqueue.

    ``key`` is the stable idempotency key (the provider sees it); ``payload`` holds the
    rendered content or the action's arguments plus the customer's ``timezone``,
    ``country``, ``language``, ``customer_type``, ``account_id``, the journey's
    ``purpose`` and the action's expected incremental ``value`` — never contact data.
    """

    key: str
    user_id: str
    channel: str
    payload: dict[str, Any] = field(default_factory=dict)
    journey: str | None = None
    version: int | None = None
    node: str | None = None
    enrolment_id: int | None = None
    not_before: datetime | None = None


def enqueue(s: Session, items: Sequence[Outgoing], *, now: datetime) -> int:
    """Insert ``items`` as pending outbox rows (in the caller's transaction); a key
    already in the outbox adds nothing. Returns how many rows were added."""
    if not items:
        return 0
    keys = [i.key for i in items]
    held: set[str] = set()
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        held.update(s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk))))
    added = 0
    for item in items:
        if item.key in held:
            continue
        held.add(item.key)
        s.add(
            OutboxMessage(
                key=item.key,
                journey=item.journey,
                version=item.version,
                node=item.node,
                enrolment_id=item.enrolment_id,
                user_id=item.user_id,
                channel=item.channel,
                payload=json.dumps(item.payload, ensure_ascii=False, sort_keys=True, default=str),
                status="pending",
                attempts=0,
                next_attempt_at=item.not_before or now,
                created_at=now,
                updated_at=now,
            )
        )
        added += 1
    s.flush()
    return added
