"""``liucun journeys run --until DATE``: the engine over simulated time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from liucun.cli._app import (
    FormatOpt,
    OutputFormat,
    WorkspaceOpt,
    _open,
    chatter,
    console,
    friendly,
    parse_day,
)
from liucun.cli._journeys_app import journeys_app


@journeys_app.command("run")
@friendly
def run_cmd(
    ctx: typer.Context,
    until: Annotated[
        str,
        typer.Option("--until", help="Run up to the start of this day (UTC), YYYY-MM-DD."),
    ],
    step: Annotated[
        str, typer.Option("--step", help="Simulated time per engine tick: 30m, 1h, 1d …")
    ] = "1h",
    world: Annotated[
        Path | None,
        typer.Option(
            "--world",
            help="A simulation directory whose customers react to what is sent "
            "(liucun.simulate's responsive world).",
        ),
    ] = None,
    no_delivery: Annotated[
        bool, typer.Option("--no-delivery", help="Leave the outbox rows pending.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Run the journeys over simulated time, from the workspace's now (pass --now, e.g.
    the data end of a simulated shop) to --until, one engine tick per --step: the world
    acts, then triggers, waits, goals, the walk and delivery run at the step's end.
    --format json prints the totals as one object.

    Example: [bold]liucun --now 2026-09-30T00:00:00Z -w shop journeys run --until
    2026-11-29 --world sim[/bold]
    """
    from liucun.core import ConfigError
    from liucun.journeys._run import load_world, run_until
    from liucun.journeys._spec import parse_duration

    end = parse_day(until, "--until")
    assert end is not None
    try:
        delta = parse_duration(step)
    except ValueError as exc:
        raise ConfigError(f"--step {step!r}: {exc}") from None
    say = chatter(fmt)
    with _open(ctx, workspace) as ws:
        the_world = load_world(world) if world is not None else None
        start = ws.clock.now()
        total = max(int((end - start) / delta) + 1, 1)
        with Progress(
            TextColumn("[bold]Journeys run[/bold] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            console=say,
            transient=True,
        ) as progress:
            task = progress.add_task(f"{start:%Y-%m-%d %H:%M}", total=total)

            def on_step(t: datetime, summary: Any) -> None:
                progress.update(task, advance=1, description=f"{t:%Y-%m-%d %H:%M}")

            result = run_until(
                ws, end, step=delta, world=the_world, deliver=not no_delivery, on_step=on_step
            )
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(result.step_kinds.items())) or "none"
    console.print(
        f"Ran {result.steps:,} steps from {result.start:%Y-%m-%d %H:%M} to "
        f"{result.until:%Y-%m-%d %H:%M} UTC: {result.enrolled:,} enrolled "
        f"({result.control:,} in the control arm), {result.walked:,} walks (steps: {kinds}), "
        f"{result.outbox:,} outbox rows, {result.converted:,} converted"
        + (f", {result.world_events:,} world events" if the_world is not None else "")
        + ".",
        highlight=False,
    )
