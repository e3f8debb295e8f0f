"""The Typer app, its shared options, error handling and output helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
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
    from liucun.workspace import open_workspace

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
    state_url: Annotated[
        str | None,
        typer.Option(
            help="State database URL (default: state.sqlite in the workspace), e.g. "
            "postgresql+psycopg://liucun@127.0.0.1:5432/liucun."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a workspace: liucun.toml, the warehouse, the state database, the secret
    key, models/ and reports/.

    Example: [bold]liucun init ./shop[/bold], or with PostgreSQL for operational state:
    [bold]liucun init ./shop --state-url postgresql+psycopg://liucun@db:5432/liucun[/bold]
    """
    from liucun.workspace import init_workspace

    path = directory or _workspace_path(ctx, workspace)
    with init_workspace(path, warehouse_url=warehouse_url, state_url=state_url) as ws:
        console.print(
            f"Workspace ready at [bold]{ws.path}[/bold] (warehouse: "
            f"{ws.warehouse.backend_name}, state: {ws.state.backend})."
        )
        console.print(
            f"Next: [bold]liucun -w {path} ingest events FILE[/bold] "
            f"or [bold]liucun -w {path} ingest simulated DIR[/bold]"
        )


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


@contextlib.contextmanager
def progress_steps(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner for a job made of named steps; each finished step is printed with its time.

    Yields ``step(name)``: call it when a step starts.
    """
    current: list[tuple[str, float]] = []

    def finish() -> None:
        if current:
            name, started = current.pop()
            console.print(
                f"  [green]✓[/green] {escape(name)} ({time.perf_counter() - started:.1f} s)"
            )

    with console.status(f"{title}…") as status:

        def step(name: str) -> None:
            finish()
            current.append((name, time.perf_counter()))
            status.update(f"{title}: {escape(name)}…")

        yield step
        finish()


def parse_day(text: str | None, option: str) -> datetime | None:
    """A ``YYYY-MM-DD`` option as midnight UTC, or None when not given."""
    from liucun.core import ConfigError

    if text is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from None


def _as_of(text: str | None, ws: Any) -> datetime:
    """``--as-of`` as a datetime, defaulting to the end of the last stored event's day."""
    from liucun.core import ConfigError

    given = parse_day(text, "--as-of")
    if given is not None:
        return given
    end = ws.warehouse.events_end()
    if end is None:
        raise ConfigError("the warehouse has no events yet; ingest some first")
    return end


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
OutFileOpt = Annotated[Path | None, typer.Option(help="File for --format parquet.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(help="Up to this day, YYYY-MM-DD (default: after the last event)."),
]
