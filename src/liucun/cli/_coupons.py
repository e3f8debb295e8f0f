"""``liucun loyalty coupon …`` and ``liucun loyalty benefit …``: issue, redeem, list and
expire coupon codes, redeem the codes that orders carry, buy benefits with points, list a
customer's rights. Each command parses, calls one function of
:mod:`liucun.loyalty._coupons` and renders; a refusal (a limit, a budget, a code that does
not apply, too few points) exits with code 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from liucun.cli._app import (
    WorkspaceOpt,
    _open,
    console,
    friendly,
    parse_day,
)
from liucun.cli._loyalty import (
    KeyOpt,
    PostingFormat,
    PostingFormatOpt,
    echo_json,
    loyalty_app,
    refusals_exit_2,
)

coupon_app = typer.Typer(
    help="Coupon codes: issue, redeem, list, expire, redeem the codes orders carry.\n\n"
    "Example: [bold]liucun -w shop loyalty coupon issue recall_10 u1 --key recall:u1 "
    "--program-file program.yaml[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
benefit_app = typer.Typer(
    help="Benefits: buy one with points, list a customer's rights.\n\n"
    "Example: [bold]liucun -w shop loyalty benefit redeem u1 shipping_upgrade --key ship:77 "
    "--program-file program.yaml[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
loyalty_app.add_typer(coupon_app, name="coupon")
loyalty_app.add_typer(benefit_app, name="benefit")

ProgramFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--program-file",
        help="A loyalty program file (YAML) defining the coupons and benefits (default: "
        "the program in force, see `liucun loyalty program apply`).",
    ),
]


@coupon_app.command("issue")
@friendly
@refusals_exit_2
def issue_cmd(
    ctx: typer.Context,
    coupon_id: Annotated[str, typer.Argument(help="Coupon id in the program file.")],
    user: Annotated[str, typer.Argument(help="Customer id.")],
    key: KeyOpt,
    program_file: ProgramFileOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Issue a new single-use code of COUPON_ID to USER (per-customer limits, the value cap
    and budgets are checked; a refusal exits 2).

    Example: [bold]liucun -w shop loyalty coupon issue recall_10 u1 --key recall:u1
    --program-file program.yaml[/bold]
    """
    from liucun.loyalty._coupons import issue_coupon

    with _open(ctx, workspace) as ws:
        c = issue_coupon(ws, coupon_id, user, key=key, program=program_file)
    if fmt is PostingFormat.json:
        echo_json(c.to_dict())
        return
    again = " [dim](replayed: already issued, nothing written)[/dim]" if c.replayed else ""
    console.print(
        f"Issued [bold]{escape(c.code)}[/bold] ({escape(c.coupon_id)}) to "
        f"[bold]{escape(c.user_id)}[/bold], valid until {c.valid_until:%Y-%m-%d %H:%M} UTC."
        f"{again}",
        highlight=False,
    )


@coupon_app.command("redeem")
@friendly
@refusals_exit_2
def redeem_cmd(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The coupon code.")],
    order: Annotated[str, typer.Option("--order", help="Order id the code is used on.")],
    value: Annotated[
        float, typer.Option("--value", help="Order value in the program currency.", min=0)
    ],
    key: KeyOpt,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="A category of the order (repeat).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Who placed the order.")] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Redeem CODE on an order; a second redemption, an expired code or an order below the
    minimum is refused (exit 2).

    Example: [bold]liucun -w shop loyalty coupon redeem ABCD-EFGH-JKMN-PQRS --order o77
    --value 120 --key o77:coupon[/bold]
    """
    from liucun.loyalty._coupons import redeem_coupon

    with _open(ctx, workspace) as ws:
        r = redeem_coupon(
            ws,
            code,
            order_id=order,
            order_value=value,
            key=key,
            categories=category,
            user_id=user,
        )
    if fmt is PostingFormat.json:
        echo_json(r.to_dict())
        return
    again = " [dim](replayed: already redeemed, nothing written)[/dim]" if r.replayed else ""
    console.print(
        f"Redeemed {escape(r.code)} on order {escape(r.order_id)}: discount "
        f"{r.discount:,.2f} {r.currency} booked.{again}",
        highlight=False,
    )


@coupon_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """USER's coupon codes, oldest first, with their status.

    Example: [bold]liucun -w shop loyalty coupon list u1[/bold]
    """
    from liucun.loyalty._coupons import list_coupons

    with _open(ctx, workspace) as ws:
        codes = list_coupons(ws, user)
    if fmt is PostingFormat.json:
        echo_json([c.to_dict() for c in codes])
        return
    if not codes:
        console.print(f"{escape(user)} holds no coupon codes.", highlight=False)
    for c in codes:
        face = f"{c.amount:g} {c.currency}" if c.kind == "value" else f"{c.amount:g} %"
        console.print(
            f"{escape(c.code)}  {escape(c.coupon_id)}  {face}  {c.status}  valid until "
            f"{c.valid_until:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


@coupon_app.command("expire")
@friendly
def expire_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Expire codes whose validity ended by this day."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Mark unredeemed codes whose validity ended by --as-of (default now) expired.

    Example: [bold]liucun -w shop loyalty coupon expire --as-of 2026-12-01[/bold]
    """
    from liucun.loyalty._coupons import expire_coupons

    with _open(ctx, workspace) as ws:
        n = expire_coupons(ws, parse_day(as_of, "--as-of") or ws.clock.now())
    if fmt is PostingFormat.json:
        echo_json({"expired": n})
        return
    console.print(f"Expired {n:,} coupon codes.", highlight=False)


