"""``liucun journeys apply|approve|activate|pause|resume|archive|list|show``: journeys as
code. Each command parses, calls one function of :mod:`liucun.journeys` and renders; an
invalid file prints every problem on its own line (YAML path and fix) and exits 1."""

from __future__ import annotations

import functools
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import F, WorkspaceOpt, _open, console, err_console, friendly
from liucun.cli._journeys_app import journeys_app


class JourneyFormat(StrEnum):
    """How a journeys command prints its result."""

    table = "table"
    json = "json"


FormatOpt = Annotated[JourneyFormat, typer.Option("--format", help="Output format.")]
NameArg = Annotated[str, typer.Argument(help="The journey's name (the file's top-level name:).")]


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _problems(fn: F) -> F:
    """A :class:`~liucun.journeys.JourneyError` as its problems, one per line, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from liucun.journeys import JourneyError

        try:
            return fn(*args, **kwargs)
        except JourneyError as exc:
            noun = "problem" if len(exc.problems) == 1 else "problems"
            err_console.print(
                f"[red]JourneyError[/red]: {escape(exc.source)}: {len(exc.problems)} {noun}:",
                highlight=False,
                soft_wrap=True,
            )
            for problem in exc.problems:
                err_console.print(f"  - {escape(problem)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@journeys_app.command("apply")
@friendly
@_problems
def apply_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The journey's YAML file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and say what would change; write nothing.")
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Author recorded with the version (default: you).")
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Validate a journey file and store it as the journey's next version.

    The same content again changes nothing. A new journey starts as a draft; a new
    version of an active journey waits for approval while the active one keeps running.
    Every problem of an invalid file is listed with its YAML path and the fix.

    Example: [bold]liucun -w shop journeys apply examples/journeys/winback_risk.yaml[/bold]
    """
    from liucun.journeys import apply_journey

    with _open(ctx, workspace) as ws:
        result = apply_journey(ws, path, by=by, dry_run=dry_run)
    if fmt is JourneyFormat.json:
        _echo_json(result.to_dict())
        return
    name = escape(result.name)
    if not result.created:
        console.print(
            f"Journey {name!r} is already at this content (version {result.version}, "
            f"{result.status}, digest {result.digest[:12]}); nothing to apply.",
            highlight=False,
        )
    elif result.dry_run:
        console.print(
            f"Would apply journey {name!r} as version {result.version} (changes: "
            f"{', '.join(result.changes)}). Nothing was written; run again without --dry-run.",
            highlight=False,
        )
    else:
        running = (
            f"; version {result.active_version} keeps running until this one is activated"
            if result.active_version is not None
            else ""
        )
        console.print(
            f"Applied journey {name!r} as version {result.version} ({result.status}, digest "
            f"{result.digest[:12]}; changes: {', '.join(result.changes)}){running}.",
            highlight=False,
        )
        console.print(
            f"Next: [bold]liucun journeys approve {name} --by WHO[/bold], then "
            f"[bold]liucun journeys activate {name}[/bold]."
        )
    for warning in result.warnings:
        console.print(f"[yellow]Approval will refuse[/yellow]: {escape(warning)}", highlight=False)


@journeys_app.command("approve")
@friendly
@_problems
def approve_cmd(
    ctx: typer.Context,
    name: NameArg,
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded with the time).")],
    note: Annotated[str | None, typer.Option("--note", help="Why, or what was reviewed.")] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="The version reviewed; refused unless it is the latest."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Approve the latest version of a journey (activation needs it).

    The content check runs first: forbidden phrases ([guards] forbidden_phrases) and an
    unsubscribe link where the channel requires one refuse the approval.

    Example: [bold]liucun -w shop journeys approve winback_risk --by li.wei --note "legal ok"[/bold]
    """
    from liucun.journeys import approve_journey

    with _open(ctx, workspace) as ws:
        approval = approve_journey(ws, name, by=by, version=version, note=note)
    if fmt is JourneyFormat.json:
        _echo_json(approval.to_dict())
        return
    when = f"{approval.approved_at:%Y-%m-%d %H:%M} UTC"
    verb = "Approved" if approval.created else "Already approved:"
    console.print(
        f"{verb} version {approval.version} of journey {escape(name)!r} by "
        f"{escape(approval.approved_by)} at {when}. Next: [bold]liucun journeys activate "
        f"{escape(name)}[/bold].",
        highlight=False,
    )


def _transition(
    ctx: typer.Context, name: str, workspace: Path | None, fmt: JourneyFormat, action: str
) -> None:
    from liucun import journeys

    fn = getattr(journeys, f"{action}_journey")
    with _open(ctx, workspace) as ws:
        status = fn(ws, name)
    if fmt is JourneyFormat.json:
        _echo_json(status.to_dict())
        return
    version = status.active_version
    at = f" (version {version})" if version is not None else ""
    if not status.changed:
        console.print(
            f"Journey {escape(name)!r} is already {status.status}{at}; nothing changed.",
            highlight=False,
        )
        return
    moved = (
        f"; {status.migrated:,} customers inside moved to this version" if status.migrated else ""
    )
    console.print(f"Journey {escape(name)!r} is now {status.status}{at}{moved}.", highlight=False)


@journeys_app.command("activate")
@friendly
def activate_cmd(
    ctx: typer.Context,
    name: NameArg,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Make the latest approved version the one new customers enter.

    Customers inside an older version finish there, unless the new version says
    migrate: true (then those whose node exists in it move).

    Example: [bold]liucun -w shop journeys activate winback_risk[/bold]
    """
    _transition(ctx, name, workspace, fmt, "activate")


