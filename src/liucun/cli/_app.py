"""The Typer app, its shared options, error handling and output helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from liucun.core import Hint, LiucunError, RejectRateExceeded

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


#: Library option names whose CLI parameter has another name (``horizon_days`` is the
#: ``horizon`` parameter of ``liucun train``, shown as ``--horizon``).
OPTION_ALIASES: dict[str, tuple[str, ...]] = {
    "horizon_days": ("horizon",),
    "num_threads": ("threads",),
    "random_state": ("seed",),
    "reasons_min_risk": ("reasons_above",),
    "where": ("filter",),
}


def _flag(option: str, ctx: typer.Context | None) -> str | None:
    """The flag of the running command that sets library option ``option``, if it has one.

    Looks the option (or its :data:`OPTION_ALIASES`) up among the command's parameters;
    without the command's context, the option's name with dashes.
    """
    if ctx is None:
        return "--" + option.replace("_", "-")
    for name in (option, *OPTION_ALIASES.get(option, ())):
        for param in ctx.command.params:
            if param.param_type_name == "option" and param.name == name:
                longs = [o for o in param.opts if o.startswith("--")]
                return max(longs, key=len) if longs else param.opts[0]
    return None


def _setting(key: str) -> str:
    """``ingest.currency`` as it reads in liucun.toml: ``[ingest] currency``; a top-level
    table such as ``mapping`` as ``[mapping]``; a top-level key as itself."""
    from liucun.core import Settings

    section, _, name = key.rpartition(".")
    if section:
        return f"[{section}] {name}"
    field = Settings.model_fields.get(name)
    is_table = (
        field is not None
        and field.annotation is not None
        and (
            getattr(field.annotation, "__origin__", None) is dict
            or hasattr(field.annotation, "model_fields")
        )
    )
    return f"[{name}]" if is_table else name


def render_hint(hint: Hint, ctx: typer.Context | None = None) -> str:
    """What to change, in the CLI's words: ``pass --currency CNY or set [ingest]
    currency in liucun.toml`` (a flag of the command running in ``ctx``, a liucun.toml
    key, or both; the option's own name when neither exists)."""
    flag = _flag(hint.option, ctx)
    ways = []
    if flag is not None:
        ways.append(f"pass {flag} {hint.example}" if hint.example else f"pass {flag}")
    if hint.setting:
        ways.append(f"set {_setting(hint.setting)} in liucun.toml")
    if not ways:
        ways.append(f"change {hint.option}" + (f" (e.g. {hint.example})" if hint.example else ""))
    return " or ".join(ways)


def _in_flags(text: str, ctx: typer.Context | None) -> str:
    """``text`` with library parameter names that the running command spells otherwise
    (:data:`OPTION_ALIASES`, e.g. ``horizon_days``) written as its flags (``--horizon``)."""
    if ctx is None:
        return text
    for option in OPTION_ALIASES:
        if "_" in option and option in text:  # plain words (where) are left alone
            flag = _flag(option, ctx)
            if flag is not None:
                text = re.sub(rf"\b{option}\b", flag, text)
    return text


def _error_line(exc: LiucunError, ctx: typer.Context | None) -> str:
    """``Type: message; what to change`` as one line of literal text."""
    text = _in_flags(_one_line(exc), ctx)
    if exc.hint is not None:
        hint = " ".join(render_hint(exc.hint, ctx).split())  # a value may hold a newline
        text = f"{text.rstrip('.')}; {escape(hint)}"
    return f"[red]{type(exc).__name__}[/red]: {text}"


def _context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> typer.Context | None:
    """The command's context among its arguments (commands that take ``ctx``).

    Typer 0.29 passes its vendored click ``Context``, which is not a ``typer.Context``,
    so the context is recognized by what it has.
    """
    found = (a for a in (*args, *kwargs.values()) if hasattr(a, "command") and hasattr(a, "obj"))
    return next(found, None)


def friendly(fn: F) -> F:
    """Turn LiucunError into a one-line message (with its hint as flags) and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RejectRateExceeded as exc:
            raise _fail(_error_line(exc, _context(args, kwargs)), 2) from None
        except LiucunError as exc:
            raise _fail(_error_line(exc, _context(args, kwargs))) from None
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


#: Rows a command lists in its table before saying how many more ``--format json`` gives.
SHOWN_ROWS = 20


def print_more(total: int, shown: int = SHOWN_ROWS) -> None:
    """Say how many rows beyond the ``shown`` first ones the table left out."""
    if total > shown:
        console.print(f"… and {total - shown:,} more (--format json lists all).", highlight=False)


def _open(ctx: typer.Context, given: Path | None) -> Any:
    from liucun.workspace import open_workspace

    root = ctx.find_root().obj or {}
    return open_workspace(_workspace_path(ctx, given), clock=root.get("clock"))


def _frozen_clock(text: str | None) -> Any:
    """``--now``: a clock stopped at that instant (None: the system clock)."""
    from liucun.core import ConfigError, SimulatedClock

    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--now {text!r} is not an ISO 8601 instant; use e.g. 2026-10-01T00:00:00+08:00 "
            "(a date alone means its midnight UTC)",
            hint=Hint(option="now", example="2026-10-01T00:00:00Z"),
        ) from None
    return SimulatedClock(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


class LogFormatName(StrEnum):
    """How log records are written to standard error."""

    text = "text"
    json = "json"


class LogLevelName(StrEnum):
    """The least severe log records shown."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.callback()
def main_callback(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    log_format: Annotated[
        LogFormatName,
        typer.Option(
            envvar="LIUCUN_LOG_FORMAT",
            help="Logs on stderr as text or JSON Lines (contact data is always redacted).",
        ),
    ] = LogFormatName.text,
    log_level: Annotated[
        LogLevelName,
        typer.Option(envvar="LIUCUN_LOG_LEVEL", help="Least severe log records shown."),
    ] = LogLevelName.warning,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            envvar="LIUCUN_NOW",
            help="Run as if it were this instant (ISO 8601; the clock stands still): for "
            "demos, backfills and replays of a history that ended earlier.",
        ),
    ] = None,
) -> None:
    """liucun (留存): retention analytics, prediction and action for e-commerce.

    Example: [bold]liucun -w shop init[/bold], then
    [bold]liucun -w shop ingest events orders.csv[/bold];
    [bold]liucun --log-format json --log-level info -w shop sync[/bold] logs as JSON Lines;
    [bold]liucun --now 2026-10-01T00:00:00Z -w shop loyalty accrue[/bold] books as of then.
    """
    from liucun.core import logging_configured

    # for this command only: the handler goes when the command's context closes
    ctx.with_resource(logging_configured(log_format.value, log_level.value))  # type: ignore[arg-type]
    try:
        clock = _frozen_clock(now)
    except LiucunError as exc:
        raise _fail(_error_line(exc, ctx)) from None
    ctx.obj = {"workspace": workspace, "clock": clock}


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
    import pandas as pd  # loaded already: cells come from a DataFrame

    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    return escape(str(value))


