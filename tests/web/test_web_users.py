"""Cockpit logins: scrypt hashes in the documented format, checks, roles, the CLI."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ConfigError, InvalidInput
from liucun.state import AuditEntry, WebUser
from liucun.web import (
    check_password,
    create_web_user,
    hash_password,
    list_web_users,
    update_web_user,
    verify_password,
)
from liucun.workspace import Workspace


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_hash_is_scrypt_n_r_p_salt_hash_and_matches_hashlib() -> None:
    stored = hash_password("correct horse", salt=b"s" * 16)
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert _unb64(salt) == b"s" * 16
    expected = hashlib.scrypt(b"correct horse", salt=b"s" * 16, n=16384, r=8, p=1, dklen=32)
    assert _unb64(digest) == expected
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert not verify_password("correct horse", "md5$abc")  # not our format: never matches
    # a fresh salt each time: the same password never hashes the same twice
    assert hash_password("correct horse") != hash_password("correct horse")


def test_create_and_check_password(workspace: Workspace) -> None:
    made = create_web_user(workspace, "li.wei", "long enough", role="operator", by="test")
    assert made.role == "operator" and made.active
    assert check_password(workspace, "li.wei", "long enough") == made
    assert check_password(workspace, "li.wei", "wrong one!") is None
    assert check_password(workspace, "nobody", "long enough") is None
    with workspace.state.read() as s:
        row = s.scalar(select(WebUser).where(WebUser.username == "li.wei"))
        assert row is not None and row.password_hash.startswith("scrypt$16384$8$1$")
        assert "long enough" not in row.password_hash
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "web.user.create")).all()
    assert [(a.actor, a.target) for a in audit] == [("test", "li.wei")]
    assert "long enough" not in (audit[0].details or "")


def test_bad_logins_are_refused_with_a_sentence(workspace: Workspace) -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        create_web_user(workspace, "ok", "short", role="admin")
    with pytest.raises(InvalidInput, match="role must be one of analyst, operator, admin"):
        create_web_user(workspace, "ok", "long enough", role="root")
    with pytest.raises(InvalidInput, match="is not a login name"):
        create_web_user(workspace, "bad name", "long enough", role="admin")
    create_web_user(workspace, "ok", "long enough", role="admin")
    with pytest.raises(ConfigError, match="exists already"):
        create_web_user(workspace, "ok", "another one", role="analyst")


def test_disabled_login_cannot_sign_in_and_last_admin_stays(workspace: Workspace) -> None:
    create_web_user(workspace, "boss", "long enough", role="admin")
    create_web_user(workspace, "ops", "long enough", role="operator")
    with pytest.raises(ConfigError, match="last active admin"):
        update_web_user(workspace, "boss", role="analyst")
    with pytest.raises(ConfigError, match="last active admin"):
        update_web_user(workspace, "boss", disabled=True)
    update_web_user(workspace, "ops", disabled=True)
    assert check_password(workspace, "ops", "long enough") is None
    update_web_user(workspace, "ops", disabled=False, password="a new password")
    assert check_password(workspace, "ops", "long enough") is None
    assert check_password(workspace, "ops", "a new password") is not None


def test_cli_adds_a_login_from_stdin_and_lists_it(workspace: Workspace) -> None:
    runner = CliRunner()
    ws = str(workspace.path)
    res = runner.invoke(
        app,
        ["-w", ws, "web-users", "add", "mei", "--role", "analyst", "--language", "zh-CN",
         "--password-stdin"],
        input="from the pipe\n",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Added cockpit login mei (analyst)" in res.output
    assert check_password(workspace, "mei", "from the pipe") is not None
    assert [(u.username, u.role, u.language) for u in list_web_users(workspace)] == [
        ("mei", "analyst", "zh-CN")
    ]
    listed = runner.invoke(app, ["-w", ws, "web-users", "list"])
    assert listed.exit_code == 0 and "mei" in listed.output and "analyst" in listed.output
    again = runner.invoke(
        app, ["-w", ws, "web-users", "add", "mei", "--role", "admin", "--password-stdin"],
        input="whatever long\n",
    )  # fmt: skip
    assert again.exit_code == 1 and "exists already" in again.output
    bad_role = runner.invoke(app, ["-w", ws, "web-users", "add", "x", "--role", "root"])
    assert bad_role.exit_code == 2  # Typer refuses the choice before asking for a password


def test_cli_prompts_twice_for_the_password(workspace: Workspace) -> None:
    res = CliRunner().invoke(
        app,
        ["-w", str(workspace.path), "web-users", "add", "kai", "--role", "operator"],
        input="typed secret\ntyped secret\n",
    )
    assert res.exit_code == 0, res.output
    assert check_password(workspace, "kai", "typed secret") is not None
    help_text = CliRunner().invoke(app, ["web-users", "add", "--help"]).output
    assert "Example" in help_text
