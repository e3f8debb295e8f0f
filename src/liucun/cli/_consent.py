"""``liucun consent …`` (record, show, import consent decisions), ``liucun suppress …``
(the global suppression list) and ``liucun tasks …`` (customer-service tasks from
journeys: list, respond, close, the SLA breach job). Each command parses, calls one
function of :mod:`liucun.journeys` and renders."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly

consent_app = typer.Typer(
    help="Consent per purpose and channel (append-only; the latest decision is in force).\n\n"
    "Example: [bold]liucun -w shop consent grant u1 --purpose marketing --channel email[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
suppress_app = typer.Typer(
    help="The global suppression list: no message to a customer (or address hash) on a "
    "channel or on every channel ('*').\n\n"
    "Example: [bold]liucun -w shop suppress add u1 --kind manual[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
tasks_app = typer.Typer(
    help="Customer-service tasks opened by journeys: list, respond, close, mark SLA "
    "breaches.\n\n"
    "Example: [bold]liucun -w shop tasks list --status open[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(consent_app, name="consent")
app.add_typer(suppress_app, name="suppress")
app.add_typer(tasks_app, name="tasks")


class Format(StrEnum):
    """How a command prints."""

    table = "table"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="table or json.")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="marketing, service or transactional.")]
ChannelOpt = Annotated[
    str, typer.Option("--channel", help="email, sms, push, wechat, whatsapp, in_app, … or '*'.")
]


def _json(obj: Any) -> None:
    import json

    typer.echo(json.dumps(obj, ensure_ascii=False))


def _at(text: str | None) -> datetime | None:
    from liucun.core import ConfigError

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--at {text!r} is not an ISO 8601 time; use e.g. 2026-03-01T09:30:00+08:00"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- consent -----------------------------------------------------------------------------


def _record(
    ctx: typer.Context,
    status: str,
    user: str,
    purpose: str,
    channel: str,
    source: str,
    proof: str | None,
    at: str | None,
    workspace: Any,
    fmt: Format,
) -> None:
    from liucun.journeys._consent import record_consent

    with _open(ctx, workspace) as ws:
        c = record_consent(
            ws,
            user,
            purpose=purpose,
            channel=channel,
            status=status,
            source=source,
            proof=proof,
            at=_at(at),
        )
    if fmt is Format.json:
        _json(c.to_dict())
        return
    console.print(
        f"Recorded: [bold]{escape(c.user_id)}[/bold] {c.status} {c.purpose} on "
        f"{escape(c.channel)} (source {escape(c.source)}, {c.at:%Y-%m-%d %H:%M} UTC).",
        highlight=False,
    )


SourceOpt = Annotated[str, typer.Option("--source", help="Where the decision came from.")]
ProofOpt = Annotated[
    str | None, typer.Option("--proof", help="The consent text's version or other proof.")
]
AtOpt = Annotated[
    str | None, typer.Option("--at", help="When it was given (ISO 8601); default now.")
]


@consent_app.command("grant")
@friendly
def grant_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    purpose: PurposeOpt,
    channel: ChannelOpt,
    source: SourceOpt = "cli",
    proof: ProofOpt = None,
    at: AtOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record that USER granted consent for a purpose on a channel.

    Example: [bold]liucun -w shop consent grant u1 --purpose marketing --channel email[/bold]
    """
    _record(ctx, "granted", user, purpose, channel, source, proof, at, workspace, fmt)


@consent_app.command("deny")
@friendly
def deny_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    purpose: PurposeOpt,
    channel: ChannelOpt,
    source: SourceOpt = "cli",
    proof: ProofOpt = None,
    at: AtOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record that USER refused consent for a purpose on a channel.

    Example: [bold]liucun -w shop consent deny u1 --purpose marketing --channel sms[/bold]
    """
    _record(ctx, "denied", user, purpose, channel, source, proof, at, workspace, fmt)


@consent_app.command("revoke")
@friendly
def revoke_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    purpose: PurposeOpt,
    channel: ChannelOpt,
    source: SourceOpt = "cli",
    proof: ProofOpt = None,
    at: AtOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record that USER withdrew consent; queued messages it covers are not sent.

    Example: [bold]liucun -w shop consent revoke u1 --purpose marketing --channel '*'[/bold]
    """
    _record(ctx, "revoked", user, purpose, channel, source, proof, at, workspace, fmt)


