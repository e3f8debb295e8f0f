"""The ``liucun journeys`` sub-app: each module of journey commands adds to it."""

from __future__ import annotations

import typer

from liucun.cli._app import app

journeys_app = typer.Typer(
    help="Journeys as code: apply a YAML file (versioned), approve, activate, pause, "
    "resume, archive, list and show them; run them over simulated time; report what each "
    "node earned against its control arm.\n\n"
    "Example: [bold]liucun -w shop journeys apply examples/journeys/winback_risk.yaml[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(journeys_app, name="journeys")
