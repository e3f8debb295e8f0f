"""The ``liucun journeys …`` command group (its commands live in their own modules)."""

from __future__ import annotations

import typer

from liucun.cli._app import app

journeys_app = typer.Typer(
    help="Journeys: definitions as code, their lifecycle, a run over simulated time and "
    "the per-node report.\n\n"
    "Example: [bold]liucun -w shop journeys run --until 2026-11-30[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(journeys_app, name="journeys")
