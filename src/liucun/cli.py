"""The ``liucun`` command line: parse, call one library function with progress, render.

A :class:`~liucun.core.LiucunError` becomes one red sentence and exit code 1; a
traceback means a bug.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from liucun.core import LiucunError, RejectRateExceeded

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err_console = Console(stderr=True)
DEFAULT_WORKSPACE = "./liucun-data"

app = typer.Typer(
    name="liucun",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ingest_app = typer.Typer(
    help="Load events, users, a simulated shop or CDNOW into the warehouse.\n\n"
    "Example: [bold]liucun -w shop ingest events 'exports/*.csv.gz'[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
quarantine_app = typer.Typer(
    help="Inspect rows that ingestion rejected.\n\n"
    "Example: [bold]liucun -w shop quarantine show --limit 5[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(quarantine_app, name="quarantine")

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace directory (default: $LIUCUN_WORKSPACE, else ./liucun-data).",
        show_default=False,
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(message, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _one_line(exc: Exception) -> str:
    """The error as one line of literal text (never Rich markup)."""
    return escape(" ".join(str(exc).split()))


def friendly(fn: F) -> F:
    """Turn LiucunError into a one-line message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RejectRateExceeded as exc:
            raise _fail(f"[red]RejectRateExceeded[/red]: {_one_line(exc)}", 2) from None
        except LiucunError as exc:
            raise _fail(f"[red]{type(exc).__name__}[/red]: {_one_line(exc)}") from None
        except KeyboardInterrupt:
            raise _fail("[yellow]Interrupted[/yellow]: nothing was committed.", 130) from None

    return wrapper  # type: ignore[return-value]


def _workspace_path(ctx: typer.Context, given: Path | None) -> Path:
    if given is not None:
        return given
    root = ctx.find_root().obj or {}
    if root.get("workspace") is not None:
        return Path(root["workspace"])
    return Path(os.environ.get("LIUCUN_WORKSPACE") or DEFAULT_WORKSPACE)


def _open(ctx: typer.Context, given: Path | None) -> Any:
    from liucun.warehouse import open_workspace

    return open_workspace(_workspace_path(ctx, given))


@app.callback()
def main_callback(ctx: typer.Context, workspace: WorkspaceOpt = None) -> None:
    """liucun (留存): retention analytics, prediction and action for e-commerce.

    Example: [bold]liucun -w shop init[/bold], then
    [bold]liucun -w shop ingest events orders.csv[/bold]
    """
    ctx.obj = {"workspace": workspace}


