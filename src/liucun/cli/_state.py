"""``liucun state status`` and ``liucun sync``: the operational state database."""

from __future__ import annotations

from typing import Annotated

import typer
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
    record_frame,
)

state_app = typer.Typer(
    help="The operational state database (SQLite in the workspace, or PostgreSQL).\n\n"
    "Example: [bold]liucun -w shop state status[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(state_app, name="state")


@state_app.command("status")
@friendly
def state_status_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
) -> None:
    """Print the state backend, its migration revision and the rows of every table.

    With --format csv or json: one row per figure (section, name, value).

    Example: [bold]liucun -w shop state status[/bold]
    """
    from liucun.state import state_status

    with _open(ctx, workspace) as ws:
        st = state_status(ws.state)
    if fmt is not OutputFormat.table:
        _emit(record_frame(st, "state"), fmt, title="", out=out)
        return
    table = Table(title=f"State of {ws.path}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("backend", st.backend)
    table.add_row("url", st.url)
    current = st.revision or "none"
    table.add_row("revision", current if st.up_to_date else f"{current} (latest {st.head})")
    for name, n in st.rows.items():
        table.add_row(f"rows: {name}", f"{n:,}")
    console.print(table)


@app.command("sync")
@friendly
def sync_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Copy new operational rows (exposures) from state into the warehouse.

    A no-op when the warehouse is up to date; analyses that need fresh rows run it
    themselves.

    Example: [bold]liucun -w shop sync[/bold]
    """
    with _open(ctx, workspace) as ws:
        result = ws.sync()
    if not quiet:
        parts = ", ".join(f"{n:,} {name}" for name, n in result.copied.items())
        console.print(
            f"Copied {parts} from state into the warehouse."
            if result.total
            else "The warehouse is up to date with state; nothing to copy."
        )