@consent_app.command("show")
@friendly
def show_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """USER's consent in force per purpose and channel, and the full history.

    Example: [bold]liucun -w shop consent show u1[/bold]
    """
    from liucun.journeys._consent import consent_history

    with _open(ctx, workspace) as ws:
        history = consent_history(ws, user)
    in_force: dict[tuple[str, str], Any] = {}
    for c in history:  # oldest first: the last one per (purpose, channel) stays
        in_force[(c.purpose, c.channel)] = c
    if fmt is Format.json:
        _json(
            {
                "user_id": user,
                "in_force": [c.to_dict() for c in in_force.values()],
                "history": [c.to_dict() for c in history],
            }
        )
        return
    if not history:
        console.print(
            f"No consent recorded for [bold]{escape(user)}[/bold]: marketing sends need a "
            "grant (unless [guards] consent_required = false); service and transactional "
            "ones go."
        )
        return
    table = Table(title=f"Consent of {user} (latest per purpose and channel)")
    for col in ("purpose", "channel", "status", "source", "proof", "at (UTC)"):
        table.add_column(col)
    for c in in_force.values():
        table.add_row(
            c.purpose, c.channel, c.status, c.source, c.proof or "", f"{c.at:%Y-%m-%d %H:%M}"
        )
    console.print(table)
    console.print(
        f"{len(history)} record(s) in the history ([bold]--format json[/bold] lists them)."
    )


