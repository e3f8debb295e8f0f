"""The ``liucun journeys …`` command group (its commands live in ``_journeys_*.py``)."""

from __future__ import annotations

import typer

from liucun.cli._app import app

journeys_app = typer.Typer(
    help="Journeys: the right action for each customer at the right local time, with guards, "
    "an automatic control arm and a per-node report of what it earned.\n\n"
    "Example: [bold]liucun -w shop journeys report winback[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(journeys_app, name="journeys")
