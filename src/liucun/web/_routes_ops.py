"""Operations: the alerts list (acknowledge, snooze: the alerts library of
:mod:`liucun.journeys`, as ``liucun alerts ack|snooze``) and the service task queue with
its SLA status (respond, close)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liucun.core import LiucunError, as_utc
from liucun.journeys import (
    AlertView,
    Task,
    acknowledge,
    close_task,
    list_alerts,
    list_tasks,
    respond_task,
    snooze,
)
from liucun.state import record_audit
from liucun.web._auth import Operator, Viewer
from liucun.web._cockpit import base_path, cockpit_of, flash, is_htmx, language, render
from liucun.web._i18n import translate

router = APIRouter()

#: An open task with less than this share of its SLA left shows yellow.
SLA_WARNING_SHARE = 0.25
#: How long the snooze button silences an alert.
SNOOZE = timedelta(hours=24)
#: The most alerts the page lists.
ALERTS_SHOWN = 200


def waiting_alerts(ws: Any) -> list[AlertView]:
    """The alerts that still need someone: open and snoozed ones, most severe first."""
    return [a for a in list_alerts(ws, status="live") if a.status != "acknowledged"]


def duration(delta: timedelta) -> str:
    """A short duration: ``45 min``, ``3 h 20 min``, ``2 d 4 h``.

    >>> duration(timedelta(minutes=200)), duration(timedelta(days=2, hours=4, minutes=5))
    ('3 h 20 min', '2 d 4 h')
    """
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def sla_status(task: Task, now: datetime, lang: str) -> tuple[str, str]:
    """(colour, sentence) of ``task``'s SLA at ``now``."""
    due = as_utc(task.sla_due_at)
    responded = task.responded_at
    if task.status == "breached" or (task.breached_at is not None and responded is None):
        since = now - as_utc(task.breached_at or due)
        return "red", translate(lang, "tasks.breached", time=duration(since))
    if responded is not None:
        if as_utc(responded) <= due:
            return "green", translate(lang, "tasks.met")
        return "red", translate(lang, "tasks.breached", time=duration(now - due))
    if now >= due:
        return "red", translate(lang, "tasks.overdue", time=duration(now - due))
    total = due - as_utc(task.created_at)
    left = due - now
    colour = "yellow" if total.total_seconds() > 0 and left / total < SLA_WARNING_SHARE else "green"
    return colour, translate(lang, "tasks.due_in", time=duration(left))


# -- alerts ------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, user: Viewer, show: str = "open") -> Response:
    cockpit = cockpit_of(request)
    with cockpit.using():
        if show == "all":
            rows = list_alerts(cockpit.ws, limit=ALERTS_SHOWN)
        else:
            rows = waiting_alerts(cockpit.ws)[:ALERTS_SHOWN]
    return render(request, "alerts.html.j2", page="/alerts", rows=rows, show=show)


def _alert_action(request: Request, alert_id: int, user: Any, action: str) -> Response:
    cockpit = cockpit_of(request)
    by = f"web:{user.username}"
    error = None
    try:
        if action == "ack":
            row = cockpit.run(lambda: acknowledge(cockpit.ws, alert_id, by=by))
        else:
            until = as_utc(cockpit.ws.clock.now()) + SNOOZE
            row = cockpit.run(lambda: snooze(cockpit.ws, alert_id, until=until, by=by))
    except LiucunError as exc:
        error, row = str(exc), None
    if is_htmx(request):
        if row is None:
            return render(request, "_result.html.j2", ok=False, text=error)
        return render(request, "_alert_row.html.j2", a=row)
    if error:
        flash(request, error, "error")
    return RedirectResponse(base_path(request) + "/alerts", status_code=303)


@router.post("/alerts/{alert_id}/ack", response_class=HTMLResponse)
def acknowledge_page(request: Request, alert_id: int, user: Operator) -> Response:
    return _alert_action(request, alert_id, user, "ack")


@router.post("/alerts/{alert_id}/snooze", response_class=HTMLResponse)
def snooze_page(request: Request, alert_id: int, user: Operator) -> Response:
    return _alert_action(request, alert_id, user, "snooze")


# -- service tasks -----------------------------------------------------------------------


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request, user: Viewer, status: str | None = None) -> Response:
    cockpit = cockpit_of(request)
    lang = language(request, user)
    try:
        with cockpit.using():
            found = list_tasks(cockpit.ws, status=status or None)
    except LiucunError as exc:
        flash(request, str(exc), "error")
        found = []
    now = as_utc(cockpit.ws.clock.now())
    if status is None:  # the queue: unfinished tasks first, soonest due first
        found.sort(key=lambda t: (t.status == "closed", as_utc(t.sla_due_at)))
    rows = [(task, *sla_status(task, now, lang)) for task in found]
    return render(request, "tasks.html.j2", page="/tasks", rows=rows, status=status or "")


def _task_action(request: Request, task_id: int, user: Any, action: str) -> Response:
    cockpit = cockpit_of(request)
    ws = cockpit.ws
    lang = language(request, user)

    def act() -> Task:
        task = respond_task(ws, task_id) if action == "respond" else close_task(ws, task_id)
        with ws.state.write() as s:
            record_audit(
                s,
                at=as_utc(ws.clock.now()),
                actor=f"web:{user.username}",
                action=f"web.task.{action}",
                target=str(task_id),
                details=None,
            )
        return task

    try:
        task = cockpit.run(act)
    except LiucunError as exc:
        if is_htmx(request):
            return render(request, "_result.html.j2", ok=False, text=str(exc))
        flash(request, str(exc), "error")
        return RedirectResponse(base_path(request) + "/tasks", status_code=303)
    if is_htmx(request):
        colour, text = sla_status(task, as_utc(ws.clock.now()), lang)
        return render(request, "_task_row.html.j2", task=task, colour=colour, sla=text)
    return RedirectResponse(base_path(request) + "/tasks", status_code=303)


@router.post("/tasks/{task_id}/respond", response_class=HTMLResponse)
def respond(request: Request, task_id: int, user: Operator) -> Response:
    return _task_action(request, task_id, user, "respond")


@router.post("/tasks/{task_id}/close", response_class=HTMLResponse)
def close(request: Request, task_id: int, user: Operator) -> Response:
    return _task_action(request, task_id, user, "close")