@consent_app.command("import")
@friendly
def import_cmd(
    ctx: typer.Context,
    from_users: Annotated[
        bool,
        typer.Option(
            "--from-users/--no-from-users",
            help="Read users.attributes.marketing_opt_in from the warehouse.",
        ),
    ] = True,
    attribute: Annotated[
        str, typer.Option(help="The users attribute holding the opt-in (true/false).")
    ] = "marketing_opt_in",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import marketing consent on every channel from the customers' opt-in attribute
    (source users.attributes); importing again writes nothing new.

    Example: [bold]liucun -w shop consent import --from-users[/bold]
    """
    from liucun.core import ConfigError
    from liucun.journeys._consent import import_consents_from_users

    if not from_users:
        raise ConfigError("give --from-users: the users table is the only import source so far")
    with _open(ctx, workspace) as ws, console.status("Reading the customers' opt-ins…"):
        result = import_consents_from_users(ws, attribute=attribute)
    if fmt is Format.json:
        _json(result.to_dict())
        return
    console.print(
        f"Of {result.users:,} customers: {result.granted:,} granted and {result.denied:,} "
        f"denied marketing consent recorded; {result.unchanged:,} already in force; "
        f"{result.missing:,} without a {attribute} value."
    )


# -- suppress ----------------------------------------------------------------------------


@suppress_app.command("add")
@friendly
def suppress_add_cmd(
    ctx: typer.Context,
    subject: Annotated[
        str, typer.Argument(help="A user id, an address hash, or (with --address) an address.")
    ],
    kind: Annotated[
        str,
        typer.Option(help="erased, bounced, unsubscribed, complaint or manual."),
    ] = "manual",
    channel: Annotated[str, typer.Option(help="A channel, or '*' for every channel.")] = "*",
    reason: Annotated[str | None, typer.Option(help="Why (kept with the row).")] = None,
    address: Annotated[
        bool,
        typer.Option(
            "--address",
            help="SUBJECT is an e-mail address or phone number: store only its keyed hash.",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop every message to SUBJECT on a channel (default every channel).

    Example: [bold]liucun -w shop suppress add u1 --kind unsubscribed --channel email[/bold]
    """
    from liucun.core import ConfigError
    from liucun.journeys._consent import add_suppression, address_hash

    if address and channel == "*":
        raise ConfigError(
            "an address belongs to one channel: give --channel (email, sms, …) with --address"
        )
    with _open(ctx, workspace) as ws:
        stored = address_hash(ws, subject, channel) if address else subject
        added = add_suppression(ws, stored, channel=channel, kind=kind, reason=reason)
    shown = f"address hash {stored[:12]}…" if address else stored
    console.print(
        f"Suppressed [bold]{escape(shown)}[/bold] on {escape(channel)} ({kind})."
        if added
        else f"[dim]{escape(shown)} was already suppressed on {escape(channel)} ({kind}).[/dim]",
        highlight=False,
    )


@suppress_app.command("remove")
@friendly
def suppress_remove_cmd(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="A user id, or an address hash.")],
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only on this channel.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Lift SUBJECT's suppressions (all, or one kind / channel).

    Example: [bold]liucun -w shop suppress remove u1 --kind manual[/bold]
    """
    from liucun.journeys._consent import remove_suppression

    with _open(ctx, workspace) as ws:
        n = remove_suppression(ws, subject, channel=channel, kind=kind)
    console.print(f"Removed {n} suppression(s) of [bold]{escape(subject)}[/bold].", highlight=False)


@suppress_app.command("list")
@friendly
def suppress_list_cmd(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The suppression list, oldest first.

    Example: [bold]liucun -w shop suppress list --format json[/bold]
    """
    from liucun.journeys._consent import list_suppressions

    with _open(ctx, workspace) as ws:
        rows = list_suppressions(ws, subject=subject)
    if fmt is Format.json:
        _json([r.to_dict() for r in rows])
        return
    if not rows:
        console.print("The suppression list is empty.")
        return
    table = Table(title=f"{len(rows)} suppression(s)")
    for col in ("subject", "channel", "kind", "reason", "at (UTC)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.subject, r.channel, r.kind, r.reason or "", f"{r.at:%Y-%m-%d %H:%M}")
    console.print(table)


# -- tasks -------------------------------------------------------------------------------


def _task_table(tasks: list[Any], title: str) -> None:
    table = Table(title=title)
    for col in ("id", "user", "queue", "status", "SLA due (UTC)", "journey", "summary"):
        table.add_column(col)
    for t in tasks:
        table.add_row(
            str(t.id),
            t.user_id,
            t.queue,
            t.status + (" (breached)" if t.breached_at and t.status != "breached" else ""),
            f"{t.sla_due_at:%Y-%m-%d %H:%M}",
            t.journey or "",
            t.summary,
        )
    console.print(table)


@tasks_app.command("list")
@friendly
def tasks_list_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, responded, closed or breached.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Service tasks, the soonest due first.

    Example: [bold]liucun -w shop tasks list --status open --queue vip[/bold]
    """
    from liucun.journeys._tasks import list_tasks

    with _open(ctx, workspace) as ws:
        tasks = list_tasks(ws, status=status, queue=queue, user_id=user)
    if fmt is Format.json:
        _json([t.to_dict() for t in tasks])
        return
    if not tasks:
        console.print("No tasks match.")
        return
    _task_table(tasks, f"{len(tasks)} task(s)")


@tasks_app.command("respond")
@friendly
def tasks_respond_cmd(
    ctx: typer.Context,
    task_id: Annotated[int, typer.Argument(metavar="ID", help="Task id (tasks list).")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record the first response to task ID (now, or the global --now).

    Example: [bold]liucun -w shop tasks respond 12[/bold]
    """
    from liucun.journeys._tasks import respond_task

    with _open(ctx, workspace) as ws:
        t = respond_task(ws, task_id)
    if fmt is Format.json:
        _json(t.to_dict())
        return
    late = t.responded_at is not None and t.responded_at > t.sla_due_at
    console.print(
        f"Task {t.id} responded at {t.responded_at:%Y-%m-%d %H:%M} UTC"
        + (" — after its SLA." if late else " — within its SLA."),
        highlight=False,
    )


@tasks_app.command("close")
@friendly
def tasks_close_cmd(
    ctx: typer.Context,
    task_id: Annotated[int, typer.Argument(metavar="ID", help="Task id (tasks list).")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Close task ID.

    Example: [bold]liucun -w shop tasks close 12[/bold]
    """
    from liucun.journeys._tasks import close_task

    with _open(ctx, workspace) as ws:
        t = close_task(ws, task_id)
    if fmt is Format.json:
        _json(t.to_dict())
        return
    console.print(f"Task {t.id} closed at {t.closed_at:%Y-%m-%d %H:%M} UTC.", highlight=False)


@tasks_app.command("breaches")
@friendly
def tasks_breaches_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The SLA job: mark tasks whose SLA passed without a response as breached and
    publish service_task_breached events (running it again changes nothing).

    Example: [bold]liucun -w shop --now 2026-03-02T12:00:00Z tasks breaches[/bold]
    """
    from liucun.journeys._tasks import breach_due_tasks

    with _open(ctx, workspace) as ws:
        tasks = breach_due_tasks(ws)
    if fmt is Format.json:
        _json([t.to_dict() for t in tasks])
        return
    if not tasks:
        console.print("No task breached its SLA since the last run.")
        return
    _task_table(tasks, f"{len(tasks)} task(s) breached their SLA")
