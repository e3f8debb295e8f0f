"""``liucun loyalty tiers …``: review the tiers in force (stored in state, events to the
warehouse), a member's tier history, and the members per tier."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import (
    SHOWN_ROWS,
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    chatter,
    console,
    friendly,
    parse_day,
    print_more,
    progress_steps,
)
from liucun.cli._loyalty import ProgramOpt, _count, echo_json, loyalty_app

tiers_app = typer.Typer(
    help="Tiers in force: review them (upgrades at once, downgrades at a review), a "
    "member's history, the members per tier. Tiers follow growth value EARNED in the "
    "program's window, never the spendable points.\n\n"
    "Example: [bold]liucun -w shop loyalty tiers review --dry-run[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
loyalty_app.add_typer(tiers_app, name="tiers")

#: Changes printed by ``tiers review`` in a table (all of them with --format json).


@tiers_app.command("review")
@friendly
def review_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Review as of the start of this day (UTC), YYYY-MM-DD; "
            "default: now. Not in the future, not before the last review.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say who would change tier and why; write nothing."),
    ] = False,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Review every member's tier with the program in force and store it.

    Upgrades happen at once; downgrades only at the first review of a review period,
    after the grace days. Each change of a member's tier is kept in the history and
    written to the warehouse as a tier_changed event (stable ids: running the review
    again changes nothing, and writes the events an interrupted run left behind).
    --format json prints one object (counts, distribution, changes).

    Example: [bold]liucun -w shop loyalty tiers review --as-of 2026-12-01 --dry-run[/bold]
    """
    from liucun import loyalty

    say = chatter(fmt)
    with _open(ctx, workspace) as ws, progress_steps("Tier review", say) as step:
        review = loyalty.review_tiers(
            ws,
            program=program,
            as_of=parse_day(as_of, "--as-of"),
            dry_run=dry_run,
            on_step=step,
        )
    if fmt is OutputFormat.json:
        echo_json(review.to_dict())
        return
    if fmt is not OutputFormat.table:
        frame = pd.DataFrame([c.to_dict() for c in review.changes])
        _emit(frame, fmt, title="", out=None)
        return
    when = f"{review.as_of:%Y-%m-%d %H:%M} UTC"
    verb = "would change" if review.dry_run else "changed"
    counts = ", ".join(f"{escape(t)} {n:,}" for t, n in review.distribution.items())
    console.print(
        f"Reviewed {_count(review.members, 'member')} of {escape(review.program)} as of "
        f"{when}: {len(review.changes):,} {verb} tier. Members per tier: {counts}"
        + (f"; {review.in_grace:,} in grace" if review.in_grace else "")
        + (f"; {review.boosted:,} on a temporary upgrade" if review.boosted else "")
        + ".",
        highlight=False,
    )
    if review.dry_run:
        console.print("[dim]Dry run: nothing was written.[/dim]")
        if review.events_pending:
            console.print(
                f"{review.events_pending:,} tier_changed events of earlier reviews are not "
                "in the warehouse yet; the next review writes them.",
                highlight=False,
            )
    elif review.events_written:
        repaired = (
            f" ({review.events_repaired:,} of them left behind by an earlier review)"
            if review.events_repaired
            else ""
        )
        console.print(
            f"Wrote {_count(review.events_written, 'tier_changed event')} to the "
            f"warehouse{repaired}.",
            highlight=False,
        )
    if review.changes:
        table = Table(title="Tier changes")
        for name in ("user", "from", "to", "direction", "reason"):
            table.add_column(name)
        for c in review.changes[:SHOWN_ROWS]:
            table.add_row(
                escape(c.user_id),
                escape(c.from_tier or "—"),
                escape(c.to_tier),
                c.direction,
                escape(c.reason),
            )
        console.print(table)
        print_more(len(review.changes))


@tiers_app.command("history")
@friendly
def history_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
) -> None:
    """Every change of USER's tier, oldest first, with the reason.

    Example: [bold]liucun -w shop loyalty tiers history u1 --format json[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        changes = loyalty.tier_history(ws, user, program)
    if fmt is OutputFormat.json:
        echo_json({"user_id": user, "program": program, "changes": [c.to_dict() for c in changes]})
        return
    if fmt is OutputFormat.table and not changes:
        console.print(
            f"{escape(user)} has no tier history in {escape(program)} yet (the first "
            "review gives every member a tier: liucun loyalty tiers review).",
            highlight=False,
        )
        return
    frame = pd.DataFrame(
        [
            {
                "when": c.changed_at,
                "from": c.from_tier,
                "to": c.to_tier,
                "direction": c.direction,
                "growth_in_window": c.growth_in_window,
                "reason": c.reason,
            }
            for c in changes
        ],
        columns=["when", "from", "to", "direction", "growth_in_window", "reason"],
    )
    _emit(
        _minutes(frame) if fmt is OutputFormat.table else frame,
        fmt,
        title=f"Tier history of {user}",
        out=out,
        priority=("when", "to", "reason"),
    )


@tiers_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    tier: Annotated[
        str | None,
        typer.Option("--tier", help="List the members holding this tier instead."),
    ] = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
) -> None:
    """Members per tier now, or with --tier the members holding that tier.

    The tier is the effective one: a temporary upgrade counts while it lasts
    (earned_tier is the tier the member's growth holds).

    Example: [bold]liucun -w shop loyalty tiers list --tier 尊享 --format csv[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        if tier is None:
            frame = loyalty.tier_distribution(ws, program)
            title = f"Members per tier in {program}"
        else:
            frame = loyalty.tier_members(ws, program, tier=tier)
            title = f"Members holding {tier} in {program}"
    if fmt is OutputFormat.json and tier is None:
        echo_json({"program": program, "tiers": frame.to_dict("records")})
        return
    _emit(
        _minutes(frame) if fmt is OutputFormat.table else frame,
        fmt,
        title=title,
        out=out,
        priority=("tier", "members", "user_id"),
    )


def _minutes(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps to the minute (UTC) for a table on screen; empty ones blank."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype) or col in ("when",):
            stamps = pd.to_datetime(out[col], utc=True)
            out[col] = stamps.dt.strftime("%Y-%m-%d %H:%M").fillna("")
    return out