@app.command()
@friendly
def init(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(help="Where to create it.")] = None,
    warehouse_url: Annotated[str, typer.Option(help="'duckdb' or 'pyspark'.")] = "duckdb",
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a workspace: liucun.toml, the warehouse, models/ and reports/.

    Example: [bold]liucun init ./shop[/bold]
    """
    from liucun.warehouse import init_workspace

    path = directory or _workspace_path(ctx, workspace)
    with init_workspace(path, warehouse_url=warehouse_url) as ws:
        console.print(
            f"Workspace ready at [bold]{ws.path}[/bold] (warehouse: {ws.warehouse.backend_name})."
        )
        console.print(
            f"Next: [bold]liucun -w {path} ingest events FILE[/bold] "
            f"or [bold]liucun -w {path} ingest simulated DIR[/bold]"
        )


# -- ingest -------------------------------------------------------------------------------

MapOpt = Annotated[
    list[str] | None, typer.Option("--map", "-m", help="YOUR_COLUMN=canonical_column; repeatable.")
]
TsFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--timestamp-format", help="strftime format of timestamps, e.g. '%d/%m/%Y %H:%M'."
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        "--source-timezone", help="Time zone of timestamps without an offset, e.g. Asia/Shanghai."
    ),
]
RejectOpt = Annotated[
    float | None,
    typer.Option(
        "--max-reject-rate",
        min=0.0,
        max=1.0,
        help="Fail (exit 2, nothing loaded) when a larger share of rows is rejected.",
    ),
]


def _options(ws: Any, **overrides: Any) -> Any:
    from liucun.core import check_timezone
    from liucun.ingest import IngestOptions, parse_mapping

    if overrides.get("mapping") is not None:
        overrides["mapping"] = parse_mapping(overrides["mapping"])
    if overrides.get("source_timezone") is not None:
        check_timezone(overrides["source_timezone"])
    return IngestOptions.from_settings(ws.settings, **overrides)


def _run_ingest(fn: Callable[..., Any], ws: Any, paths: list[Any], options: Any) -> Any:
    with console.status("Ingesting…") as status:
        return fn(ws.warehouse, paths, options, on_step=lambda m: status.update(f"Ingesting: {m}"))


def _summary(result: Any, ws_path: Path) -> None:
    table = Table(title=f"Load {result.load_id} → {result.target}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("files", f"{len(result.sources):,}")
    table.add_row("rows read", f"{result.rows_read:,}")
    table.add_row("accepted (new)", f"[green]{result.accepted:,}[/green]")
    if result.target == "users":
        table.add_row("updated", f"{result.updated:,}")
    table.add_row("duplicates (already loaded)", f"{result.duplicates:,}")
    table.add_row(
        "quarantined", f"[red]{result.quarantined:,}[/red]" if result.quarantined else "0"
    )
    if result.identity_links:
        table.add_row("new identity links", f"{result.identity_links:,}")
        table.add_row("accounts merged into another", f"{result.identity_merges:,}")
    table.add_row("seconds", f"{result.seconds:.1f}")
    console.print(table)
    if result.by_reason:
        reasons = Table(title="Quarantined by reason")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for code, n in sorted(result.by_reason.items(), key=lambda kv: -kv[1]):
            reasons.add_row(code, f"{n:,}")
        console.print(reasons)
        console.print(
            f"Inspect them: [bold]liucun -w {ws_path} quarantine show "
            f"--load {result.load_id}[/bold]"
        )


@ingest_app.command("events")
@friendly
def ingest_events_cmd(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, directories or globs.")],
    mapping: MapOpt = None,
    event_type: Annotated[
        str | None,
        typer.Option(help="Every row is this event type (e.g. 'order' for an order export)."),
    ] = None,
    timestamp_format: TsFormatOpt = None,
    source_timezone: TzOpt = None,
    currency: Annotated[
        str | None,
        typer.Option(help="Currency of rows that have revenue but no currency, e.g. CNY."),
    ] = None,
    max_reject_rate: RejectOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Load events (CSV, TSV, Parquet, JSON Lines; .gz; globs; directories).

    Example: [bold]liucun -w shop ingest events orders.csv --event-type order
    --map amount=revenue --map paid_at=ts --currency CNY[/bold]
    """
    from liucun.ingest import ingest_events

    with _open(ctx, workspace) as ws:
        opts = _options(
            ws,
            mapping=mapping,
            event_type=event_type,
            timestamp_format=timestamp_format,
            source_timezone=source_timezone,
            default_currency=currency,
            max_reject_rate=max_reject_rate,
        )
        _summary(_run_ingest(ingest_events, ws, paths, opts), ws.path)


