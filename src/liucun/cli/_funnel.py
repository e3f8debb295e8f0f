"""`liucun funnel STEP STEP …`: an ordered conversion funnel over any event types."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from liucun.cli._analytics import _events_between
from liucun.cli._app import (
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    app,
    friendly,
    parse_day,
)

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhm]?)\s*$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "": "days", "h": "hours", "m": "minutes"}


def parse_window(text: str) -> timedelta:
    """``7d``, ``2w``, ``12h``, ``30m`` or a bare number of days as a positive duration."""
    from liucun.core import ConfigError

    m = _WINDOW.match(text)
    length = timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))}) if m else None
    if length is None or length <= timedelta(0):
        raise ConfigError(
            f"--window {text!r} is not a positive duration; write a number with a unit, "
            "e.g. 7d (days), 2w (weeks), 12h (hours) or 30m (minutes)"
        )
    return length


@app.command("funnel")
@friendly
def funnel_cmd(
    ctx: typer.Context,
    steps: Annotated[
        list[str] | None,
        typer.Argument(
            help="Event types in order, at least two (default: [reporting] funnel in "
            "liucun.toml, else visit view add_to_cart order).",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            help="Each user must finish the steps within this time of their first step: "
            "7d, 2w, 12h, 30m."
        ),
    ] = "7d",
    since: Annotated[
        str | None, typer.Option(help="Only events from this day, YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only events before this day, YYYY-MM-DD.")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Ordered funnel: users who did the first step, then each next one in order, all
    within --window of their first step; per step: users, conversion from step 1 and
    drop-off from the step before.

    Example: [bold]liucun -w shop funnel visit view add_to_cart order --window 7d
    --since 2026-01-01 --format csv[/bold]
    """
    from liucun.core import ConfigError
    from liucun.metrics import check_event_types, funnel

    length = parse_window(window)
    start, stop = parse_day(since, "--since"), parse_day(until, "--until")
    if start is not None and stop is not None and stop <= start:
        raise ConfigError(f"--until {until} must be after --since {since}")
    with _open(ctx, workspace) as ws:
        names = list(steps) if steps else list(ws.settings.reporting.funnel)
        if len(names) < 2:
            raise ConfigError("a funnel needs at least two steps, e.g. liucun funnel visit order")
        events = ws.events()
        # the steps against the whole history: a type with no events between --since
        # and --until is an empty step, not an unknown one
        check_event_types(
            events,
            [(f"funnel step {i}", "", name) for i, name in enumerate(names, start=1)],
            custom_event_types=ws.settings.ingest.custom_event_types,
        )
        frame = funnel(
            _events_between(events, start, stop), names, window=length, custom_event_types=names
        ).to_pandas()
    if fmt is OutputFormat.table:
        frame = frame.assign(
            conversion=[_pct(v) for v in frame.conversion],
            drop_off=[_pct(v) for v in frame.drop_off],
        )
    _emit(
        frame,
        fmt,
        title=f"Funnel within {window.strip()} of the first step",
        out=out,
        priority=["name", "users", "conversion"],
    )


def _pct(value: float) -> str:
    return "—" if value != value else f"{value:.1%}"  # NaN: no one reached step 1