def _emit(
    frame: Any,
    fmt: OutputFormat,
    *,
    title: str,
    out: Path | None,
    priority: Sequence[str] = (),
) -> None:
    """Print ``frame`` as a Rich table that fits the terminal, CSV (formula cells
    neutralized) or JSON Lines, or write it as Parquet to ``out``.

    ``priority`` names the columns to keep longest when the terminal is too narrow (see
    :func:`print_table`).
    """
    from liucun.core import ConfigError, csv_text

    if fmt is OutputFormat.parquet:
        if out is None:
            raise ConfigError("--format parquet needs --out FILE.parquet")
        frame.to_parquet(out, index=False)
        console.print(f"Wrote {len(frame):,} rows to [bold]{out}[/bold].")
        return
    if fmt is OutputFormat.csv:
        typer.echo(csv_text(frame), nl=False)
        return
    if fmt is OutputFormat.json:
        typer.echo(frame.to_json(orient="records", lines=True, date_format="iso"), nl=False)
        return
    print_table(frame, title=title, priority=priority)


def chatter(fmt: OutputFormat) -> Console:
    """Where a command's progress and sentences go: standard output next to a table,
    standard error when standard output carries CSV or JSON for another program."""
    return console if fmt in (OutputFormat.table, OutputFormat.parquet) else err_console


