"""``liucun loyalty member …`` (paid membership: join, renew, cancel, list, settle terms
that ended, send renewal reminders) and ``liucun loyalty referral …`` (a referrer's code,
record a referral, credit referrals, list them). Each command parses, calls one function
of :mod:`liucun.loyalty` and renders; a refusal exits with code 2 and writes nothing."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import (
    F,
    WorkspaceOpt,
    _context,
    _error_line,
    _fail,
    _open,
    console,
    err_console,
    friendly,
    parse_day,
)
from liucun.cli._loyalty import (
    KeyOpt,
    PostingFormat,
    PostingFormatOpt,
    ProgramOpt,
    counted_progress,
    echo_json,
    loyalty_app,
)

member_app = typer.Typer(
    help="Paid membership (付费会员): join a plan, renew, cancel, list, settle ended terms, "
    "send renewal reminders.\n\n"
    "Example: [bold]liucun -w shop loyalty member join u1 plus_yearly --key pay-8812[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
referral_app = typer.Typer(
    help="Referrals: a referrer's invite code, record a referral, credit both sides on the "
    "referee's first order, list.\n\n"
    "Example: [bold]liucun -w shop loyalty referral code u1[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
loyalty_app.add_typer(member_app, name="member")
loyalty_app.add_typer(referral_app, name="referral")

AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When it happened: ISO 8601 (2026-03-01T09:30:00+08:00; UTC without an offset); "
        "default now.",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Up to the start of this day (UTC), YYYY-MM-DD; default now."),
]
PlanOpt = Annotated[
    str | None, typer.Option("--plan", help="The plan (default: the one the customer holds).")
]


def refusals_exit_2(fn: F) -> F:
    """A refused membership or referral write: the red sentence and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from liucun.loyalty import MembershipRefused, ReferralRefused

        try:
            return fn(*args, **kwargs)
        except (MembershipRefused, ReferralRefused) as exc:
            raise _fail(_error_line(exc, _context(args, kwargs)), 2) from None

    return wrapper  # type: ignore[return-value]


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


def _print_membership(m: Any, fmt: PostingFormat, verb: str) -> None:
    if fmt is PostingFormat.json:
        echo_json(m.to_dict())
        return
    again = " [dim](replayed: already done, nothing written)[/dim]" if m.replayed else ""
    console.print(
        f"{verb} [bold]{escape(m.user_id)}[/bold] on plan {escape(m.plan_id)} ({m.status}): "
        f"term {m.term_start:%Y-%m-%d %H:%M} – {m.term_end:%Y-%m-%d %H:%M} UTC, "
        f"{m.price:,.2f} {m.currency}"
        f"{', renews automatically' if m.auto_renew else ''}.{again}",
        highlight=False,
    )


# -- member -------------------------------------------------------------------------------


