"""``liucun web-users add|list|role|password|disable|enable``: the cockpit's logins."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly

web_users_app = typer.Typer(
    help="Logins of the browser cockpit (served at /cockpit by liucun serve).\n\n"
    "Example: [bold]liucun -w shop web-users add li.wei --role operator[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(web_users_app, name="web-users")


class Role(StrEnum):
    """A cockpit role."""

    analyst = "analyst"
    operator = "operator"
    admin = "admin"


class Language(StrEnum):
    """A cockpit language."""

    en = "en"
    zh_CN = "zh-CN"


NameArg = Annotated[str, typer.Argument(help="The login name, e.g. li.wei.")]
StdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts).",
    ),
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@web_users_app.command("add")
@friendly
def add_cmd(
    ctx: typer.Context,
    name: NameArg,
    role: Annotated[
        Role,
        typer.Option(
            "--role", help="analyst reads; operator acts; admin approves and manages logins."
        ),
    ],
    language: Annotated[
        Language | None, typer.Option("--language", help="The login's cockpit language.")
    ] = None,
    password_stdin: StdinOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add a cockpit login; the password is asked for twice (or read from stdin).

    Analysts read every page; operators also start journeys, acknowledge alerts and
    work the task queue; admins also approve and activate journeys and manage logins.

    Example: [bold]liucun -w shop web-users add li.wei --role operator[/bold], or in a
    script: [bold]echo "$PW" | liucun -w shop web-users add ops --role operator
    --password-stdin[/bold]
    """
    from liucun.web import create_web_user

    password = _password(password_stdin)
    with _open(ctx, workspace) as ws:
        user = create_web_user(
            ws, name, password, role=role.value, language=language.value if language else None
        )
    console.print(
        f"Added cockpit login [bold]{user.username}[/bold] ({user.role}); sign in at "
        "/cockpit/login of liucun serve."
    )


@web_users_app.command("list")
@friendly
def list_cmd(ctx: typer.Context, workspace: WorkspaceOpt = None) -> None:
    """List the cockpit logins with their role, language and state.

    Example: [bold]liucun -w shop web-users list[/bold]
    """
    from liucun.web import list_web_users

    with _open(ctx, workspace) as ws:
        users = list_web_users(ws)
    if not users:
        console.print("No cockpit logins yet: liucun web-users add NAME --role admin")
        return
    table = Table(title="Cockpit logins")
    for column in ("login", "role", "language", "added", "state"):
        table.add_column(column)
    for u in users:
        table.add_row(
            u.username,
            u.role,
            u.language or "—",
            f"{u.created_at:%Y-%m-%d %H:%M}",
            "active" if u.active else f"disabled {u.disabled_at:%Y-%m-%d}",
        )
    console.print(table)


@web_users_app.command("role")
@friendly
def role_cmd(
    ctx: typer.Context,
    name: NameArg,
    role: Annotated[Role, typer.Argument(help="The new role.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Change a login's role (the last active admin keeps theirs).

    Example: [bold]liucun -w shop web-users role li.wei admin[/bold]
    """
    from liucun.web import update_web_user

    with _open(ctx, workspace) as ws:
        user = update_web_user(ws, name, role=role.value)
    console.print(f"{user.username} is now {user.role}.")


@web_users_app.command("password")
@friendly
def password_cmd(
    ctx: typer.Context,
    name: NameArg,
    password_stdin: StdinOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Set a login's password (asked for twice, or read from stdin).

    Example: [bold]liucun -w shop web-users password li.wei[/bold]
    """
    from liucun.web import update_web_user

    password = _password(password_stdin)
    with _open(ctx, workspace) as ws:
        user = update_web_user(ws, name, password=password)
    console.print(f"The password of {user.username} is changed.")


def _set_disabled(ctx: typer.Context, name: str, disabled: bool, workspace: object) -> None:
    from liucun.web import update_web_user

    with _open(ctx, workspace) as ws:  # type: ignore[arg-type]
        user = update_web_user(ws, name, disabled=disabled)
    console.print(f"{user.username} is {'disabled' if disabled else 'active'}.")


@web_users_app.command("disable")
@friendly
def disable_cmd(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Disable a login: its sessions end at their next request.

    Example: [bold]liucun -w shop web-users disable li.wei[/bold]
    """
    _set_disabled(ctx, name, True, workspace)


@web_users_app.command("enable")
@friendly
def enable_cmd(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Enable a disabled login again.

    Example: [bold]liucun -w shop web-users enable li.wei[/bold]
    """
    _set_disabled(ctx, name, False, workspace)
