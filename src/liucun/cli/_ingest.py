"""`liucun ingest …` and `liucun quarantine show`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import (
    WorkspaceOpt,
    _open,
    console,
    friendly,
    ingest_app,
    quarantine_app,
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
    """Ingest options: the workspace's settings, its key and clock, then the flags given."""
    from liucun.core import check_timezone
    from liucun.ingest import IngestOptions, parse_mapping

    if overrides.get("mapping") is not None:
        overrides["mapping"] = parse_mapping(overrides["mapping"])
    if overrides.get("source_timezone") is not None:
        check_timezone(overrides["source_timezone"])
    return IngestOptions.from_settings(
        ws.settings, hash_key=ws.hash_key, clock=ws.clock, **overrides
    )


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
    table.add_row("duplicates (already loaded)", f"{result.already_loaded:,}")
    if result.repeated:
        table.add_row("repeated within this load (kept once)", f"{result.repeated:,}")
    if result.superseded:
        table.add_row(
            "[yellow]replaced by a later, different row of the same user[/yellow]",
            f"[yellow]{result.superseded:,}[/yellow]",
        )
    table.add_row(
        "quarantined", f"[red]{result.quarantined:,}[/red]" if result.quarantined else "0"
    )
    if result.identity_links:
        table.add_row("new identity links", f"{result.identity_links:,}")
        table.add_row("accounts merged into another", f"{result.identity_merges:,}")
    table.add_row("seconds", f"{result.seconds:.1f}")
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]Note:[/yellow] {escape(note)}")
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
        if result.by_reason.get("unknown_event_type"):
            console.print(
                "Event types this workspace does not know were quarantined; declare yours "
                "with [bold]--event-types NAME,NAME[/bold] (or accept every new one with "
                "[bold]--allow-new-event-types[/bold]); they are recorded in liucun.toml."
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
        typer.Option(
            help="Currency (ISO 4217) of rows that have revenue but no currency, e.g. CNY; "
            "overrides ingest.currency in liucun.toml."
        ),
    ] = None,
    max_reject_rate: RejectOpt = None,
    event_types: Annotated[
        str | None,
        typer.Option(
            "--event-types",
            help="Custom event types to accept besides the standard ones, comma-separated "
            "(e.g. catalog_view,wishlist); recorded in liucun.toml "
            "(ingest.custom_event_types) so later loads and queries know them.",
        ),
    ] = None,
    allow_new_event_types: Annotated[
        bool,
        typer.Option(
            "--allow-new-event-types",
            help="Accept every well-formed event type in the input and record the new ones "
            "in liucun.toml (ingest.custom_event_types).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Load events (CSV, TSV, Parquet, JSON Lines; .gz; globs; directories).

    Exits 1 when an input gives no row at all (its rows stay in the quarantine). Event
    types are stored lower-cased; an unknown one is quarantined unless declared with
    --event-types or --allow-new-event-types.

    Example: [bold]liucun -w shop ingest events orders.csv --event-type order
    --map amount=revenue --map paid_at=ts --currency CNY[/bold]

    Example: [bold]liucun -w shop ingest events clicks.jsonl --event-types
    catalog_view,wishlist[/bold]
    """
    from liucun.core import NothingLoaded
    from liucun.ingest import ingest_events, parse_event_types

    declared = parse_event_types(event_types) if event_types else ()
    with _open(ctx, workspace) as ws:
        custom = (*ws.settings.ingest.custom_event_types, *declared) if declared else None
        opts = _options(
            ws,
            mapping=mapping,
            event_type=event_type,
            timestamp_format=timestamp_format,
            source_timezone=source_timezone,
            default_currency=currency,
            max_reject_rate=max_reject_rate,
            custom_event_types=custom,
            allow_new_event_types=allow_new_event_types or None,
        )
        try:
            result = _run_ingest(ingest_events, ws, paths, opts)
        except NothingLoaded as exc:  # the load committed: keep what it declared
            _record_event_types(ws, declared, getattr(exc, "result", None))
            raise
        _summary(result, ws.path)
        _record_event_types(ws, declared, result)


def _record_event_types(ws: Any, declared: tuple[str, ...], result: Any) -> None:
    """Add declared and newly accepted event types to the workspace's liucun.toml."""
    from liucun.ingest import declare_event_types

    seen = tuple(result.new_event_types) if result is not None else ()
    added = declare_event_types(ws.path, [*declared, *seen])
    if added:
        console.print(
            f"Recorded event type{'s' if len(added) > 1 else ''} {', '.join(added)} in "
            f"{escape(str(ws.path / 'liucun.toml'))} ({escape('[ingest]')} custom_event_types)."
        )


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
    loyalty_card) link identities; e-mail and phone are stored only as keyed hashes.

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
    """Load a simulated shop's users and events, and log its past campaign's exposures.

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
        truth = directory / "truth.parquet"
        if truth.is_file():
            import pyarrow.parquet as pq

            from liucun.experiments import log_exposures
            from liucun.simulate import campaign_exposures

            log = campaign_exposures(pq.read_table(truth))
            if log.num_rows:
                done = log_exposures(ws.state, log.drop(["ts"]), ts=log["ts"], clock=ws.clock)
                experiment = log["experiment"][0].as_py()
                console.print(
                    f"Logged {done.logged:,} exposures of the simulated campaign "
                    f"[bold]{experiment}[/bold] ({done.duplicates:,} already there); analyze it "
                    f"with [bold]liucun experiment analyze {experiment}[/bold]."
                )


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
            ws.warehouse,
            users=data.users,
            events=data.events,
            source=str(data.source),
            options=_options(ws),
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
    from liucun.core import csv_text
    from liucun.ingest import quarantined_rows

    with _open(ctx, workspace) as ws:
        rows = quarantined_rows(ws.warehouse, load_id=load, reason=reason, limit=limit)
        if fmt == "csv":  # data, not markup: as is, but formula cells neutralized
            typer.echo(csv_text(rows), nl=False)
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
