"""``liucun alerts …``: run the monitors, list alerts, acknowledge, snooze, and the
weekly report e-mail. Each command parses, calls one function of
:mod:`liucun.journeys` and renders (docs/alerts.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly
from liucun.cli._consent import Format, FormatOpt, _json

alerts_app = typer.Typer(
    help="Monitors and alerts: retention by region (level 1, the team), conversion by "
    "category (level 2, its owner), valuable customers at risk and SLA breaches (level 3, "
    "one-to-one service), the retention forecast and coupon cost; de-duplicated, "
    "delivered by e-mail and webhook, acknowledged or snoozed.\n\n"
    "Example: [bold]liucun -w shop alerts run --deliver[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(alerts_app, name="alerts")

LEVEL = {1: "team", 2: "owner", 3: "service"}


def _alert_table(alerts: list[Any], title: str, changes: dict[int, str] | None = None) -> None:
    table = Table(title=title)
    cols = ["id", "level", "status", "monitor", "scope", "raised (UTC)", "message"]
    if changes is not None:
        cols.insert(1, "change")
    for col in cols:
        table.add_column(col, overflow="fold")
    for a in alerts:
        cells = [
            str(a.id),
            f"{a.level} {LEVEL[a.level]}",
            a.status
            + (f" until {a.snoozed_until:%Y-%m-%d %H:%M}" if a.snoozed_until else "")
            + (f" by {a.acknowledged_by}" if a.status == "acknowledged" else ""),
            a.monitor,
            escape(a.subject or a.scope or ""),
            f"{a.raised_at:%Y-%m-%d %H:%M}",
            escape(a.message),
        ]
        if changes is not None:
            cells.insert(1, changes.get(a.id, ""))
        table.add_row(*cells)
    console.print(table)


@alerts_app.command("run")
@friendly
def run_cmd(
    ctx: typer.Context,
    monitor: Annotated[
        list[str] | None,
        typer.Option(
            "--monitor",
            help="Only this monitor (repeatable): retention, conversion, customer_risk, "
            "retention_forecast, coupon_cost, sla_breach. Default: [alerts] monitors.",
        ),
    ] = None,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Also send what is due in the outbox now.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run the monitors once: open alerts for what fires (one per monitor and scope),
    refresh the live ones, reopen snoozed ones whose snooze ended, resolve what
    recovered, and queue the e-mails and webhooks of their level's targets. Run it daily
    (after the night's load), e.g. from cron.

    Example: [bold]liucun -w shop alerts run --deliver[/bold], or
    [bold]liucun -w shop alerts run --monitor retention --monitor conversion[/bold]
    """
    from liucun.journeys import deliver_due, run_monitors

    with _open(ctx, workspace) as ws:
        changes = run_monitors(ws, monitors=monitor or None)
        run = deliver_due(ws, worker_id="liucun-alerts") if deliver else None
    if fmt is Format.json:
        out: dict[str, Any] = {"changes": [c.to_dict() for c in changes]}
        if run is not None:
            out["delivered"] = {"sent": run.sent, "failed": run.failed, "retried": run.retried}
        _json(out)
        return
    counts = {
        k: sum(1 for c in changes if c.change == k)
        for k in ("new", "reopened", "updated", "resolved")
    }
    queued = sum(c.notified for c in changes)
    console.print(
        f"Alerts: {counts['new']} new, {counts['reopened']} reopened, {counts['updated']} "
        f"still firing, {counts['resolved']} resolved; {queued} notification(s) queued.",
        highlight=False,
    )
    if changes:
        _alert_table(
            [c.alert for c in changes], "this run", {c.alert.id: c.change for c in changes}
        )
    tasks = [c for c in changes if c.task_id is not None]
    for c in tasks:
        console.print(
            f"Opened service task {c.task_id} for customer {escape(c.alert.subject or '')} "
            f"(`liucun tasks list --queue {escape(ws.settings.alerts.service_queue)}`).",
            highlight=False,
        )
    if run is not None:
        console.print(
            f"Delivered: {run.sent} sent, {run.retried} to retry, {run.failed} failed.",
            highlight=False,
        )


