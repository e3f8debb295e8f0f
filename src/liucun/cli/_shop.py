"""`liucun status` and `liucun simulate`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from liucun.cli._app import (
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    app,
    console,
    friendly,
    parse_day,
    record_frame,
)


class PresetName(StrEnum):
    """The simulator's presets."""

    b2c = "b2c"
    b2b = "b2b"
    crossborder = "crossborder"


# -- status and simulate ------------------------------------------------------------------


@app.command()
@friendly
def status(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
) -> None:
    """What the warehouse holds: users, events by type, dates, revenue, quarantine, loads.

    A quarantined row stays open until a later load stores its event_id (or, for a row
    without one, an event of the same user and type) or its user_id; the history counts
    every row ever rejected.

    With --format csv or json: one row per figure (section, name, value).

    Example: [bold]liucun -w shop status[/bold]
    """
    from liucun.ingest import warehouse_status

    with _open(ctx, workspace) as ws:
        st = warehouse_status(ws.warehouse)
        if fmt is not OutputFormat.table:
            _emit(record_frame(st, "warehouse"), fmt, title="", out=out)
            return
        head = Table(title=f"Warehouse {ws.path} ({ws.warehouse.backend_name})", show_header=False)
        head.add_column(style="bold")
        head.add_column(justify="right")
        head.add_row("users", f"{st.users:,}")
        head.add_row("canonical users after identity merges", f"{st.canonical_users:,}")
        head.add_row("events", f"{st.events:,}")
        head.add_row("first event", str(st.first_ts))
        head.add_row("last event", str(st.last_ts))
        head.add_row(
            "quarantined rows still open",
            f"[red]{st.quarantined_open:,}[/red]" if st.quarantined_open else "0",
        )
        head.add_row("quarantined rows, all loads (history)", f"{st.quarantined:,}")
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
    membership_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of repeat buyers who buy the paid plan plus_yearly after their "
            "second order (membership_purchase events).",
        ),
    ] = 0.0,
) -> None:
    """Write a simulated shop with ground truth: users.parquet, events/, truth.parquet.

    Example: [bold]liucun simulate --preset b2c --users 50000 --days 365 --seed 7 --out sim[/bold]
    """
    from liucun.simulate import simulate_shop

    kwargs: dict[str, Any] = {}
    last_day = parse_day(end, "--end")
    if last_day is not None:
        kwargs["end"] = last_day.date()
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
            membership_share=membership_share,
            on_progress=lambda done, total: progress.update(task, completed=done),
            **kwargs,
        )
    console.print(
        f"Wrote {res.n_users:,} users and {res.n_events:,} events "
        f"({res.start} … {res.end}) to [bold]{res.out_dir}[/bold]."
    )
    console.print(f"Load it: [bold]liucun -w WORKSPACE ingest simulated {res.out_dir}[/bold]")
