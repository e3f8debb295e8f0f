"""`liucun ingest fx`: load FX rates for the reporting currency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from liucun.cli._app import WorkspaceOpt, _open, console, friendly, ingest_app


@ingest_app.command("fx")
@friendly
def ingest_fx_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV: date,currency,rate or the ECB layout.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Load FX rates into the reporting currency ([reporting] currency in liucun.toml).

    The file is either date,currency,rate (rate = units of the reporting currency one unit
    of currency buys that day) or the ECB reference-rate CSV as published (Date,USD,JPY,…
    per 1 EUR). Money metrics convert each order at the rate of its day (the nearest
    earlier day with a rate). Loading a file again changes nothing.

    Example: [bold]liucun -w shop ingest fx eurofxref-hist.csv[/bold]
    """
    from liucun.ingest import load_fx_rates

    _LAYOUTS = {"long": "date,currency,rate", "ecb": "the ECB reference-rate layout"}

    with _open(ctx, workspace) as ws:
        result = load_fx_rates(ws.warehouse, path, quote=ws.settings.reporting.currency)
    span = f" from {result.first} to {result.last}" if result.first else ""
    console.print(
        f"Loaded {result.rates:,} rates into {result.quote} for {len(result.currencies)} "
        f"currencies{span} from [bold]{escape(str(path))}[/bold] ({_LAYOUTS[result.layout]})."
    )
    if result.skipped:
        console.print(f"{result.skipped:,} cells had no rate (N/A or empty) and were skipped.")
    if result.retired:
        console.print(f"Columns of retired currencies skipped: {', '.join(result.retired)}.")