@member_app.command("join")
@friendly
@refusals_exit_2
def join_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    plan: Annotated[str, typer.Argument(help="Plan id in the program in force.")],
    key: KeyOpt,
    at: AtOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Make USER a member of PLAN.

    The first term starts now (or --at) and the plan's price is booked. Already a member,
    or an unknown plan: exit 2.

    Example: [bold]liucun -w shop loyalty member join u1 plus_yearly --key pay-8812[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        m = loyalty.join(ws, user, plan, key=key, at=_at(at), program=program)
    _print_membership(m, fmt, "Joined")


@member_app.command("renew")
@friendly
@refusals_exit_2
def renew_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    key: KeyOpt,
    plan: PlanOpt = None,
    at: AtOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Renew USER's membership by one term from the current term's end.

    A cancelled or lapsed membership cannot be renewed (exit 2: join again).

    Example: [bold]liucun -w shop loyalty member renew u1 --key pay-9120[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        m = loyalty.renew(ws, user, plan, key=key, at=_at(at), program=program)
    _print_membership(m, fmt, "Renewed")


@member_app.command("cancel")
@friendly
@refusals_exit_2
def cancel_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Customer id.")],
    key: KeyOpt,
    plan: PlanOpt = None,
    at: AtOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Stop USER's automatic renewal: the membership stays active to its term's end.

    Example: [bold]liucun -w shop loyalty member cancel u1 --key cancel-u1[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        m = loyalty.cancel(ws, user, plan, key=key, at=_at(at), program=program)
    _print_membership(m, fmt, "Cancelled")


@member_app.command("list")
@friendly
def list_cmd(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this customer.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active, cancelled or lapsed.")
    ] = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """List the memberships (of one customer, or with one status).

    Example: [bold]liucun -w shop loyalty member list --status active --format json[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        rows = loyalty.memberships(ws, program=program, user_id=user, status=status)
    if fmt is PostingFormat.json:
        echo_json([m.to_dict() for m in rows])
        return
    if not rows:
        console.print("No memberships.")
        return
    table = Table(title=f"Memberships of {escape(program)}")
    for name in ("user", "plan", "status", "term start", "term end", "renewals", "price"):
        table.add_column(name, justify="right" if name in ("renewals", "price") else "left")
    for m in rows:
        table.add_row(
            escape(m.user_id),
            escape(m.plan_id),
            m.status,
            f"{m.term_start:%Y-%m-%d %H:%M}",
            f"{m.term_end:%Y-%m-%d %H:%M}",
            str(m.renewals),
            f"{m.price:,.2f} {m.currency}",
        )
    console.print(table)


@member_app.command("due")
@friendly
def due_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Settle the terms that ended by --as-of: auto-renew plans renew, others lapse.

    Renewals and lapses happen at the term's end. Running it again changes nothing.

    Example: [bold]liucun -w shop loyalty member due --as-of 2026-12-01[/bold]
    """
    from liucun import loyalty

    with (
        _open(ctx, workspace) as ws,
        counted_progress("Settling ended terms", "memberships", fmt) as step,
    ):
        result = loyalty.lapse_due(
            ws,
            as_of=parse_day(as_of, "--as-of"),
            program=program,
            on_progress=step,
        )
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"As of {result.as_of:%Y-%m-%d %H:%M} UTC: {len(result.renewed):,} automatic "
        f"renewal(s), {len(result.lapsed):,} lapse(s); {result.published:,} event(s) "
        "written to the warehouse.",
        highlight=False,
    )


@member_app.command("import")
@friendly
def import_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only purchases at or after this day (UTC), YYYY-MM-DD."),
    ] = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Join or renew for every membership_purchase event in the warehouse.

    Each purchase (properties.plan names the plan) joins the customer at its time, or
    renews the membership they hold; importing again changes nothing.

    Example: [bold]liucun -w shop loyalty member import[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        result = loyalty.import_purchases(ws, program=program, since=parse_day(since, "--since"))
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"{result.purchases:,} purchase(s): {result.joined:,} joined, {result.renewed:,} "
        f"renewed, {result.replayed:,} imported before, {len(result.refused):,} refused; "
        f"{result.published:,} event(s) written to the warehouse.",
        highlight=False,
    )
    for event_id, reason in result.refused[:10]:
        err_console.print(f"  {escape(event_id)}: {escape(reason)}", highlight=False)


@member_app.command("remind")
@friendly
def remind_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Record renewal reminders for terms ending within their plan's reminder_days.

    One reminder per term, as a membership_renewal_due event journeys can trigger on.
    Running it again adds nothing.

    Example: [bold]liucun -w shop loyalty member remind --as-of 2026-12-01[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        result = loyalty.renewal_reminders(ws, as_of=parse_day(as_of, "--as-of"), program=program)
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"{len(result.reminders):,} renewal reminder(s) recorded as of "
        f"{result.as_of:%Y-%m-%d %H:%M} UTC ({result.already:,} already sent).",
        highlight=False,
    )
    for e in result.reminders:
        console.print(
            f"- {escape(e.user_id)} ({escape(e.plan_id)}): term ends "
            f"{e.term_end:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


# -- referral -----------------------------------------------------------------------------


@referral_app.command("code")
@friendly
def code_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The referrer's customer id.")],
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Print USER's invite code (made on first use, the same ever after).

    Example: [bold]liucun -w shop loyalty referral code u1[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        c = loyalty.referral_code(ws, user, program=program)
    if fmt is PostingFormat.json:
        echo_json(c.to_dict())
        return
    console.print(f"{escape(c.code)}", highlight=False)


@referral_app.command("use")
@friendly
@refusals_exit_2
def use_cmd(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The invite code.")],
    referee: Annotated[str, typer.Argument(help="The referred customer's id.")],
    key: KeyOpt,
    at: AtOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Record that REFEREE used CODE (pending until their first order).

    Unknown code, one's own code, or referred before: exit 2.

    Example: [bold]liucun -w shop loyalty referral use K7QP-3XMA-V9RT-HW2N u2 --key signup-u2[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        r = loyalty.refer(ws, code, referee, key=key, at=_at(at), program=program)
    if fmt is PostingFormat.json:
        echo_json(r.to_dict())
        return
    again = " [dim](replayed: already recorded, nothing written)[/dim]" if r.replayed else ""
    console.print(
        f"Recorded: [bold]{escape(r.referee_id)}[/bold] referred by "
        f"[bold]{escape(r.referrer_id)}[/bold] ({r.status}).{again}",
        highlight=False,
    )


@referral_app.command("credit")
@friendly
def credit_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """Credit both sides of referrals whose referee placed a first order.

    Referral codes in signup/order events are picked up first; a referral of one person
    by themselves (identity merge) or of an earlier customer is refused with the reason.
    Running it again credits nothing twice.

    Example: [bold]liucun -w shop loyalty referral credit --as-of 2026-12-01[/bold]
    """
    from liucun import loyalty

    with (
        _open(ctx, workspace) as ws,
        counted_progress("Crediting referrals", "referrals", fmt) as step,
    ):
        result = loyalty.credit_referrals(
            ws,
            as_of=parse_day(as_of, "--as-of"),
            program=program,
            on_progress=step,
        )
    if fmt is PostingFormat.json:
        echo_json(result.to_dict())
        return
    console.print(
        f"{len(result.credited):,} referral(s) credited, {len(result.refused):,} refused, "
        f"{result.pending:,} still waiting for a first order; {result.picked_up:,} picked "
        f"up from events ({result.unknown_codes:,} event code(s) not ours).",
        highlight=False,
    )
    for r in result.refused:
        console.print(
            f"- refused {escape(r.referee_id)}: {escape(r.reason or '')}", highlight=False
        )


@referral_app.command("list")
@friendly
def referral_list_cmd(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, credited or refused.")
    ] = None,
    program: ProgramOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: PostingFormatOpt = PostingFormat.table,
) -> None:
    """List the referrals (with one status).

    Example: [bold]liucun -w shop loyalty referral list --status pending --format json[/bold]
    """
    from liucun import loyalty

    with _open(ctx, workspace) as ws:
        rows = loyalty.referrals(ws, program=program, status=status)
    if fmt is PostingFormat.json:
        echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        console.print("No referrals.")
        return
    table = Table(title=f"Referrals of {escape(program)}")
    for name in ("referee", "referrer", "status", "referred", "first order", "reason"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            escape(r.referee_id),
            escape(r.referrer_id),
            r.status,
            f"{r.referred_at:%Y-%m-%d %H:%M}",
            escape(r.first_order_event_id or ""),
            escape(r.reason or ""),
        )
    console.print(table)