@journeys_app.command("pause")
@friendly
def pause_cmd(
    ctx: typer.Context,
    name: NameArg,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Pause an active journey: no one enters, nothing is sent; customers inside wait.

    Example: [bold]liucun -w shop journeys pause winback_risk[/bold]
    """
    _transition(ctx, name, workspace, fmt, "pause")


@journeys_app.command("resume")
@friendly
def resume_cmd(
    ctx: typer.Context,
    name: NameArg,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Resume a paused journey on its active version.

    Example: [bold]liucun -w shop journeys resume winback_risk[/bold]
    """
    _transition(ctx, name, workspace, fmt, "resume")


@journeys_app.command("archive")
@friendly
def archive_cmd(
    ctx: typer.Context,
    name: NameArg,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Archive a draft, approved or paused journey for good (pause an active one first).

    Example: [bold]liucun -w shop journeys archive winback_risk[/bold]
    """
    _transition(ctx, name, workspace, fmt, "archive")


@journeys_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """Every journey: status, latest and active version, whether the latest is approved.

    Example: [bold]liucun -w shop journeys list --format json[/bold]
    """
    from liucun.journeys import list_journeys

    with _open(ctx, workspace) as ws:
        rows = list_journeys(ws)
    if fmt is JourneyFormat.json:
        _echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        console.print(
            "No journeys yet; apply one with [bold]liucun journeys apply FILE.yaml[/bold] "
            "(examples/journeys/ has four)."
        )
        return
    table = Table(title="Journeys")
    for col in ("name", "status", "latest", "active", "latest approved", "trigger", "purpose"):
        justify = "right" if col in ("latest", "active") else "left"
        table.add_column(col, justify=justify, no_wrap=col == "name")
    for r in rows:
        table.add_row(
            escape(r.name),
            r.status,
            str(r.latest_version),
            "—" if r.active_version is None else str(r.active_version),
            "yes" if r.latest_approved else "no",
            escape(r.trigger),
            escape(r.purpose),
        )
    console.print(table)


@journeys_app.command("show")
@friendly
def show_cmd(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[
        int | None,
        typer.Option("--version", help="This version (default: the active one, else the latest)."),
    ] = None,
    source: Annotated[
        bool, typer.Option("--source", help="Print the YAML as it was applied.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = JourneyFormat.table,
) -> None:
    """A journey's status, its versions and the nodes of one version.

    Each version shows who applied and who approved it; --source prints the YAML.

    Example: [bold]liucun -w shop journeys show winback_risk --version 2[/bold]
    """
    from liucun.journeys import journey_source, journey_status, journey_version, journey_versions

    with _open(ctx, workspace) as ws:
        status = journey_status(ws, name)
        shown = version or status.active_version or status.latest_version
        spec = journey_version(ws, name, shown)
        versions = journey_versions(ws, name)
        text = journey_source(ws, name, shown)
    if source:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    if fmt is JourneyFormat.json:
        _echo_json(
            {
                **status.to_dict(),
                "version": shown,
                "versions": versions,
                "definition": spec.model_dump(mode="json"),
            }
        )
        return
    active = "—" if status.active_version is None else str(status.active_version)
    console.print(
        f"Journey [bold]{escape(name)}[/bold]: {status.status}; latest version "
        f"{status.latest_version}, active {active}; {spec.purpose}, trigger "
        f"{escape(spec.trigger.type)}, control {spec.control.share:.0%}, goal "
        f"{escape(spec.goal.event)} within {spec.goal.window_days:g} days.",
        highlight=False,
    )
    if spec.description:
        console.print(escape(spec.description), highlight=False)
    vt = Table(title="Versions")
    for col in ("version", "state", "applied", "by", "approved by", "approved", "note"):
        vt.add_column(col)
    for v in versions:
        vt.add_row(
            str(v["version"]),
            v["state"],
            f"{v['created_at']:%Y-%m-%d %H:%M}",
            escape(v["created_by"]),
            escape(v["approved_by"] or "—"),
            f"{v['approved_at']:%Y-%m-%d %H:%M}" if v["approved_at"] else "—",
            escape(v["note"] or ""),
        )
    console.print(vt)
    nt = Table(title=f"Nodes of version {shown} (start: {escape(spec.first)})")
    for col in ("id", "type", "then"):
        nt.add_column(col)
    from liucun.journeys import successors

    for node in spec.nodes:
        nt.add_row(escape(node.id), node.type, escape(", ".join(successors(node)) or "end"))
    console.print(nt)