@coupon_app.command("redeem-orders")
@friendly
def redeem_orders_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Only orders from this day, YYYY-MM-DD.")
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Redeem the codes that order events carry (properties.coupon_code); running it again
    redeems nothing twice.

    Example: [bold]liucun -w shop loyalty coupon redeem-orders --since 2026-11-01[/bold]
    """
    from liucun.loyalty._coupons import redeem_from_orders

    with _open(ctx, workspace) as ws:
        result = redeem_from_orders(ws, since=parse_day(since, "--since"))
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"{result.orders:,} orders carried a code: {result.redeemed:,} redeemed "
        f"({result.discount:,.2f} booked), {result.replayed:,} already redeemed, "
        f"{result.unknown:,} codes not issued by liucun, {len(result.refused):,} refused.",
        highlight=False,
    )
    for event_id, code, reason in result.refused[:20]:
        console.print(f"- {escape(event_id)} {escape(code)}: {escape(reason)}", highlight=False)


@coupon_app.command("check")
@friendly
def check_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Verify the coupon invariants; exit 0 only when all hold.

    Example: [bold]liucun -w shop loyalty coupon check[/bold]
    """
    from liucun.loyalty._coupons import coupon_check

    with _open(ctx, workspace) as ws:
        violations = coupon_check(ws)
    if fmt is PostingFormat.json:
        echo_json({"ok": not violations, "violations": violations})
    elif not violations:
        console.print("The coupons hold: no violation.", highlight=False)
    else:
        console.print(f"[red]{len(violations):,} coupon violations[/red]:", highlight=False)
        for line in violations:
            console.print(f"- {escape(line)}", highlight=False, soft_wrap=True)
    if violations:
        raise typer.Exit(1)


@benefit_app.command("redeem")
@friendly
@refusals_exit_2
def benefit_redeem_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    benefit_id: Annotated[str, typer.Argument(help="Benefit id in the program file.")],
    key: KeyOpt,
    program_file: ProgramFileOpt = None,
    ledger_program: Annotated[
        str, typer.Option("--program", help="Ledger program the points are taken from.")
    ] = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Buy BENEFIT_ID for USER with points (too few points or the period's limit: exit 2).

    Example: [bold]liucun -w shop loyalty benefit redeem u1 shipping_upgrade --key ship:77
    --program-file program.yaml[/bold]
    """
    from liucun.loyalty._coupons import redeem_benefit

    with _open(ctx, workspace) as ws:
        g = redeem_benefit(
            ws, user, benefit_id, key=key, program=program_file, ledger_program=ledger_program
        )
    if fmt is PostingFormat.json:
        echo_json(g.to_dict())
        return
    again = " [dim](replayed: already granted, nothing written)[/dim]" if g.replayed else ""
    console.print(
        f"Granted {escape(g.benefit_id)} to [bold]{escape(g.user_id)}[/bold] for "
        f"{g.points:,} points; balance {g.balance_after:,}.{again}",
        highlight=False,
    )


@benefit_app.command("list")
@friendly
def benefit_list_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    program_file: ProgramFileOpt = None,
    tier: Annotated[str | None, typer.Option("--tier", help="The customer's tier.")] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Profile fields as JSON, e.g. '{\"orders\": 5}'."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """The benefits USER has (by tier, unlock filters on the profile, or for points);
    hidden perks are flagged.

    Example: [bold]liucun -w shop loyalty benefit list u1 --tier 进阶 --program-file
    program.yaml[/bold]
    """
    from liucun.core import ConfigError, Hint
    from liucun.loyalty._coupons import eligible_benefits

    try:
        fields = {} if profile is None else json.loads(profile)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--profile is not JSON ({exc.msg} at character {exc.pos})",
            hint=Hint(option="--profile", example='{"orders": 5}'),
        ) from None
    if not isinstance(fields, dict):
        raise ConfigError("--profile must be a JSON object of profile fields")
    with _open(ctx, workspace) as ws:
        rights = eligible_benefits(ws, user, profile=fields, program=program_file, tier=tier)
    if fmt is PostingFormat.json:
        echo_json([r.to_dict() for r in rights])
        return
    if not rights:
        console.print(f"{escape(user)} has no benefits.", highlight=False)
    for r in rights:
        hidden = " [dim](hidden perk)[/dim]" if r.hidden else ""
        console.print(
            f"{escape(r.benefit_id)}: {escape(r.description)} — {escape(r.unlocked_by)}{hidden}",
            highlight=False,
        )
