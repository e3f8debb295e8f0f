"""``liucun worker [--once]``: triggers, timers and delivery in one loop."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from typing import Annotated, Any

import typer

from liucun.cli._app import FormatOpt, OutputFormat, WorkspaceOpt, _open, app, chatter, friendly


@app.command("worker")
@friendly
def worker_cmd(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Do all work that is due now, print a summary, exit.")
    ] = False,
    poll: Annotated[
        float | None,
        typer.Option("--poll", help="Seconds between rounds (default: [journeys] poll_s)."),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option("--id", help="This worker's name in claims (default: host:pid)."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Run the journeys: evaluate triggers on new events (micro-batches every --poll
    seconds), enrol, fire timers, walk due enrolments and deliver the outbox. Several
    workers may run at once on PostgreSQL. Stops cleanly on SIGTERM or Ctrl-C after the
    round in progress. --once does everything due now and exits 0.

    Example: [bold]liucun -w shop worker --once[/bold], or
    [bold]liucun -w shop worker --poll 5[/bold]
    """
    from rich.markup import escape

    from liucun.core import StateError, WarehouseBusy
    from liucun.journeys._worker import work_once

    name = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    say = chatter(fmt)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    with _open(ctx, workspace) as ws:
        interval = poll if poll is not None else ws.settings.journeys.poll_s
        if once:
            summary = work_once(ws, worker_id=name)
            _print(summary, fmt, say)
            return
        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
        memo: dict[str, Any] = {}
        rounds = 0
        try:
            say.print(f"Worker [bold]{name}[/bold] started (poll {interval:g} s).")
            while not stop.is_set():
                try:
                    summary = work_once(ws, worker_id=name, state=memo)
                except (WarehouseBusy, StateError) as exc:
                    # a load holding the warehouse, a locked or restarting database: the
                    # round's work stays due and the next round does it
                    say.print(f"[yellow]Round skipped[/yellow]: {escape(str(exc))}")
                    summary = None
                finally:
                    # between rounds hold no warehouse connection: a load in another
                    # process needs the DuckDB file to itself
                    ws._close_warehouse()
                rounds += 1
                if summary is not None and (
                    summary.enrolled
                    or summary.walked
                    or summary.converted
                    or fmt is OutputFormat.json
                ):
                    _print(summary, fmt, say)
                stop.wait(interval)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        say.print(f"Worker [bold]{name}[/bold] stopped after {rounds:,} rounds.")


def _print(summary: Any, fmt: OutputFormat, say: Any) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False, default=str))
    else:
        say.print(summary.line(), highlight=False)
