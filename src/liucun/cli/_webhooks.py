"""``liucun webhooks add|list|disable|rotate|delete``: partner webhook subscriptions to
liucun's events (the secret is printed once, stored encrypted)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly

webhooks_app = typer.Typer(
    help="Partner webhooks: subscribe a URL to stage_changed, risk_crossed, tier_changed, "
    "journey_entered, journey_converted, points_changed or coupon_issued events, signed "
    "the Standard Webhooks way with a secret of its own (printed once). The worker sends "
    "them.\n\n"
    "Example: [bold]liucun -w shop webhooks add crm --url https://crm.example/hooks "
    "--event stage_changed --event tier_changed[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(webhooks_app, name="webhooks")

NameArg = Annotated[str, typer.Argument(help="The subscription's name (webhooks list shows it).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _secret_note(secret: str, name: str, *, as_json: bool, info: dict[str, object]) -> None:
    if as_json:
        typer.echo(json.dumps({"secret": secret, **info}, ensure_ascii=False))
        return
    typer.echo(secret)
    console.print(
        f"Secret of [bold]{escape(name)}[/bold]. Copy it now: it is not shown again. The "
        "partner verifies webhook-signature with it (Standard Webhooks).",
        highlight=False,
    )


@webhooks_app.command("add")
@friendly
def add_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the subscription, e.g. crm.")],
    url: Annotated[str, typer.Option("--url", help="Where the events are POSTed (http/https).")],
    event_types: Annotated[
        list[str],
        typer.Option(
            "--event",
            help="stage_changed, risk_crossed, tier_changed, journey_entered, "
            "journey_converted, points_changed or coupon_issued (repeat for several).",
        ),
    ],
    risk_threshold: Annotated[
        float | None,
        typer.Option(
            "--risk-threshold", help="risk_crossed: the churn risk crossed upwards (default 0.5)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Subscribe a URL to events and print its signing secret [bold]once[/bold]; events
    from now on are sent by `liucun worker`.

    Example: [bold]liucun -w shop webhooks add crm --url https://crm.example/hooks
    --event stage_changed --event risk_crossed --risk-threshold 0.7[/bold]
    """
    from liucun.journeys import create_subscription

    with _open(ctx, workspace) as ws:
        new = create_subscription(
            ws, name=name, url=url, event_types=event_types, risk_threshold=risk_threshold
        )
    sub = new.subscription
    if not as_json:
        console.print(
            f"Subscription [bold]{escape(sub.name)}[/bold] → {escape(sub.url)} for "
            f"{', '.join(sub.event_types)}.",
            highlight=False,
        )
    _secret_note(new.secret, sub.name, as_json=as_json, info=sub.to_dict())


@webhooks_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Leave out disabled ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one a line.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List the webhook subscriptions (never their secrets), oldest first.

    Example: [bold]liucun -w shop webhooks list --active[/bold]
    """
    from liucun.journeys import list_subscriptions

    with _open(ctx, workspace) as ws:
        subs = list_subscriptions(ws, include_inactive=not active)
    if as_json:
        for sub in subs:
            typer.echo(json.dumps(sub.to_dict(), ensure_ascii=False))
        return
    if not subs:
        console.print(
            "No webhook subscriptions yet; add one with [bold]liucun webhooks add[/bold]."
        )
        return
    table = Table(title="Webhook subscriptions")
    for col in ("name", "url", "events", "active", "created", "rotated"):
        table.add_column(col, no_wrap=col in ("name", "active"))
    for sub in subs:
        events = ", ".join(sub.event_types)
        if "risk_crossed" in sub.event_types and sub.risk_threshold is not None:
            events += f" (risk ≥ {sub.risk_threshold:g})"
        table.add_row(
            escape(sub.name),
            escape(sub.url),
            events,
            "yes" if sub.active else f"no (since {sub.disabled_at:%Y-%m-%d %H:%M})",
            f"{sub.created_at:%Y-%m-%d %H:%M}",
            "—" if sub.rotated_at is None else f"{sub.rotated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@webhooks_app.command("disable")
@friendly
def disable_cmd(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Stop sending to a subscription; its webhooks still waiting are cancelled.

    Example: [bold]liucun -w shop webhooks disable crm[/bold]
    """
    from liucun.journeys import disable_subscription

    with _open(ctx, workspace) as ws:
        sub = disable_subscription(ws, name)
    console.print(
        f"Subscription [bold]{escape(sub.name)}[/bold] is disabled (since "
        f"{sub.disabled_at:%Y-%m-%d %H:%M} UTC): nothing more is sent to it.",
        highlight=False,
    )


@webhooks_app.command("rotate")
@friendly
def rotate_cmd(
    ctx: typer.Context, name: NameArg, as_json: JsonOpt = False, workspace: WorkspaceOpt = None
) -> None:
    """Give a subscription a new secret and print it [bold]once[/bold]; every webhook
    sent from now on is signed with it.

    Example: [bold]liucun -w shop webhooks rotate crm[/bold]
    """
    from liucun.journeys import rotate_secret

    with _open(ctx, workspace) as ws:
        new = rotate_secret(ws, name)
    _secret_note(
        new.secret, new.subscription.name, as_json=as_json, info=new.subscription.to_dict()
    )


@webhooks_app.command("delete")
@friendly
def delete_cmd(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Remove a subscription; its webhooks still waiting are cancelled (what was sent
    stays in the outbox's history).

    Example: [bold]liucun -w shop webhooks delete crm[/bold]
    """
    from liucun.journeys import delete_subscription

    with _open(ctx, workspace) as ws:
        sub = delete_subscription(ws, name)
    console.print(f"Subscription [bold]{escape(sub.name)}[/bold] deleted.", highlight=False)
