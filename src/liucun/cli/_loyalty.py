"""``liucun loyalty …``: the points ledger from the command line (award, redeem, reverse,
account, expire, check). Each command parses, calls one function of
:mod:`liucun.loyalty` and renders; a refused redemption exits with code 2."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import (
    F,
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _context,
    _emit,
    _error_line,
    _fail,
    _open,
    app,
    console,
    err_console,
    friendly,
    parse_day,
)

loyalty_app = typer.Typer(
    help="The loyalty points ledger: award, redeem, reverse, read an account, expire, check.\n\n"
    "Example: [bold]liucun -w shop loyalty award u1 100 --key order-1001:points[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(loyalty_app, name="loyalty")


class PostingFormat(StrEnum):
    """How a ledger write is printed."""

    table = "table"
    json = "json"


KeyOpt = Annotated[
    str,
    typer.Option(
        "--key",
        help="Idempotency key of this operation: repeating it with the same arguments "
        "returns the first result and writes nothing.",
    ),
]
ProgramOpt = Annotated[str, typer.Option("--program", help="Loyalty program.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept with the entry).")]
PostingFormatOpt = Annotated[PostingFormat, typer.Option("--format", help="Output format.")]


def refusals_exit_2(fn: F) -> F:
    """A refused loyalty write (too few points, a coupon limit or budget, a code that does
    not apply): the red sentence and exit code 2 — nothing was written."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from liucun.loyalty import CouponRefused, InsufficientPoints

        try:
            return fn(*args, **kwargs)
        except (CouponRefused, InsufficientPoints) as exc:
            raise _fail(_error_line(exc, _context(args, kwargs)), 2) from None

    return wrapper  # type: ignore[return-value]


def echo_json(obj: Any) -> None:
    """One JSON document on standard output (non-ASCII kept, e.g. tier names)."""
    typer.echo(json.dumps(obj, ensure_ascii=False))


@contextlib.contextmanager
def counted_progress(
    title: str, unit: str, fmt: PostingFormat
) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar counting ``unit`` (on standard error when printing JSON);
    yields the ``on_progress(done, total)`` callback the loyalty jobs take."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} " + unit),
        TimeElapsedColumn(),
    )
    out = console if fmt is PostingFormat.table else err_console
    with Progress(*columns, console=out, transient=True) as bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_posting(posting: Any, fmt: PostingFormat) -> None:
    if fmt is PostingFormat.json:
        echo_json(posting.to_dict())
        return
    verb = {
        "addition": "Awarded",
        "redemption": "Redeemed",
        "reversal": "Reversed",
        "adjustment": "Adjusted",
        "expiry": "Expired",
        "growth": "Added",
        "release": "Released",
        "decay": "Decayed",
    }[posting.kind]
    if posting.kind == "release":
        amount = "the pending points"
    elif posting.points:
        amount = f"{abs(posting.points):,} points"
    else:
        amount = f"{posting.growth:,} growth value"
    what = f" ({escape(posting.reverses)})" if posting.reverses else ""
    again = " [dim](replayed: already done, nothing written)[/dim]" if posting.replayed else ""
    console.print(
        f"{verb}{what} {amount} for [bold]{escape(posting.user_id)}[/bold] "
        f"under key {escape(posting.key)}; balance {posting.balance_after:,}.{again}",
        highlight=False,
    )