_NUMBERISH = re.compile(r"^(—|[-+]?[\d,]*\.?\d+ ?%?)$")


def record_frame(record: Any, section: str) -> Any:
    """A dataclass of figures (a status) as ``section, name, value`` rows for CSV/JSON:
    scalar fields under ``section``; a dict field as one row per key under its own
    name; a tuple value as ``key: 1``, ``key: 2``… (or the names in ``parts``)."""
    import dataclasses

    import pandas as pd

    parts = {"revenue_by_currency": ("orders", "revenue")}
    rows: list[tuple[str, str, Any]] = []
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if not isinstance(value, dict):
            rows.append((section, field.name, value))
            continue
        for key, item in value.items():
            if isinstance(item, tuple):
                names = parts.get(field.name) or tuple(str(i + 1) for i in range(len(item)))
                rows.extend(
                    (field.name, f"{key}: {n}", v) for n, v in zip(names, item, strict=False)
                )
            else:
                rows.append((field.name, str(key), item))
    frame = pd.DataFrame(rows, columns=["section", "name", "value"])
    frame["value"] = (
        frame["value"].astype(object).map(lambda v: v.isoformat() if isinstance(v, datetime) else v)
    )
    return frame


#: A text column narrower than this (or than its header) is wrapped, not narrowed further.
WRAP_WIDTH = 16
#: A text column is at least as wide as its longest word, up to this many characters.
LONG_WORD = 30


def _layout(
    headers: Sequence[str],
    cells: Sequence[Sequence[str]],
    wraps: Sequence[bool],
    width: int,
    priority: Sequence[str],
) -> tuple[list[int], list[int]]:
    """Which columns fit in ``width`` terminal columns, and the width of each shown one.

    A header is never cut: every shown column is at least as wide as its whole header,
    so that it reads on one line. Numbers are never cut either; text columns (``wraps``)
    may wrap down to :data:`WRAP_WIDTH`.
    When even that does not fit, the columns least important by ``priority`` (then from
    the right) are left out. Returns the shown column indices (in table order) and their
    widths.
    """
    n = len(headers)
    longest = [
        max([cell_len(h), *(cell_len(c) for c in col)])
        for h, col in zip(headers, cells, strict=True)
    ]
    words = [max((cell_len(w) for c in col for w in c.split()), default=0) for col in cells]
    need = [  # text wraps between words; a word longer than LONG_WORD may break
        max(cell_len(headers[i]), min(longest[i], max(WRAP_WIDTH, min(words[i], LONG_WORD))))
        if wraps[i]
        else longest[i]
        for i in range(n)
    ]
    order = [headers.index(p) for p in priority if p in headers]
    order += [i for i in range(n) if i not in order]
    shown = list(order)
    while len(shown) > 1 and sum(need[i] for i in shown) + 3 * len(shown) + 1 > width:
        shown.pop()  # the least important
    shown.sort()
    spare = width - (sum(need[i] for i in shown) + 3 * len(shown) + 1)
    widths = {i: need[i] for i in shown}
    for i in (j for j in order if j in widths):  # widen text columns, most important first
        extra = min(max(spare, 0), longest[i] - widths[i])
        widths[i] += extra
        spare -= extra
    return shown, [widths[i] for i in shown]


