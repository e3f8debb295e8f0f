"""``liucun contacts import`` (addresses for delivery, stored encrypted) and ``liucun
outbox …`` (list the outbox, retry failed or unknown rows, report rows in doubt). Each
command parses, calls one function of :mod:`liucun.journeys` and renders; addresses are
never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import (
    SHOWN_ROWS,
    WorkspaceOpt,
    _open,
    app,
    console,
    friendly,
    print_more,
)
from liucun.cli._loyalty import PostingFormat, echo_json

contacts_app = typer.Typer(
    help="Contact addresses for delivery (e-mail, phone, push token, WeChat openid, "
    "WhatsApp), stored encrypted with a key derived from the workspace secret.\n\n"
    "Example: [bold]liucun -w shop contacts import contacts.csv[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
outbox_app = typer.Typer(
    help="The delivery outbox: list rows, retry failed ones, report rows in doubt.\n\n"
    "Example: [bold]liucun -w shop outbox list --status failed[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(contacts_app, name="contacts")
app.add_typer(outbox_app, name="outbox")

FormatOpt = Annotated[
    PostingFormat, typer.Option("--format", help="table, or json (one document).")
]


@contacts_app.command("import")
@friendly
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or Parquet: user_id plus address columns.")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = PostingFormat.table,
) -> None:
    """Store the addresses in FILE, encrypted: columns user_id and any of email,
    phone (SMS), push_token, wechat_openid, whatsapp. A customer's address on a channel
    replaces the one stored before; empty cells are skipped; unusable ones are listed
    by line and column (never by value).

    Example: [bold]liucun -w shop contacts import exports/contacts.csv[/bold]
    """
    from liucun.journeys import import_contacts

    with _open(ctx, workspace) as ws:
        result = import_contacts(ws, file)
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    stored = ", ".join(f"{n:,} {c}" for c, n in sorted(result.stored.items())) or "none"
    console.print(
        f"Read {result.rows:,} rows from [bold]{escape(str(file))}[/bold]; stored "
        f"{sum(result.stored.values()):,} addresses, encrypted ({stored}).",
        highlight=False,
    )
    if result.rejected:
        console.print(f"[yellow]{len(result.rejected):,} values were not stored:[/yellow]")
        for r in result.rejected[:SHOWN_ROWS]:
            console.print(f"  line {r.line}, {escape(r.column)}: {escape(r.reason)}")
        print_more(len(result.rejected))


def _table(rows: list[dict], title: str) -> None:
    table = Table(title=title)
    for name in ("id", "key", "channel", "status", "attempts", "next attempt", "last error"):
        table.add_column(name, overflow="fold")
    for r in rows[:SHOWN_ROWS]:
        table.add_row(
            str(r["id"]),
            escape(r["key"]),
            escape(r["provider"] or r["channel"]),
            r["status"],
            str(r["attempts"]),
            (r["next_attempt_at"] or "")[:19],
            escape((r["last_error"] or "")[:120]),
        )
    console.print(table)
    print_more(len(rows))


@outbox_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, sending, sent, failed, unknown or cancelled."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = PostingFormat.table,
) -> None:
    """List outbox rows (oldest first) with their status, attempts and last error.

    Example: [bold]liucun -w shop outbox list --status failed --format json[/bold]
    """
    from liucun.journeys import count_outbox, list_outbox

    with _open(ctx, workspace) as ws:
        rows = list_outbox(ws, status=status, limit=limit)
        counts = count_outbox(ws)
    if fmt is PostingFormat.json:
        echo_json({"counts": counts, "rows": rows})
        return
    summary = ", ".join(f"{n:,} {s}" for s, n in sorted(counts.items())) or "empty"
    console.print(f"Outbox: {summary}.", highlight=False)
    if rows:
        _table(rows, f"outbox ({status})" if status else "outbox")


@outbox_app.command("retry")
@friendly
def retry_cmd(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None, typer.Argument(help="Ids of failed or unknown rows.", show_default=False)
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed row.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = PostingFormat.table,
) -> None:
    """Queue failed (or, by id, unknown) rows to be sent again with the same key, on
    the channel's first provider with a fresh count of attempts.

    Example: [bold]liucun -w shop outbox retry --failed[/bold], or
    [bold]liucun -w shop outbox retry 812 813[/bold]
    """
    from liucun.journeys import retry_outbox

    with _open(ctx, workspace) as ws:
        n = retry_outbox(ws, ids or (), failed=failed)
    if fmt is PostingFormat.json:
        echo_json({"queued": n})
        return
    console.print(f"Queued {n:,} rows to be sent again.", highlight=False)


@outbox_app.command("unknown")
@friendly
def unknown_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = PostingFormat.table,
) -> None:
    """Report rows in doubt: a worker died while sending them on a channel that does
    not deduplicate (SMTP, file), so they may or may not have gone out. They are never
    resent automatically; check with the provider, then `outbox retry ID` if needed.

    Example: [bold]liucun -w shop outbox unknown --format json[/bold]
    """
    from liucun.journeys import list_outbox

    with _open(ctx, workspace) as ws:
        rows = list_outbox(ws, status="unknown")
    if fmt is PostingFormat.json:
        echo_json({"unknown": len(rows), "rows": rows})
        return
    if not rows:
        console.print("No rows in doubt.")
        return
    console.print(
        f"[yellow]{len(rows):,} rows in doubt[/yellow] (may or may not have been sent; "
        "never resent automatically):",
        highlight=False,
    )
    _table(rows, "outbox (unknown)")
