"""Alerts: monitors turned into de-duplicated, acknowledgeable alerts with delivery
(docs/alerts.md; the monitors are in :mod:`._alert_monitors`, their statistics in
:mod:`._alert_stats`).

:func:`run_monitors` runs the monitors and applies what they found in one state
transaction. An alert's ``key`` is ``monitor:scope`` (or ``monitor:subject``), unique
among alerts that are not resolved, so each monitor has at most one live alert per scope
value:

- a firing finding with no live alert opens one (``open``) and notifies the targets of
  its level; a level-3 ``customer_risk`` alert also opens a one-to-one service task
  (``service_tasks``, key ``alert:<id>``; :func:`liucun.journeys._tasks.open_task`);
- a firing or holding finding with a live alert updates its message and numbers:
  ``open`` and ``acknowledged`` alerts are not notified again; a ``snoozed`` one stays
  quiet until ``snoozed_until`` and, still firing after it, is ``open`` again and
  notified once more;
- a clear finding (or, for a monitor that judges every key, a missing one) resolves the
  live alert (``resolved``, ``resolved_at``; its key gets ``#<id>`` appended so a later
  episode opens a new alert) and, with ``[alerts] notify_resolved``, says so.

:func:`acknowledge` and :func:`snooze` are the operators' answers; both are audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import Hint, InvalidInput, as_utc
from liucun.journeys._alert_delivery import (
    alert_dict,
    all_addresses,
    check_webhooks,
    ensure_staff_contacts,
    notify,
)
from liucun.journeys._alert_monitors import Finding, MonitorResult, check_monitors
from liucun.journeys._tasks import as_task, open_task, publish_task_events, sla_hours_for
from liucun.state import Alert as AlertRow

ALERT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "snoozed", "resolved")
LIVE = ("open", "acknowledged", "snoozed")
Change = Literal["new", "updated", "reopened", "resolved"]


@dataclass(frozen=True)
class AlertView:
    """One alert as stored (see :class:`liucun.state.Alert`)."""

    id: int
    key: str
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
    resolved_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return alert_dict(self)


@dataclass(frozen=True)
class AlertRaised:
    """What one :func:`run_monitors` did to one alert: ``new`` (opened), ``updated``
    (still firing: numbers refreshed, nobody told again), ``reopened`` (its snooze ended
    while it still fires: told again) or ``resolved``; ``notified`` counts the outbox
    rows enqueued; ``task_id`` is the service task a new level-3 alert opened."""

    alert: AlertView
    change: Change
    notified: int = 0
    task_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.alert.to_dict(),
            "change": self.change,
            "notified": self.notified,
            "task_id": self.task_id,
        }


def as_view(row: AlertRow) -> AlertView:
    """The dataclass view of an alert row."""

    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    return AlertView(
        id=int(row.id),
        key=row.key,
        monitor=row.monitor,
        level=int(row.level),
        scope=row.scope,
        subject=row.subject,
        message=row.message,
        value=row.value,
        baseline=row.baseline,
        status=row.status,
        raised_at=as_utc(row.raised_at),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=utc(row.acknowledged_at),
        snoozed_until=utc(row.snoozed_until),
        resolved_at=utc(row.resolved_at),
    )


def run_monitors(
    ws: Any, now: datetime | None = None, *, monitors: Sequence[str] | None = None
) -> list[AlertRaised]:
    """Run the monitors (default ``[alerts] monitors``) at ``now`` (default the clock),
    open, update, reopen and resolve alerts (module docstring) and enqueue their
    notifications in the outbox (the journeys worker, or ``liucun alerts run
    --deliver``, sends them). Returns what changed, new alerts first."""
    now = as_utc(now if now is not None else ws.clock.now())
    results = check_monitors(ws, now, monitors=monitors)
    cfg = ws.settings.alerts
    check_webhooks(ws, [*cfg.level1.webhook, *cfg.level2.webhook, *cfg.level3.webhook])
    ensure_staff_contacts(ws, all_addresses(cfg))
    with ws.state.write() as s:
        changes, tasks = _apply(s, ws, results, now)
    if tasks:
        publish_task_events(ws, tasks)
    order = {"new": 0, "reopened": 1, "updated": 2, "resolved": 3}
    return sorted(changes, key=lambda c: (order[c.change], c.alert.level, c.alert.key))


def _apply(
    s: Session, ws: Any, results: list[MonitorResult], now: datetime
) -> tuple[list[AlertRaised], list[Any]]:
    names = [r.monitor for r in results]
    live = {
        a.key: a
        for a in s.scalars(
            select(AlertRow).where(AlertRow.status.in_(LIVE), AlertRow.monitor.in_(names))
        )
    }
    notify_resolved = ws.settings.alerts.notify_resolved
    changes: list[AlertRaised] = []
    tasks: list[Any] = []
    for result in results:
        seen: set[str] = set()
        for f in result.findings:
            seen.add(f.key)
            row = live.get(f.key)
            if f.state == "clear":
                if row is not None:
                    changes.append(_resolve(s, ws, row, now, notify_resolved))
                continue
            if row is None:
                if f.state != "firing":
                    continue  # holding only keeps an alert open
                row = _open(s, f, now)
                sent = notify(s, ws, row, "raised", now)
                task_id = None
                if f.task is not None:
                    task = _open_task(s, ws, row, f, now)
                    tasks.append(as_task(task))
                    task_id = int(task.id)
                changes.append(AlertRaised(as_view(row), "new", sent, task_id))
                continue
            _refresh(row, f)
            if row.status == "snoozed" and (
                row.snoozed_until is None or as_utc(row.snoozed_until) <= now
            ):
                row.status = "open"
                row.snoozed_until = None
                s.flush()
                changes.append(
                    AlertRaised(as_view(row), "reopened", notify(s, ws, row, "reopened", now))
                )
            else:
                changes.append(AlertRaised(as_view(row), "updated"))
        if result.covers_all:
            for key, row in live.items():
                if row.monitor == result.monitor and key not in seen and row.status in LIVE:
                    changes.append(_resolve(s, ws, row, now, notify_resolved))
    return changes, tasks


def _open(s: Session, f: Finding, now: datetime) -> AlertRow:
    row = AlertRow(
        key=f.key,
        monitor=f.monitor,
        level=f.level,
        scope=f.scope,
        subject=f.subject,
        message=f.message,
        value=f.value,
        baseline=f.baseline,
        status="open",
        raised_at=now,
    )
    s.add(row)
    s.flush()
    return row


def _refresh(row: AlertRow, f: Finding) -> None:
    row.message, row.value, row.baseline = f.message, f.value, f.baseline


def _resolve(s: Session, ws: Any, row: AlertRow, now: datetime, tell: bool) -> AlertRaised:
    row.status = "resolved"
    row.resolved_at = now
    row.snoozed_until = None
    row.key = f"{row.key}#{row.id}"  # frees the key for the next episode
    s.flush()
    sent = notify(s, ws, row, "resolved", now) if tell else 0
    return AlertRaised(as_view(row), "resolved", sent)


def _open_task(s: Session, ws: Any, row: AlertRow, f: Finding, now: datetime) -> Any:
    cfg = ws.settings.alerts
    info = f.task or {}
    hours = cfg.service_sla_hours or sla_hours_for(
        {"customer_type": info.get("customer_type"), "account_id": info.get("account_id")}
    )
    task, _ = open_task(
        s,
        key=f"alert:{row.id}",
        user_id=str(info.get("user_id") or row.subject),
        queue=cfg.service_queue,
        summary=str(info.get("summary") or row.message),
        sla_hours=hours,
        now=now,
        account_id=info.get("account_id"),
        node=f"alert:{row.id}",
    )
    return task


# -- reading and answering -----------------------------------------------------------------


def list_alerts(
    ws: Any,
    *,
    status: str | None = None,
    level: int | None = None,
    monitor: str | None = None,
    limit: int | None = None,
) -> list[AlertView]:
    """Alerts (filtered), the most severe live ones first: by level (3 first), then the
    newest. ``status`` ``live`` means open, acknowledged or snoozed."""
    query = select(AlertRow)
    if status is not None:
        if status == "live":
            query = query.where(AlertRow.status.in_(LIVE))
        elif status in ALERT_STATUSES:
            query = query.where(AlertRow.status == status)
        else:
            raise InvalidInput(
                f"status must be live or one of {', '.join(ALERT_STATUSES)}, got {status!r}",
                hint=Hint(option="status", example="open"),
            )
    if level is not None:
        if level not in (1, 2, 3):
            raise InvalidInput(
                f"level must be 1, 2 or 3, got {level}", hint=Hint(option="level", example="1")
            )
        query = query.where(AlertRow.level == level)
    if monitor is not None:
        query = query.where(AlertRow.monitor == monitor)
    query = query.order_by(AlertRow.level.desc(), AlertRow.raised_at.desc(), AlertRow.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with ws.state.read() as s:
        return [as_view(a) for a in s.scalars(query)]


def get_alert(ws: Any, alert_id: int) -> AlertView:
    """The alert ``alert_id``."""
    with ws.state.read() as s:
        return as_view(_load(s, alert_id))


def acknowledge(ws: Any, alert_id: int, by: str) -> AlertView:
    """``by`` takes alert ``alert_id`` on: it is ``acknowledged`` (who and when kept) and
    nobody is told of it again until it resolves. Acknowledging again changes nothing;
    a snoozed alert may be acknowledged (its snooze ends); a resolved one may not."""
    who = _who(by)
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _load(s, alert_id)
        if row.status == "resolved":
            raise InvalidInput(
                f"alert {alert_id} resolved at {as_utc(row.resolved_at).isoformat()}; there is "
                "nothing to acknowledge (`liucun alerts list --status open` shows the open ones)"
            )
        changed = row.status != "acknowledged"
        if changed:
            row.status = "acknowledged"
            row.acknowledged_by = who
            row.acknowledged_at = now
            row.snoozed_until = None
        view = as_view(row)
    if changed:
        ws.audit("alerts.acknowledge", target=str(alert_id), by=who, key=view.key)
    return view


def snooze(ws: Any, alert_id: int, until: datetime, by: str) -> AlertView:
    """Silence alert ``alert_id`` until ``until`` (after now): it stays live, its
    numbers keep updating, and nobody is told of it before ``until``; still firing
    then, it is open again and notified. A resolved alert cannot be snoozed."""
    who = _who(by)
    now = as_utc(ws.clock.now())
    until = as_utc(until)
    if until <= now:
        raise InvalidInput(
            f"snooze until {until.isoformat()} is not in the future (now is "
            f"{now.isoformat()}); give a later time, e.g. --until 24h",
            hint=Hint(option="until", example="24h"),
        )
    with ws.state.write() as s:
        row = _load(s, alert_id)
        if row.status == "resolved":
            raise InvalidInput(
                f"alert {alert_id} is resolved; only open or acknowledged alerts can be snoozed"
            )
        row.status = "snoozed"
        row.snoozed_until = until
        view = as_view(row)
    ws.audit("alerts.snooze", target=str(alert_id), by=who, until=until.isoformat(), key=view.key)
    return view


def _who(by: str) -> str:
    who = str(by or "").strip()
    if not who:
        raise InvalidInput(
            "say who answers the alert (by), e.g. --by li.wei",
            hint=Hint(option="by", example="li.wei"),
        )
    if len(who) > 200:
        raise InvalidInput("by is longer than 200 characters; give a name or login")
    return who


def _load(s: Session, alert_id: int) -> AlertRow:
    row = s.get(AlertRow, int(alert_id))
    if row is None:
        raise InvalidInput(
            f"there is no alert {alert_id}; `liucun alerts list` shows them",
            hint=Hint(option="ID"),
        )
    return row