@alerts_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="open, acknowledged, snoozed, resolved, or live (the first three)."),
    ] = None,
    level: Annotated[int | None, typer.Option(help="1 (team), 2 (owner) or 3 (service).")] = None,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List alerts: level 3 first, then the newest.

    Example: [bold]liucun -w shop alerts list --status open[/bold]
    """
    from liucun.journeys import list_alerts

    with _open(ctx, workspace) as ws:
        alerts = list_alerts(ws, status=status, level=level, monitor=monitor, limit=limit)
    if fmt is Format.json:
        _json([a.to_dict() for a in alerts])
        return
    if not alerts:
        console.print("No alerts match.")
        return
    _alert_table(alerts, f"{len(alerts)} alert(s)")


@alerts_app.command("ack")
@friendly
def ack_cmd(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id (alerts list).")],
    by: Annotated[str, typer.Option("--by", help="Who takes it on (a name or login).")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Acknowledge alert ID: nobody is told of it again until it resolves.

    Example: [bold]liucun -w shop alerts ack 12 --by li.wei[/bold]
    """
    from liucun.journeys import acknowledge

    with _open(ctx, workspace) as ws:
        a = acknowledge(ws, alert_id, by)
    if fmt is Format.json:
        _json(a.to_dict())
        return
    console.print(
        f"Alert {a.id} acknowledged by {escape(a.acknowledged_by or '')} at "
        f"{a.acknowledged_at:%Y-%m-%d %H:%M} UTC: {escape(a.message)}",
        highlight=False,
    )


def parse_until(text: str, now: datetime) -> datetime:
    """``--until``: a duration from now (``24h``, ``2d``, ``30m``) or an ISO 8601 instant
    (a date or naive time is UTC)."""
    from liucun.core import InvalidInput, as_utc
    from liucun.journeys import parse_duration

    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--until {text!r} is neither a duration (24h, 2d, 30m) nor an ISO 8601 instant "
            "(2026-10-02T09:00:00+08:00)"
        ) from None
    return as_utc(value if value.tzinfo else value.replace(tzinfo=UTC))


@alerts_app.command("snooze")
@friendly
def snooze_cmd(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id (alerts list).")],
    until: Annotated[
        str, typer.Option("--until", help="A duration (24h, 2d) or an ISO 8601 instant.")
    ],
    by: Annotated[str, typer.Option("--by", help="Who snoozes it.")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Snooze alert ID: no one is told of it before --until; if it still fires then, it
    is open again and notified.

    Example: [bold]liucun -w shop alerts snooze 12 --until 24h --by li.wei[/bold], or
    [bold]--until 2026-10-02T09:00:00+08:00[/bold]
    """
    from liucun.journeys import snooze

    with _open(ctx, workspace) as ws:
        a = snooze(ws, alert_id, parse_until(until, ws.clock.now()), by)
    if fmt is Format.json:
        _json(a.to_dict())
        return
    console.print(
        f"Alert {a.id} snoozed until {a.snoozed_until:%Y-%m-%d %H:%M} UTC: {escape(a.message)}",
        highlight=False,
    )


@alerts_app.command("weekly")
@friendly
def weekly_cmd(
    ctx: typer.Context,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Also send what is due in the outbox now.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Build the report of the last complete ISO week into reports/weekly-YYYY-Www.html
    and e-mail a link to it, with the live alerts, to [alerts] weekly. Once per week and
    recipient: running it again the same week sends nothing.

    Example: [bold]liucun -w shop alerts weekly --deliver[/bold] (e.g. from cron on Monday)
    """
    from liucun.journeys import deliver_due, send_weekly_report
    from liucun.reports import build_report

    def build(ws: Any, out: Any, as_of: datetime) -> Any:
        return build_report(ws, out, as_of=as_of)

    with _open(ctx, workspace) as ws:
        with console.status("Building the weekly report…"):
            done = send_weekly_report(ws, build)
        run = deliver_due(ws, worker_id="liucun-alerts") if deliver else None
    if fmt is Format.json:
        out = done.to_dict()
        if run is not None:
            out["delivered"] = {"sent": run.sent, "failed": run.failed}
        _json(out)
        return
    if done.already_sent:
        console.print(
            f"The weekly report {done.week} went to all {done.recipients} recipient(s) already; "
            "nothing sent.",
            highlight=False,
        )
    else:
        console.print(
            f"Weekly report {done.week}: {escape(str(done.path))}; {done.enqueued} e-mail(s) "
            f"queued, linking {escape(done.link)}.",
            highlight=False,
        )
    if run is not None:
        console.print(f"Delivered: {run.sent} sent, {run.failed} failed.", highlight=False)
