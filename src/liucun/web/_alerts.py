"""Alerts as the cockpit shows and handles them: read from the ``alerts`` state table,
acknowledged or snoozed by updating the row.

A stand-in until the alerts library (issue 13, item 6) lands: its monitors raise the
rows; when it offers ``acknowledge`` / ``snooze`` functions, these three calls are the
ones to swap for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from liucun.core import ConfigError, InvalidInput, as_utc
from liucun.state import Alert, record_audit
from liucun.workspace import Workspace

#: Alert states; open and snoozed ones still need someone.
ALERT_STATUSES = ("open", "acknowledged", "snoozed", "resolved")
#: The default snooze.
SNOOZE = timedelta(hours=24)


@dataclass(frozen=True)
class AlertView:
    """One alert as the cockpit lists it (``status`` snoozed turns back to open once
    ``snoozed_until`` has passed)."""

    id: int
    monitor: str
    level: int
    scope: str | None
    subject: str | None
    message: str
    value: float | None
    baseline: float | None
    status: str
    raised_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None


def _view(row: Alert, now: datetime) -> AlertView:
    status = row.status
    until = None if row.snoozed_until is None else as_utc(row.snoozed_until)
    if status == "snoozed" and until is not None and until <= now:
        status = "open"
    return AlertView(
        id=row.id,
        monitor=row.monitor,
        level=row.level,
        scope=row.scope,
        subject=row.subject,
        message=row.message,
        value=row.value,
        baseline=row.baseline,
        status=status,
        raised_at=as_utc(row.raised_at),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=None if row.acknowledged_at is None else as_utc(row.acknowledged_at),
        snoozed_until=until,
    )


def list_alerts(ws: Workspace, *, open_only: bool = True, limit: int = 200) -> list[AlertView]:
    """Alerts, most severe level (3) first then newest; ``open_only`` keeps open and
    snoozed ones."""
    now = as_utc(ws.clock.now())
    query = select(Alert).order_by(Alert.level.desc(), Alert.raised_at.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.status.in_(("open", "snoozed")))
    with ws.state.read() as s:
        return [_view(r, now) for r in s.scalars(query)]


def _load(s: object, alert_id: int) -> Alert:
    row = s.get(Alert, alert_id)  # type: ignore[attr-defined]
    if row is None:
        raise ConfigError(f"there is no alert {alert_id}; reload the alerts page")
    return row  # type: ignore[no-any-return]


def acknowledge_alert(ws: Workspace, alert_id: int, *, by: str) -> AlertView:
    """Mark alert ``alert_id`` acknowledged by ``by`` (again: no change)."""
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _load(s, alert_id)
        if row.status == "resolved":
            raise ConfigError(f"alert {alert_id} is resolved already; nothing to acknowledge")
        if row.status != "acknowledged":
            row.status, row.acknowledged_by, row.acknowledged_at = "acknowledged", by, now
            row.snoozed_until = None
            record_audit(
                s, at=now, actor=by, action="alert.acknowledge", target=str(alert_id), details=None
            )
        s.flush()
        return _view(row, now)


def snooze_alert(
    ws: Workspace, alert_id: int, *, by: str, duration: timedelta = SNOOZE
) -> AlertView:
    """Snooze alert ``alert_id`` for ``duration`` (it shows as open again afterwards)."""
    if duration <= timedelta(0):
        raise InvalidInput(f"a snooze must last longer than 0, got {duration}")
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _load(s, alert_id)
        if row.status in ("resolved", "acknowledged"):
            raise ConfigError(f"alert {alert_id} is {row.status}; only open alerts are snoozed")
        row.status, row.snoozed_until = "snoozed", now + duration
        record_audit(
            s,
            at=now,
            actor=by,
            action="alert.snooze",
            target=str(alert_id),
            details={"until": (now + duration).isoformat()},
        )
        s.flush()
        return _view(row, now)