@loyalty_app.command("award")
@friendly
def award_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id (a new id opens an account).")],
    points: Annotated[int, typer.Argument(help="Points to add (a positive whole number).")],
    key: KeyOpt,
    reason: ReasonOpt = None,
    program: ProgramOpt = "default",
    expires_at: Annotated[
        str | None,
        typer.Option("--expires", help="Day the points expire at the start of, YYYY-MM-DD."),
    ] = None,
    pending_days: Annotated[
        int,
        typer.Option("--pending-days", help="Days before the points can be spent.", min=0),
    ] = 0,
    on_release: Annotated[
        bool,
        typer.Option(
            "--on-release",
            help="Pending until 'loyalty release KEY' (e.g. when the order is delivered).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Add POINTS to USER's account.

    Example: [bold]liucun -w shop loyalty award u1 100 --key order-1001:points[/bold]
    """
    from datetime import timedelta

    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        posting = loyalty.award(
            ws,
            user,
            points,
            key=key,
            reason=reason,
            program=program,
            expires_at=parse_day(expires_at, "--expires"),
            available_at=loyalty.ON_RELEASE
            if on_release
            else (timedelta(days=pending_days) if pending_days else None),
        )
    _print_posting(posting, fmt)


@loyalty_app.command("redeem")
@friendly
@refusals_exit_2
def redeem_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    points: Annotated[int, typer.Argument(help="Points to spend (a positive whole number).")],
    key: KeyOpt,
    reason: ReasonOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Spend POINTS of USER's available points, those expiring first first.

    Fewer points available: exit code 2 and a sentence; nothing is written.

    Example: [bold]liucun -w shop loyalty redeem u1 40 --key checkout-77[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        posting = loyalty.redeem(ws, user, points, key=key, reason=reason, program=program)
    _print_posting(posting, fmt)


@loyalty_app.command("reverse")
@friendly
@refusals_exit_2
def reverse_cmd(
    ctx: typer.Context,
    original: Annotated[str, typer.Argument(help="Key of the write to undo.")],
    key: KeyOpt,
    reason: ReasonOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Undo the ledger write made under ORIGINAL with opposite entries.

    Example: [bold]liucun -w shop loyalty reverse order-1001:points --key refund-1001[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        posting = loyalty.reverse(ws, original, key=key, reason=reason)
    _print_posting(posting, fmt)


@loyalty_app.command("release")
@friendly
def release_cmd(
    ctx: typer.Context,
    original: Annotated[str, typer.Argument(help="Key of an award made with --on-release.")],
    key: KeyOpt,
    reason: ReasonOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Make the pending points of the award ORIGINAL available now.

    Example: [bold]liucun -w shop loyalty release order-1001:points --key delivered-1001[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        posting = loyalty.release(ws, original, key=key, reason=reason)
    _print_posting(posting, fmt)


@loyalty_app.command("account")
@friendly
def account_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
) -> None:
    """Print USER's balance, pending points, growth value and entries.

    --format json prints one object (user_id, balance, pending, tier, growth_value,
    entries, lots); csv and parquet write the entries.

    Example: [bold]liucun -w shop loyalty account u1 --format json[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        acct = loyalty.account(ws, user, program)
    if fmt is OutputFormat.json:
        echo_json(acct.to_dict())
        return
    if fmt is not OutputFormat.table:
        import pandas as pd

        columns = list(loyalty.Entry.__dataclass_fields__)
        frame = pd.DataFrame([e.to_dict() for e in acct.entries], columns=columns)
        _emit(frame, fmt, title="", out=out)
        return
    console.print(
        f"[bold]{escape(user)}[/bold] in {escape(program)}: {acct.balance:,} points available, "
        f"{acct.pending:,} pending, growth value {acct.growth_value:,}"
        + (f", tier {escape(acct.tier)}" if acct.tier else ""),
        highlight=False,
    )
    if not acct.entries:
        console.print("No entries yet: the account opens with its first award.")
        return
    table = Table(title="Entries")
    for name in ("when", "kind", "points", "growth", "balance", "key", "reason"):
        table.add_column(
            name, justify="right" if name in ("points", "growth", "balance") else "left"
        )
    for e in acct.entries:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M}",
            e.kind,
            f"{e.points:+,}",
            f"{e.growth:+,}" if e.growth else "",
            f"{e.balance_after:,}",
            escape(e.key),
            escape(e.reason or (f"reverses {e.reverses}" if e.reverses else "")),
        )
    console.print(table)


@loyalty_app.command("expire")
@friendly
def expire_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Expire what ended by the start of this day (UTC), YYYY-MM-DD; default: now.",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Expire what is left of every lot whose validity ended by --as-of.

    Running it again expires nothing more.

    Example: [bold]liucun -w shop loyalty expire --as-of 2026-12-01[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws, counted_progress("Expiring points", "accounts", fmt) as step:
        result = loyalty.expire(
            ws, as_of=parse_day(as_of, "--as-of") or ws.clock.now(), on_progress=step
        )
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"Expired {result.points:,} points of {result.lots:,} lots in {result.accounts:,} "
        f"accounts as of {result.as_of:%Y-%m-%d %H:%M} UTC."
        if result.points
        else f"Nothing left to expire as of {result.as_of:%Y-%m-%d %H:%M} UTC.",
        highlight=False,
    )


@loyalty_app.command("check")
@friendly
def check_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Verify every ledger invariant; exit 0 only when all hold, else 1 with the violations.

    Balances equal the sum of their entries, every transaction balances, no negative
    balance where the program forbids it, no key with a duplicate or partial effect.

    Example: [bold]liucun -w shop loyalty check[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        report = loyalty.check(ws)
    if fmt is PostingFormat.json:
        echo_json(report.to_dict())
    elif report.ok:
        console.print(
            f"The ledger holds: {_count(report.accounts, 'account')}, "
            f"{_count(report.transactions, 'transaction')}, {_count(report.entries, 'entry')}, "
            "no violation.",
            highlight=False,
        )
    else:
        console.print(
            f"[red]The ledger has {_count(len(report.violations), 'violation')}[/red]:",
            highlight=False,
        )
        for line in report.violations:
            console.print(f"- {escape(line)}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _count(n: int, noun: str) -> str:
    """``1 account``, ``2 accounts``, ``3 entries``."""
    if n == 1:
        return f"1 {noun}"
    many = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n:,} {many}"
