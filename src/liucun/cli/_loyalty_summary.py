"""``liucun loyalty summary``: the Loyalty section's figures on the command line
(:func:`liucun.loyalty.loyalty_summary`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, console, friendly, parse_day
from liucun.cli._loyalty import PostingFormat, PostingFormatOpt, echo_json, loyalty_app


@loyalty_app.command("summary")
@friendly
def summary_cmd(
    ctx: typer.Context,
    program: Annotated[str, typer.Option("--program", help="Ledger program.")] = "default",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Read the state as it stood at the start of this day (UTC), YYYY-MM-DD; "
            "default: now.",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Points outstanding and their liability, points expiring in 30 days, breakage,
    coupon redemption and cost, tiers and paid membership (docs/loyalty.md, "Loyalty in
    the report").

    Example: [bold]liucun -w shop loyalty summary --format json[/bold]
    """
    from liucun.loyalty import loyalty_summary
    from liucun.reports import number, pct

    with _open(ctx, workspace) as ws:
        s = loyalty_summary(ws, program=program, as_of=parse_day(as_of, "--as-of"))
    if fmt is PostingFormat.json:
        echo_json(s.to_dict())
        return
    cur = s.currency or "unpriced"
    table = Table(title=f"Loyalty program {program!r} as of {s.as_of:%Y-%m-%d %H:%M} UTC")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("members", number(s.members)),
        ("points outstanding (available + pending)", number(s.outstanding)),
        ("  of which pending", number(s.pending)),
        (f"liability, available points ({cur})", number(s.liability_available, 2)),
        (f"liability, with pending points ({cur})", number(s.liability_with_pending, 2)),
        ("points expiring in the next 30 days", number(s.expiring_soon)),
        ("points past expiry, not yet expired", number(s.lapsed)),
        ("breakage, last 365 days", pct(s.breakage_trailing)),
        ("breakage, all time", pct(s.breakage)),
        ("coupon redemption rate (of settled codes)", pct(s.coupon_rate)),
        (f"coupon cost ({s.currency or 'program currency'})", number(s.coupon_cost, 2)),
        ("paid members", number(s.paid_members)),
        ("renewal rate, last 365 days", pct(s.renewal_rate)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
