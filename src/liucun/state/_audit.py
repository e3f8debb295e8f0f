"""The audit log: an append-only record of who did what to the workspace."""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from liucun.state._models import AuditEntry


def current_actor() -> str:
    """Who is acting: the OS login name of this process (``uid N`` when it has none, e.g.
    a container without /etc/passwd)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


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
