"""`liucun retention`, `liucun metrics` and `liucun segments`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from liucun.cli._app import (
    AsOfOpt,
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _as_of,
    _emit,
    _open,
    app,
    console,
    friendly,
    parse_day,
    progress_steps,
)


@app.command("retention")
@friendly
def retention_cmd(
    ctx: typer.Context,
    cohort_event: Annotated[
        str, typer.Option(help="Event that puts a unit in a cohort.")
    ] = "order",
    return_event: Annotated[str, typer.Option(help="Event that counts as coming back.")] = "order",
    period: Annotated[str, typer.Option(help="day, week or month.")] = "week",
    kind: Annotated[str, typer.Option(help="n-period, unbounded or bracketed.")] = "n-period",
    brackets: Annotated[str, typer.Option(help="For --kind bracketed: NAME=FROM[-TO],…")] = (
        "D1=1,D2-7=2-7,D8-30=8-30"
    ),
    cohort_type: Annotated[str, typer.Option(help="first-time or recurring.")] = "first-time",
    breakdown: Annotated[
        str | None,
        typer.Option(help="Split cohorts by an event or user column, e.g. channel, country."),
    ] = None,
    entity: Annotated[str, typer.Option(help="user, or account for B2B.")] = "user",
    since: Annotated[
        str | None, typer.Option(help="Only events from this day, YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only events before this day, YYYY-MM-DD; periods after it are incomplete."
        ),
    ] = None,
    max_period: Annotated[int, typer.Option(min=0, help="Last period to report.")] = 12,
    week_start: Annotated[int, typer.Option(min=0, max=6, help="0 = Monday … 6 = Sunday.")] = 0,
    rolling: Annotated[
        bool,
        typer.Option(
            "--rolling", help="With --period day: 24-hour windows from each cohort event."
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Reporting time zone of the periods (default: reporting_timezone in "
            "liucun.toml, else UTC)."
        ),
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Cohort retention: cohort, period, cohort_size, retained, rate, complete.

    Example: [bold]liucun -w shop retention --period week --kind unbounded
    --breakdown channel --format csv[/bold]
    """
    from liucun.metrics import parse_brackets, retention

    start, stop = parse_day(since, "--since"), parse_day(until, "--until")
    with _open(ctx, workspace) as ws:
        table = retention(
            _events_between(ws.events(), start, stop),
            cohort_event=cohort_event,
            return_event=return_event,
            period=period,  # type: ignore[arg-type]  # checked by retention()
            kind=kind,  # type: ignore[arg-type]
            cohort_type=cohort_type,  # type: ignore[arg-type]
            brackets=parse_brackets(brackets),
            entity=entity,  # type: ignore[arg-type]
            breakdown=breakdown,
            users=ws.customers(),
            max_period=max_period,
            as_of=stop or _as_of(None, ws),  # the report's as-of: one convention
            week_start=week_start,
            rolling=rolling,
            timezone=timezone or ws.settings.reporting_timezone,
            custom_event_types=ws.settings.ingest.custom_event_types,
        )
        frame = _retention_frame(table, breakdown)
    _emit(
        frame,
        fmt,
        title=f"{period.capitalize()}ly retention ({kind}, {cohort_type})",
        out=out,
        priority=["cohort", *([breakdown] if breakdown else []), "period", "rate", "retained"],
    )


def _events_between(events: Any, start: datetime | None, stop: datetime | None) -> Any:
    """Events from ``start`` (inclusive) to ``stop`` (exclusive); either may be open."""
    if start is not None:
        events = events.filter(events.ts >= start)
    if stop is not None:
        events = events.filter(events.ts < stop)
    return events


def _retention_frame(table: Any, breakdown: str | None) -> Any:
    """The retention table as printed: cohorts as days, the breakdown column by name."""
    frame = table.to_pandas()
    frame["cohort"] = frame.cohort.map(lambda d: d.date().isoformat())  # a day, not a time
    if breakdown:
        frame = frame.rename(columns={"breakdown": breakdown})
    return frame


@app.command("metrics")
@friendly
def metrics_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Headline KPIs: active customers, D1/D7/D30, repurchase, churn, AOV, LTV/CAC.

    Example: [bold]liucun -w shop metrics --as-of 2026-09-30 --format json[/bold]
    """
    from liucun.reports import headline_kpis

    with _open(ctx, workspace) as ws:
        end = _as_of(as_of, ws)
        events = ws.events()
        frame = headline_kpis(
            events,
            ws.customers(),
            as_of=end,
            timezone=ws.settings.reporting_timezone,
            currency=ws.settings.reporting.currency,
            fx_rates=ws.table("fx_rates"),
        ).drop(columns="kind")
    _emit(frame, fmt, title=f"Metrics up to {end:%Y-%m-%d}", out=out, priority=["metric", "value"])


@app.command("segments")
@friendly
def segments_cmd(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="rfm (11 segments), class (8-class) or stage.")] = "rfm",
    as_of: AsOfOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='Only customers matching, e.g. \'stage == "decline" and country == "DE"\'.',
        ),
    ] = None,
    show_customers: Annotated[
        int,
        typer.Option(
            "--customers", min=0, help="List up to N matching customers instead of counts."
        ),
    ] = 0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Customers per RFM segment, 8-class RFM class or lifecycle stage, with their value.

    Example: [bold]liucun -w shop segments --by rfm
    --filter 'stage in ("decline", "churned") and country == "CN"'[/bold]
    """
    from liucun.segments import segment_customers, segment_summary

    with _open(ctx, workspace) as ws:
        end = _as_of(as_of, ws)
        segment = {"events": ws.events(), "users": ws.customers(), "as_of": end, "by": by}
        if show_customers:
            table = segment_customers(**segment, where=where)
            frame = table.order_by("user_id").limit(show_customers).to_pandas()
            _emit(
                frame,
                fmt,
                title=f"Customers as of {end:%Y-%m-%d}",
                out=out,
                priority=["user_id", "stage", "rfm_segment"],
            )
            return
        frame = segment_summary(**segment, where=where).to_pandas()
    frame = frame.rename(columns={"segment": by})
    _emit(frame, fmt, title=f"Customers by {by} as of {end:%Y-%m-%d}", out=out)


@app.command("report")
@friendly
def report_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(help="HTML file to write (default: WORKSPACE/reports/report-AS_OF.html)."),
    ] = None,
    as_of: AsOfOpt = None,
    breakdown: Annotated[
        str, typer.Option(help="User or event column for the retention curves.")
    ] = "acquisition_channel",
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the retention report: one self-contained HTML file that opens offline.

    Example: [bold]liucun -w shop report --out retention.html --breakdown channel[/bold]
    """
    from liucun.reports import build_report

    with _open(ctx, workspace) as ws:
        end = _as_of(as_of, ws)
        target = out or ws.reports_dir / f"report-{end:%Y-%m-%d}.html"
        with progress_steps("Report") as step:
            path = build_report(ws, target, as_of=end, breakdown=breakdown, on_step=step)
    console.print(f"Wrote the report to [bold]{path.resolve()}[/bold]")
    console.print(f"Open it in a browser: [link]file://{path.resolve()}[/link]")
