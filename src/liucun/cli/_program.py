"""``liucun loyalty program …``: apply a program file (versioned in state), show the
version in force and the history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from liucun.cli._app import FormatOpt, OutputFormat, WorkspaceOpt, _emit, _open, console, friendly
from liucun.cli._loyalty import ProgramOpt, echo_json, loyalty_app

program_app = typer.Typer(
    help="The loyalty program in force: apply a YAML file, show versions.\n\n"
    "Example: [bold]liucun -w shop loyalty program apply examples/loyalty/program.yaml "
    "--dry-run[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
loyalty_app.add_typer(program_app, name="program")


@program_app.command("apply")
@friendly
def apply_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The program's YAML file.")],
    program: ProgramOpt = "default",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and say what would change; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate a program file and make it the version in force (same content: no change).

    Errors name the key, the bad value and the fix. Applying sets the ledger's
    negative-balance policy from points.negative_balance and is recorded in the audit log.

    Example: [bold]liucun -w shop loyalty program apply examples/loyalty/program.yaml[/bold]
    """
    from liucun.loyalty import apply_program

    with _open(ctx, workspace) as ws:
        result = apply_program(ws, path, program=program, dry_run=dry_run)
    if as_json:
        echo_json(result.to_dict())
        return
    what = ", ".join(result.changes) or "nothing"
    if not result.created:
        console.print(
            f"Program {result.program!r} is already at this content (version "
            f"{result.version}, digest {result.digest[:12]}); nothing to apply.",
            highlight=False,
        )
    elif result.dry_run:
        console.print(
            f"Would apply {result.title!r} as version {result.version} of {result.program!r} "
            f"(changes: {what}). Nothing was written; run again without --dry-run.",
            highlight=False,
        )
    else:
        console.print(
            f"Applied {result.title!r} as version {result.version} of {result.program!r} "
            f"(digest {result.digest[:12]}; changes: {what}).",
            highlight=False,
        )


@program_app.command("versions")
@friendly
def versions_cmd(
    ctx: typer.Context,
    program: ProgramOpt = "default",
    fmt: FormatOpt = OutputFormat.table,
    workspace: WorkspaceOpt = None,
) -> None:
    """Every applied version of a program, oldest first; the last is in force.

    Example: [bold]liucun -w shop loyalty program versions --format json[/bold]
    """
    from liucun.loyalty import program_versions

    with _open(ctx, workspace) as ws:
        rows = program_versions(ws, program)
    frame = pd.DataFrame(
        rows, columns=["version", "digest", "title", "source", "applied_at", "applied_by"]
    )
    _emit(frame, fmt, title=f"Versions of loyalty program {program!r}", out=None)