def terminal_width() -> int:
    """The terminal's width now: ``$COLUMNS`` when set (read at each call — Rich reads it
    only when its console is created), else what the console detects."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else console.width


def print_table(frame: Any, *, title: str, priority: Sequence[str] = ()) -> None:
    """``frame`` as a Rich table that fits the console's width (``$COLUMNS``).

    Headers are never cut and numbers never shortened; long text wraps. When the columns
    do not fit even so, the least important ones (those not in ``priority``, from the
    right) are left out and a note under the table names them and how to see them.
    """
    headers = [str(c) for c in frame.columns]
    rows = [
        [_cell(c, v) for c, v in zip(headers, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    plain = [[Text.from_markup(cell).plain for cell in col] for col in zip(*rows, strict=True)] or [
        [] for _ in headers
    ]
    numeric = [
        frame[c].dtype.kind in "iuf" or (bool(col) and all(_NUMBERISH.match(v) for v in col))
        for c, col in zip(frame.columns, plain, strict=True)
    ]  # numbers already formatted as text (0.773, 38.0%, —) align and never wrap too
    wraps = [not num for num in numeric]
    width = terminal_width()
    shown, widths = _layout(headers, plain, wraps, width, priority)
    table = Table(title=title)
    for i, w in zip(shown, widths, strict=True):
        table.add_column(
            escape(headers[i]),
            justify="right" if numeric[i] else "left",
            width=w,
            overflow="fold",
            no_wrap=not wraps[i],
        )
    for row in rows:
        table.add_row(*[row[i] for i in shown])
    # Rich caps print(width=) at the console's own width, fixed when it was created:
    # a console of this width (same output stream, colours detected the same way)
    out = console if width == console.width else Console(width=width)
    out.print(table)
    dropped = [headers[i] for i in range(len(headers)) if i not in shown]
    if dropped:
        out.print(
            f"Not shown at this width ({width} columns): {escape(', '.join(dropped))}; "
            "see every column with --format csv or --format json, or in a wider terminal.",
            highlight=False,
        )


@contextlib.contextmanager
def progress_steps(title: str, out: Console | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner for a job made of named steps; each finished step is printed with its time
    on ``out`` (default: standard output; :func:`chatter` keeps it off a CSV or JSON).

    Yields ``step(name)``: call it when a step starts.
    """
    out = out or console
    current: list[tuple[str, float]] = []

    def finish() -> None:
        if current:
            name, started = current.pop()
            out.print(f"  [green]✓[/green] {escape(name)} ({time.perf_counter() - started:.1f} s)")

    with out.status(f"{title}…") as status:

        def step(name: str) -> None:
            finish()
            current.append((name, time.perf_counter()))
            status.update(f"{title}: {escape(name)}…")

        yield step
        finish()


def parse_day(text: str | None, option: str) -> datetime | None:
    """A ``YYYY-MM-DD`` option as its midnight UTC (aware), or None when not given."""
    from liucun.core import ConfigError, midnight

    if text is None:
        return None
    try:
        return midnight(date.fromisoformat(text))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from None


#: How far past the data end an ``--as-of`` may lie: an export a few days old is normal;
#: further out, every customer would look silent for days that were never loaded.
AS_OF_TOLERANCE = timedelta(days=7)


def check_as_of(given: datetime, end: datetime | None, option: str = "--as-of") -> None:
    """Refuse an ``--as-of`` more than :data:`AS_OF_TOLERANCE` after the data end ``end``
    (the midnight after the last event's day); without events (``end`` None) there is
    nothing to check against."""
    from liucun.core import ConfigError, last_full_day

    if end is not None and given > end + AS_OF_TOLERANCE:
        last = last_full_day(end)
        raise ConfigError(
            f"{option} {given:%Y-%m-%d} is after the data, which ends on {last:%Y-%m-%d} "
            f"(the last event's day): customers would look silent for "
            f"{(given - end).days} days that were never loaded; pass an {option} up to "
            f"{end + AS_OF_TOLERANCE:%Y-%m-%d} ({AS_OF_TOLERANCE.days} days after the data "
            f"end, {end:%Y-%m-%d}), or ingest the newer events first"
        )


def as_of_or_none(text: str | None, ws: Any) -> datetime | None:
    """``--as-of`` as an aware UTC datetime checked against the data (:func:`check_as_of`),
    or None when not given (the library then picks its own default)."""
    given = parse_day(text, "--as-of")
    if given is not None:
        check_as_of(given, ws.data_end())
    return given


def _as_of(text: str | None, ws: Any) -> datetime:
    """``--as-of`` as :func:`as_of_or_none` reads it, defaulting to the data end (midnight
    after the last event's day, :meth:`Workspace.data_end`)."""
    from liucun.core import ConfigError

    given = as_of_or_none(text, ws)
    if given is not None:
        return given
    end = ws.data_end()
    if end is None:
        raise ConfigError("the warehouse has no events yet; ingest some first")
    return end  # type: ignore[no-any-return]


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
OutFileOpt = Annotated[Path | None, typer.Option(help="File for --format parquet.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(help="Up to this day, YYYY-MM-DD (default: after the last event)."),
]
