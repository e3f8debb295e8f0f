"""``liucun loyalty accrue``: what the program in force earns from the warehouse, written to
the ledger (:func:`liucun.loyalty.accrue`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, console, err_console, friendly, parse_day
from liucun.cli._loyalty import (
    PostingFormat,
    PostingFormatOpt,
    ProgramOpt,
    echo_json,
    loyalty_app,
)


@loyalty_app.command("accrue")
@friendly
def accrue_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Accrue events from the start of this day (UTC), YYYY-MM-DD; default: "
            "from where the last run ended (the first run takes the whole history).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Accrue events before the start of this day (UTC), YYYY-MM-DD; default: now.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be written, per rule; write nothing."),
    ] = False,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Award what the program in force earns for orders, refunds and actions since the last run.

    Keys are the source event and the rule: running it again writes nothing.

    Refunds take back what their order earned, under the program's return policy.

    Points waiting for a delivery are released when it arrives.

    Example: [bold]liucun -w shop loyalty accrue --dry-run[/bold]
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from liucun import loyalty

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
    )
    out = console if fmt is PostingFormat.table else err_console
    with _open(ctx, workspace) as ws, Progress(*columns, console=out, transient=True) as bar:
        tasks: dict[str, int] = {}
        titles = {"plan": "Planning from the events", "write": "Writing to the ledger"}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(titles.get(step, step), total=total)
            bar.update(tasks[step], completed=done, total=total)

        result = loyalty.accrue(
            ws,
            program=program,
            since=parse_day(since, "--since"),
            as_of=parse_day(as_of, "--as-of"),
            dry_run=dry_run,
            on_progress=progress,
        )
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    window = (
        f"from {result.since:%Y-%m-%d %H:%M} " if result.since is not None else "over the history "
    ) + f"to {result.until:%Y-%m-%d %H:%M} UTC"
    verb = "Would write" if result.dry_run else "Wrote"
    console.print(
        f"{verb} {result.written:,} ledger transactions for program {escape(result.program)} "
        f"({window}, {result.events_read:,} events read): {result.points:+,} points, "
        f"{result.growth:+,} growth value; {result.replayed:,} already written"
        + (f", {result.released:,} releases of delivered orders" if result.released else "")
        + (
            f", {result.drifted:,} booked earlier with other figures (kept)"
            if result.drifted
            else ""
        )
        + (f", {result.skipped:,} with nothing to act on" if result.skipped else "")
        + ".",
        highlight=False,
    )
    if result.limited:
        console.print(
            f"The return policy limited {result.limited:,} refunds: {result.limited_points:,} "
            "points they claimed stay with the members.",
            highlight=False,
        )
    if result.by_rule:
        table = Table(title="Per rule")
        for name in ("rule", "rows", "points", "growth", "limited points"):
            table.add_column(name, justify="left" if name == "rule" else "right")
        for rule, f in result.by_rule.items():
            table.add_row(
                escape(rule),
                f"{f['rows']:,}",
                f"{f['points']:+,}",
                f"{f['growth']:+,}",
                f"{f['limited_points']:,}" if f["limited_points"] else "",
            )
        console.print(table)
