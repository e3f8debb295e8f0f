"""``liucun keys create|list|revoke``: API keys of the service (shown once, stored hashed)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly

keys_app = typer.Typer(
    help="API keys of the HTTP service: create (the key is printed once), list, revoke.\n\n"
    "Example: [bold]liucun -w shop keys create --scope ingest --scope read --name "
    "checkout[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@friendly
def create_cmd(
    ctx: typer.Context,
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="ingest, read, decide, loyalty:write, journeys:write, privacy or admin "
            "(repeat for several; admin implies all).",
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Who uses the key, e.g. checkout.")],
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Requests per second (default: [serve] rate_per_s)."),
    ] = None,
    burst: Annotated[
        int | None,
        typer.Option("--burst", help="Requests at once (default: [serve] burst)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create an API key and print it [bold]once[/bold]: only its keyed hash is stored.

    Example: [bold]liucun -w shop keys create --scope ingest --scope read --name checkout[/bold]
    """
    from liucun.api import create_key

    with _open(ctx, workspace) as ws:
        new = create_key(ws, name=name, scopes=scope, rate_per_s=rate, burst=burst)
    if as_json:
        typer.echo(json.dumps({"key": new.key, **new.info.to_dict()}, ensure_ascii=False))
        return
    typer.echo(new.key)
    console.print(
        f"Key [bold]{new.info.key_id}[/bold] ({escape(new.info.name)}) with scopes "
        f"{', '.join(new.info.scopes)}. Copy it now: it is not shown again. Send it as "
        "Authorization: Bearer KEY.",
        highlight=False,
    )


@keys_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one key a line.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List the API keys (never their secrets), oldest first.

    Example: [bold]liucun -w shop keys list --active[/bold]
    """
    from liucun.api import list_keys

    with _open(ctx, workspace) as ws:
        keys = list_keys(ws, include_revoked=not active)
    if as_json:
        for k in keys:
            typer.echo(json.dumps(k.to_dict(), ensure_ascii=False))
        return
    if not keys:
        console.print("No API keys yet; create one with [bold]liucun keys create[/bold].")
        return
    table = Table(title="API keys")
    for col in ("key_id", "name", "scopes", "created", "last used", "revoked"):
        table.add_column(col, no_wrap=col in ("key_id", "scopes"))
    for k in keys:
        table.add_row(
            k.key_id,
            escape(k.name),
            ", ".join(k.scopes),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            "—" if k.last_used_at is None else f"{k.last_used_at:%Y-%m-%d %H:%M}",
            "—" if k.revoked_at is None else f"{k.revoked_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@keys_app.command("revoke")
@friendly
def revoke_cmd(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list shows it).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke an API key; a running service refuses it within [serve] key_cache_s.

    Example: [bold]liucun -w shop keys revoke 3f9a1c0d5e7b2a64[/bold]
    """
    from liucun.api import revoke_key

    with _open(ctx, workspace) as ws:
        info = revoke_key(ws, key_id)
    console.print(
        f"Revoked key [bold]{info.key_id}[/bold] ({escape(info.name)}) at "
        f"{info.revoked_at:%Y-%m-%d %H:%M} UTC.",
        highlight=False,
    )
