"""The audit log: an append-only record of who did what to the workspace."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from liucun.state._models import AuditEntry


def record_audit(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry (the caller commits). ``details`` must hold no contact data."""
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        target=target,
        details=None if details is None else json.dumps(details, sort_keys=True, default=str),
    )
    session.add(entry)
    session.flush()
    return entry
