"""The weekly report e-mail: the HTML report of the last complete ISO week, built once
into the workspace's ``reports/`` folder and linked (the SMTP adapter sends text and HTML
bodies, not attachments; a self-contained report with Plotly inside is several MB, too
big to mail anyway) from an e-mail to ``[alerts] weekly`` with the live alerts.

Idempotent per ISO week and recipient: the outbox key is
``alerts:weekly:<YYYY-Www>:email:<staff id>``, so running it again in the same week
builds nothing and sends nothing; a recipient added later in the week still gets it.

The report builder lives in a layer above journeys (``liucun.reports``), so the caller
passes it: ``send_weekly_report(ws, build)`` with ``build(ws, out, as_of) -> Path``
(``liucun alerts weekly`` passes :func:`liucun.reports.build_report`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from liucun.core import ConfigError, Hint, as_utc
from liucun.journeys._alert_delivery import LEVEL_NAMES, ensure_staff_contacts
from liucun.journeys._alert_series import local_midnight_utc
from liucun.journeys._alerts import list_alerts
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import OutboxMessage

Builder = Callable[[Any, Path, datetime], Path]


@dataclass(frozen=True)
class WeeklyReport:
    """What :func:`send_weekly_report` did: the ISO ``week`` (``2026-W39``) the report
    covers, its file, the e-mails ``enqueued`` now, and whether every recipient had it
    already (``already_sent``: nothing was built or enqueued)."""

    week: str
    path: Path
    recipients: int
    enqueued: int
    already_sent: bool
    link: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "path": str(self.path),
            "recipients": self.recipients,
            "enqueued": self.enqueued,
            "already_sent": self.already_sent,
            "link": self.link,
        }


def report_week(now: datetime, timezone: str) -> tuple[str, datetime, datetime]:
    """The last complete ISO week before ``now`` in ``timezone``: its label and its
    start and end instants (UTC; end exclusive, Monday 00:00 local).

    >>> from datetime import UTC
    >>> report_week(datetime(2026, 10, 1, 9, tzinfo=UTC), "UTC")[0]
    '2026-W39'
    """
    today = as_utc(now).astimezone(ZoneInfo(timezone)).date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(days=7)
    year, week, _ = first.isocalendar()
    return (
        f"{year}-W{week:02d}",
        local_midnight_utc(first, timezone),
        local_midnight_utc(monday, timezone),
    )


def send_weekly_report(ws: Any, build: Builder, *, now: datetime | None = None) -> WeeklyReport:
    """Build the report of the last complete ISO week (as of its end, or the data end
    when that is earlier) with ``build`` and enqueue an e-mail linking it to each of
    ``[alerts] weekly`` (module docstring)."""
    cfg = ws.settings.alerts
    if not cfg.weekly:
        raise ConfigError(
            "nobody receives the weekly report: set [alerts] weekly = "
            '["growth-team@shop.cn"] in liucun.toml',
            hint=Hint(option="weekly", setting="alerts.weekly"),
        )
    now = as_utc(now if now is not None else ws.clock.now())
    tz = ws.settings.reporting_timezone
    week, _, end = report_week(now, tz)
    staff = ensure_staff_contacts(ws, cfg.weekly)
    keys = {f"alerts:weekly:{week}:email:{uid}": uid for uid in staff.values()}
    with ws.state.read() as s:
        held = set(s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(list(keys)))))
    path = ws.reports_dir / f"weekly-{week}.html"
    link = _link(cfg, path)
    if held == set(keys):
        return WeeklyReport(week, path, len(keys), 0, True, link)
    if not path.exists():
        data_end = ws.data_end()
        as_of = min(end, data_end) if data_end is not None else end
        path.parent.mkdir(parents=True, exist_ok=True)
        build(ws, path, as_of)
    subject, text, markup = _content(ws, week, link)
    items = [
        Outgoing(
            key=key,
            user_id=uid,
            channel="email",
            payload={
                "subject": subject,
                "body": markup,
                "text": text,
                "html": markup,
                "purpose": "transactional",
                "timezone": tz,
                "report_week": week,
                "locale": "en",
            },
        )
        for key, uid in keys.items()
        if key not in held
    ]
    with ws.state.write() as s:
        added = enqueue(s, items, now=now)
    ws.audit("alerts.weekly", target=week, enqueued=added)
    return WeeklyReport(week, path, len(keys), added, False, link)


def _link(cfg: Any, path: Path) -> str:
    if cfg.report_url:
        return f"{cfg.report_url.rstrip('/')}/{path.name}"
    return path.resolve().as_uri()


def _content(ws: Any, week: str, link: str) -> tuple[str, str, str]:
    live = list_alerts(ws, status="live")
    counts = {level: sum(1 for a in live if a.level == level) for level in (1, 2, 3)}
    shop = ws.settings.journeys.shop_name
    subject = f"liucun weekly report {week}" + (f" — {shop}" if shop else "")
    summary = ", ".join(f"{counts[lv]} level {lv} ({LEVEL_NAMES[lv]})" for lv in (1, 2, 3))
    lines = [
        f"The retention report for {week} is ready: {link}",
        "",
        f"Live alerts: {summary}.",
    ]
    lines += [f"- L{a.level} [{a.status}] {a.message}" for a in live[:10]]
    if len(live) > 10:
        lines.append(f"… and {len(live) - 10} more (`liucun alerts list --status live`).")
    items = "".join(
        f"<li>L{a.level} [{html.escape(a.status)}] {html.escape(a.message)}</li>" for a in live[:10]
    )
    markup = (
        f"<html><body><p>The retention report for {html.escape(week)} is ready: "
        f"<a href='{html.escape(link)}'>{html.escape(link)}</a></p>"
        f"<p>Live alerts: {html.escape(summary)}.</p>"
        + (f"<ul>{items}</ul>" if items else "")
        + "</body></html>"
    )
    return subject, "\n".join(lines), markup
