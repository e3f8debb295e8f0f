"""``liucun loyalty loss-aversion``: the silence warning, the decay of idle points and the
recall package, or a preview of them (``--dry-run``). The command parses, calls
:func:`liucun.loyalty.loss_aversion` with Rich progress and renders."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import SHOWN_ROWS, WorkspaceOpt, _open, console, friendly, print_more
from liucun.cli._loyalty import (
    PostingFormat,
    PostingFormatOpt,
    ProgramOpt,
    _count,
    counted_progress,
    echo_json,
    loyalty_app,
)


class Rule(StrEnum):
    """One loss-aversion rule."""

    warn = "warn"
    decay = "decay"
    recall = "recall"


@loyalty_app.command("loss-aversion")
@friendly
def loss_aversion_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Judge idleness at this day (YYYY-MM-DD: the start of the day in the "
            "program's time zone) or instant (ISO 8601 with offset); default now.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say who would be warned, decayed or recalled and by how much; write nothing.",
        ),
    ] = False,
    only: Annotated[
        Rule | None, typer.Option("--only", help="Run only this rule (default: all three).")
    ] = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Warn silent members, decay idle points, send the recall package.

    A member holding available points and idle (no event, no earning or spending) for
    loss_aversion.silence_warning_days gets one warning per idle spell (a
    points_silence_warning event journeys can trigger on); after each idle month from the
    warning a share of the available points decays (rounded down, FIFO by expiry); with
    the first decay comes the recall coupon and a temporary tier upgrade. Running it again
    adds nothing already done. See docs/loyalty.md, "Loss aversion".

    Example: [bold]liucun -w shop loyalty loss-aversion --dry-run --only decay[/bold]

    Example: [bold]liucun -w shop loyalty loss-aversion --as-of 2026-12-01 --format json[/bold]
    """
    from liucun import loyalty

    title = "Previewing loss aversion" if dry_run else "Applying loss aversion"
    with _open(ctx, workspace) as ws, counted_progress(title, "rules", fmt) as step:
        result = loyalty.loss_aversion(
            ws,
            program=program,
            as_of=_as_of(as_of),
            dry_run=dry_run,
            only=None if only is None else only.value,
            on_progress=step,
        )
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    _render(result)


def _as_of(text: str | None) -> date | datetime | None:
    from liucun.core import ConfigError, Hint

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"--as-of {text!r} is neither a day (YYYY-MM-DD) nor an instant with an offset "
            "(e.g. 2026-12-01T08:00:00+08:00)",
            hint=Hint(option="--as-of", example="2026-12-01"),
        )
    return moment


def _render(result: Any) -> None:
    verb = "would" if result.dry_run else "did"
    c = result.counts
    console.print(
        f"Loss aversion of {escape(result.program)} at {result.as_of:%Y-%m-%d %H:%M} UTC: "
        f"{_count(result.members, 'member')} holding available points, {result.idle:,} of "
        f"them idle. It {verb} warn {c['warn']:,}, decay {result.points_decayed:,} points "
        f"of {c['decay']:,}, recall {c['recall']:,} ({_count(result.coupons, 'coupon')} "
        f"worth {result.coupon_value:,.2f}, {_count(result.boosts, 'tier upgrade')})"
        + (f"; {_count(result.events, 'warning event')} to the warehouse" if result.events else "")
        + ("." if not result.dry_run else ". Nothing was written; run without --dry-run."),
        highlight=False,
    )
    if not result.rows:
        return
    table = Table(title="Members")
    for name in ("rule", "user", "idle days", "points", "what"):
        table.add_column(name, justify="right" if name in ("idle days", "points") else "left")
    for row in result.rows[:SHOWN_ROWS]:
        table.add_row(
            row.rule,
            escape(row.user_id),
            f"{row.idle_days:,}",
            f"{row.points:,}",
            escape(_what(row)),
        )
    console.print(table)
    print_more(len(result.rows))


def _what(row: Any) -> str:
    d = row.details
    if row.rule == "warn":
        when = f" on {d['decay_on']}" if d.get("decay_on") else ""
        return f"{row.points:,} points at stake; {d['decay_points']:,} decay{when}"
    if row.rule == "decay":
        if row.status == "skipped":
            return "rounds to 0 points: nothing decays"
        return f"{d['share']:.0%} of the available points (idle period {d['period']})"
    parts = []
    if d.get("coupon_id"):
        if d.get("coupon_refused"):
            parts.append(f"coupon {d['coupon_id']} refused: {d['coupon_refused']}")
        else:
            code = f" {d['coupon_code']}" if d.get("coupon_code") else ""
            parts.append(f"coupon {d['coupon_id']}{code} ({d['coupon_value']:,.2f})")
    if d.get("boost_tier"):
        parts.append(f"tier {d['boost_tier']} until {d['boost_until'][:10]}")
    elif d.get("boost_note"):
        parts.append(d["boost_note"])
    return "; ".join(parts) or "nothing to give"