@ingest_app.command("users")
@friendly
def ingest_users_cmd(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, directories or globs.")],
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
    source_timezone: TzOpt = None,
    max_reject_rate: RejectOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Load users; alias columns (anonymous_id, device_id, email/email_hash, phone/phone_hash,
    loyalty_card) link identities, and raw e-mail or phone is hashed, never stored.

    Example: [bold]liucun -w shop ingest users customers.csv --map cust_no=user_id[/bold]
    """
    from liucun.ingest import ingest_users

    with _open(ctx, workspace) as ws:
        opts = _options(
            ws,
            mapping=mapping,
            timestamp_format=timestamp_format,
            source_timezone=source_timezone,
            max_reject_rate=max_reject_rate,
        )
        _summary(_run_ingest(ingest_users, ws, paths, opts), ws.path)


@ingest_app.command("simulated")
@friendly
def ingest_simulated_cmd(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Output directory of `liucun simulate`.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Load a simulated shop's users and events in one step.

    Example: [bold]liucun simulate --out sim && liucun -w shop ingest simulated sim[/bold]
    """
    from liucun.core import InvalidInput
    from liucun.ingest import ingest_events, ingest_users

    users, events = directory / "users.parquet", directory / "events"
    if not users.is_file() or not events.is_dir():
        raise InvalidInput(
            f"{directory} is not a simulated shop (no users.parquet and events/); "
            f"create one with `liucun simulate --out {directory}`"
        )
    with _open(ctx, workspace) as ws:
        opts = _options(ws)
        _summary(_run_ingest(ingest_users, ws, [users], opts), ws.path)
        _summary(_run_ingest(ingest_events, ws, [events], opts), ws.path)


@ingest_app.command("cdnow")
@friendly
def ingest_cdnow_cmd(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Option(
            help="CDNOW_sample.txt (default: $LIUCUN_DATASETS_DIR or ../shared/datasets)."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Load the CDNOW sample (one order per customer-day, as in the literature).

    Example: [bold]liucun -w cdnow ingest cdnow[/bold]
    """
    from liucun.datasets import load_cdnow
    from liucun.ingest import ingest_tables

    data = load_cdnow(path)
    with _open(ctx, workspace) as ws:
        for result in ingest_tables(
            ws.warehouse, users=data.users, events=data.events, source=str(data.source)
        ):
            _summary(result, ws.path)


# -- quarantine ---------------------------------------------------------------------------


@quarantine_app.command("show")
@friendly
def quarantine_show(
    ctx: typer.Context,
    load: Annotated[str | None, typer.Option(help="Only this load id.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only rows with this reason code.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    workspace: WorkspaceOpt = None,
) -> None:
    """Show rejected rows with their source, line, raw content and every reason.

    Example: [bold]liucun -w shop quarantine show --reason bad_timestamp --limit 5[/bold]
    """
    from liucun.ingest import quarantined_rows

    with _open(ctx, workspace) as ws:
        rows = quarantined_rows(ws.warehouse, load_id=load, reason=reason, limit=limit)
        if fmt == "csv":  # data, not markup: written as is
            typer.echo(rows.to_csv(index=False), nl=False)
            return
        if fmt == "json":
            typer.echo(rows.to_json(orient="records", lines=True), nl=False)
            return
        table = Table(title=f"Quarantine ({len(rows)} shown)", show_lines=True)
        for col in ("source", "line", "raw", "reasons"):
            table.add_column(col, overflow="fold")
        for row in rows.itertuples():
            table.add_row(
                escape(Path(row.source).name),
                str(row.line),
                escape(row.raw),
                escape("\n".join(row.reasons)),
            )
        console.print(table)


class OutputFormat(StrEnum):
    """How a command prints a table."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _cell(column: str, value: Any) -> str:
    """A table cell: rates as percentages, other floats to four significant digits."""
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if column in ("rate", "share"):
            return f"{value:.1%}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return escape(str(value))


def _emit(frame: Any, fmt: OutputFormat, *, title: str, out: Path | None) -> None:
    """Print ``frame`` as a Rich table, CSV or JSON Lines, or write it as Parquet to ``out``."""
    from liucun.core import ConfigError

    if fmt is OutputFormat.parquet:
        if out is None:
            raise ConfigError("--format parquet needs --out FILE.parquet")
        frame.to_parquet(out, index=False)
        console.print(f"Wrote {len(frame):,} rows to [bold]{out}[/bold].")
        return
    if fmt is OutputFormat.csv:
        typer.echo(frame.to_csv(index=False), nl=False)
        return
    if fmt is OutputFormat.json:
        typer.echo(frame.to_json(orient="records", lines=True, date_format="iso"), nl=False)
        return
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(c, v) for c, v in zip(frame.columns, row, strict=True)])
    console.print(table)


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
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
    out: Annotated[Path | None, typer.Option(help="File for --format parquet.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Cohort retention: cohort, period, cohort_size, retained, rate, complete.

    Example: [bold]liucun -w shop retention --period week --kind unbounded
    --breakdown channel --format csv[/bold]
    """
    from datetime import datetime as dt

    from liucun.core import ConfigError
    from liucun.metrics import parse_brackets, retention
    from liucun.warehouse import resolved_events

    def day(text: str | None, name: str) -> dt | None:
        if text is None:
            return None
        try:
            return dt.combine(date.fromisoformat(text), dt.min.time())
        except ValueError:
            raise ConfigError(f"--{name} {text!r} is not a date; use YYYY-MM-DD") from None

    start, stop = day(since, "since"), day(until, "until")
    with _open(ctx, workspace) as ws:
        wh = ws.warehouse
        events = resolved_events(wh.table("events"), wh.table("identities"))
        if start is not None:
            events = events.filter(events.ts >= start)
        if stop is not None:
            events = events.filter(events.ts < stop)
        table = retention(
            events,
            cohort_event=cohort_event,
            return_event=return_event,
            period=period,  # type: ignore[arg-type]  # checked by retention()
            kind=kind,  # type: ignore[arg-type]
            cohort_type=cohort_type,  # type: ignore[arg-type]
            brackets=parse_brackets(brackets),
            entity=entity,  # type: ignore[arg-type]
            breakdown=breakdown,
            users=wh.table("users"),
            max_period=max_period,
            as_of=stop,
            week_start=week_start,
            rolling=rolling,
            timezone=timezone or ws.settings.reporting_timezone,
        )
        frame = table.to_pandas()
    frame["cohort"] = frame.cohort.map(lambda d: d.date().isoformat())  # a day, not a time
    if breakdown:
        frame = frame.rename(columns={"breakdown": breakdown})
    _emit(frame, fmt, title=f"{period.capitalize()}ly retention ({kind}, {cohort_type})", out=out)


def _as_of(text: str | None, ws: Any) -> Any:
    """``--as-of`` as a datetime, defaulting to the end of the last stored event's day."""
    from datetime import datetime as dt
    from datetime import timedelta

    from liucun.core import ConfigError

    if text is not None:
        try:
            return dt.combine(date.fromisoformat(text), dt.min.time())
        except ValueError:
            raise ConfigError(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from None
    last = ws.warehouse.table("events").ts.max().to_pyarrow().as_py()
    if last is None:
        raise ConfigError("the warehouse has no events yet; ingest some first")
    return dt.combine(last.date() + timedelta(days=1), dt.min.time())


@app.command("metrics")
@friendly
def metrics_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(help="Measure up to this day, YYYY-MM-DD (default: after the last event)."),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
    out: Annotated[Path | None, typer.Option(help="File for --format parquet.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Headline KPIs: active customers, D1/D7/D30, repurchase, churn, AOV, LTV/CAC.

    Example: [bold]liucun -w shop metrics --as-of 2026-09-30 --format json[/bold]
    """
    from datetime import timedelta

    import pandas as pd

    from liucun.metrics import (
        churn_rate,
        day_n_retention,
        ltv_cac,
        order_value,
        repurchase_rate,
    )
    from liucun.warehouse import resolved_events

    with _open(ctx, workspace) as ws:
        end = _as_of(as_of, ws)
        wh = ws.warehouse
        events = resolved_events(wh.table("events"), wh.table("identities"))
        events = events.filter(events.ts < end)
        year_ago = end - timedelta(days=365)
        rows: list[tuple[str, str, float | None]] = []
        churn = churn_rate(events, cutoff=end - timedelta(days=90)).to_pandas().iloc[0]
        rows.append(
            (
                "active customers (ordered in the last 90 days)",
                "",
                float(
                    repurchase_rate(events, start=end - timedelta(days=90))
                    .to_pandas()
                    .buyers.iloc[0]
                ),
            )
        )
        for r in (
            day_n_retention(events, as_of=end, timezone=ws.settings.reporting_timezone)
            .to_pandas()
            .itertuples()
        ):
            rows.append((f"D{r.period} order retention", "", float(r.rate)))
        rep = repurchase_rate(events, start=year_ago).to_pandas().iloc[0]
        rows.append(("repurchase rate (last 365 days)", "", float(rep.rate)))
        rows.append(("churn rate (active 90 days before, no order since)", "", float(churn.rate)))
        for r in order_value(events, start=year_ago).to_pandas().itertuples():
            rows.append(("AOV (last 365 days)", str(r.currency), float(r.aov)))
        for r in ltv_cac(events, wh.table("users")).to_pandas().itertuples():
            value = None if pd.isna(r.ltv_cac) else float(r.ltv_cac)
            rows.append(("LTV/CAC", str(r.channel), value))
    frame = pd.DataFrame(rows, columns=["metric", "by", "value"])
    _emit(frame, fmt, title=f"Metrics up to {end:%Y-%m-%d}", out=out)


@app.command("segments")
@friendly
def segments_cmd(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="rfm (11 segments), class (8-class) or stage.")] = "rfm",
    as_of: Annotated[
        str | None,
        typer.Option(help="Segment as of this day, YYYY-MM-DD (default: after the last event)."),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
    out: Annotated[Path | None, typer.Option(help="File for --format parquet.")] = None,
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
    from liucun.core import ConfigError
    from liucun.segments import customer_profiles, parse_filter
    from liucun.warehouse import resolved_events

    column = {"rfm": "rfm_segment", "class": "rfm_class", "stage": "stage"}.get(by)
    if column is None:
        raise ConfigError(f"--by {by!r}: use rfm, class or stage")
    with _open(ctx, workspace) as ws:
        end = _as_of(as_of, ws)
        wh = ws.warehouse
        events = resolved_events(wh.table("events"), wh.table("identities"))
        table = customer_profiles(events, wh.table("users"), as_of=end)
        if where:
            table = table.filter(parse_filter(where, table))
        if by != "stage":
            table = table.filter(table[column].notnull())  # RFM needs at least one order
        table = table.mutate(monetary=table.monetary.fill_null(0.0))
        if show_customers:
            frame = table.order_by("user_id").limit(show_customers).to_pandas()
            _emit(frame, fmt, title=f"Customers as of {end:%Y-%m-%d}", out=out)
            return
        summary = table.group_by(column).aggregate(
            customers=table.count(), revenue=table.monetary.sum(), mean_value=table.monetary.mean()
        )
        total = summary.customers.sum().as_scalar()
        summary = summary.mutate(share=summary.customers.cast("float64") / total)
        frame = summary.order_by(ibis_desc("customers")).to_pandas()
    frame = frame.rename(columns={column: by})
    _emit(frame, fmt, title=f"Customers by {by} as of {end:%Y-%m-%d}", out=out)


def ibis_desc(column: str) -> Any:
    import ibis

    return ibis.desc(column)


class PresetName(StrEnum):
    """The simulator's presets."""

    b2c = "b2c"
    b2b = "b2b"
    crossborder = "crossborder"


# -- status and simulate ------------------------------------------------------------------


@app.command()
@friendly
def status(ctx: typer.Context, workspace: WorkspaceOpt = None) -> None:
    """What the warehouse holds: users, events by type, dates, revenue, quarantine, loads.

    Example: [bold]liucun -w shop status[/bold]
    """
    from liucun.ingest import warehouse_status

    with _open(ctx, workspace) as ws:
        st = warehouse_status(ws.warehouse)
        head = Table(title=f"Warehouse {ws.path} ({ws.warehouse.backend_name})", show_header=False)
        head.add_column(style="bold")
        head.add_column(justify="right")
        head.add_row("users", f"{st.users:,}")
        head.add_row("canonical users after identity merges", f"{st.canonical_users:,}")
        head.add_row("events", f"{st.events:,}")
        head.add_row("first event", str(st.first_ts))
        head.add_row("last event", str(st.last_ts))
        head.add_row("quarantined rows", f"{st.quarantined:,}")
        head.add_row("loads", f"{st.loads:,}")
        console.print(head)
        by_type = Table(title="Events by type")
        by_type.add_column("event_type")
        by_type.add_column("events", justify="right")
        for kind, n in st.events_by_type.items():
            by_type.add_row(kind, f"{n:,}")
        console.print(by_type)
        if st.revenue_by_currency:
            rev = Table(title="Order revenue")
            for c in ("currency", "orders", "revenue"):
                rev.add_column(c, justify="right")
            for cur, (orders, amount) in st.revenue_by_currency.items():
                rev.add_row(cur, f"{orders:,}", f"{amount:,.2f}")
            console.print(rev)


@app.command()
@friendly
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("simulated-shop"),
    preset: Annotated[PresetName, typer.Option(help="Kind of shop.")] = PresetName.b2c,
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    end: Annotated[str | None, typer.Option(help="Last day (exclusive), YYYY-MM-DD.")] = None,
) -> None:
    """Write a simulated shop with ground truth: users.parquet, events/, truth.parquet.

    Example: [bold]liucun simulate --preset b2c --users 50000 --days 365 --seed 7 --out sim[/bold]
    """
    from liucun.core import ConfigError
    from liucun.simulate import simulate_shop

    kwargs: dict[str, Any] = {}
    if end is not None:
        try:
            kwargs["end"] = date.fromisoformat(end)
        except ValueError:
            raise ConfigError(f"--end {end!r} is not a date; use YYYY-MM-DD") from None
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} users"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"Simulating {preset.value} shop", total=users)
        res = simulate_shop(
            out,
            preset=preset.value,
            users=users,
            days=days,
            seed=seed,  # type: ignore[arg-type]
            on_progress=lambda done, total: progress.update(task, completed=done),
            **kwargs,
        )
    console.print(
        f"Wrote {res.n_users:,} users and {res.n_events:,} events "
        f"({res.start} … {res.end}) to [bold]{res.out_dir}[/bold]."
    )
    console.print(f"Load it: [bold]liucun -w WORKSPACE ingest simulated {res.out_dir}[/bold]")


def main() -> None:
    """Entry point of the ``liucun`` script."""
    app()
