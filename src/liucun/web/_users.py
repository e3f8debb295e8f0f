"""Cockpit logins: the ``web_users`` state table, scrypt password hashes and roles.

A password is stored as ``scrypt$n$r$p$salt$hash`` (salt and hash in URL-safe base64
without padding): :func:`hash_password` makes one with a fresh 16-byte salt and
:func:`verify_password` checks a password against one in constant time. The roles:

- ``analyst`` reads every page;
- ``operator`` also starts journeys for customers, acknowledges and snoozes alerts and
  works the service task queue;
- ``admin`` also approves, activates, pauses and resumes journeys and manages logins.

Every change is written to the audit log (never the password).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from liucun.core import ConfigError, Hint, InvalidInput, as_utc
from liucun.state import WebUser, current_actor, record_audit
from liucun.workspace import Workspace

#: The roles, least to most powerful.
ROLES: tuple[str, ...] = ("analyst", "operator", "admin")
#: What each permission needs: the roles that hold it.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "view": ("analyst", "operator", "admin"),
    "operate": ("operator", "admin"),
    "approve": ("admin",),
    "users": ("admin",),
}
#: The cockpit's languages.
LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
#: scrypt cost parameters of new hashes: N = 2**14, r = 8, p = 1 (16 MiB, ~50 ms).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
#: Passwords shorter than this are refused.
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
#: A hash checked when the user does not exist, so a wrong name takes as long as a
#: wrong password (made on first use).
_DUMMY: list[str] = []


@dataclass(frozen=True)
class WebUserPublic:
    """A cockpit login without its password hash."""

    username: str
    role: str
    language: str | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def can(self, permission: str) -> bool:
        """Whether this login holds ``permission`` (see :data:`PERMISSIONS`)."""
        return self.active and self.role in PERMISSIONS[permission]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` of ``password`` with a fresh random salt.

    >>> hash_password("correct horse", salt=b"0" * 16)[:33]
    'scrypt$16384$8$1$MDAwMDAwMDAwMDAw'
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison); False for a
    hash that is not in the ``scrypt$n$r$p$salt$hash`` format."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=n,
            r=r,
            p=p,
            dklen=len(expected),
            maxmem=256 * n * r * p + 2**20,
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def _public(row: WebUser) -> WebUserPublic:
    return WebUserPublic(
        username=row.username,
        role=row.role,
        language=row.language,
        created_at=as_utc(row.created_at),
        disabled_at=None if row.disabled_at is None else as_utc(row.disabled_at),
    )


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}, got {role!r}",
            hint=Hint(option="role", example="operator"),
        )
    return role


def _check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(
            f"language must be one of {', '.join(LANGUAGES)}, got {language!r}",
            hint=Hint(option="language", example="zh-CN"),
        )
    return language


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"the password is {len(password)} characters long; use at least {MIN_PASSWORD}"
        )
    return password


def create_web_user(
    ws: Workspace,
    username: str,
    password: str,
    *,
    role: str,
    language: str | None = None,
    by: str | None = None,
) -> WebUserPublic:
    """Add the cockpit login ``username`` with ``role`` (:data:`ROLES`).

    Refused (:class:`InvalidInput`) for a name that is not 1–100 letters, digits or
    ``. _ @ -``, a password shorter than :data:`MIN_PASSWORD`, an unknown role or
    language; :class:`ConfigError` when the name is taken. ``by`` is who adds it (the
    audit log's actor; default: the OS user).
    """
    if not _NAME.match(username):
        raise InvalidInput(
            f"{username!r} is not a login name; use letters, digits and . _ @ - (at most "
            "100), starting with a letter or digit, e.g. li.wei",
            hint=Hint(option="username", example="li.wei"),
        )
    _check_role(role)
    _check_language(language)
    _check_password(password)
    hashed = hash_password(password)
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        if s.scalar(select(WebUser).where(WebUser.username == username)) is not None:
            raise ConfigError(
                f"the cockpit login {username!r} exists already; choose another name or "
                f"change its password (liucun web-users password {username})"
            )
        row = WebUser(
            username=username,
            password_hash=hashed,
            role=role,
            language=language,
            created_at=now,
        )
        s.add(row)
        s.flush()
        record_audit(
            s,
            at=now,
            actor=by or current_actor(),
            action="web.user.create",
            target=username,
            details={"role": role},
        )
        return _public(row)


def check_password(ws: Workspace, username: str, password: str) -> WebUserPublic | None:
    """The login ``username`` when ``password`` is its password and it is not disabled;
    None otherwise (an unknown name costs as much time as a wrong password)."""
    with ws.state.read() as s:
        row = s.scalar(select(WebUser).where(WebUser.username == username))
    if row is None:
        if not _DUMMY:
            _DUMMY.append(hash_password(secrets.token_urlsafe(12)))
        verify_password(password, _DUMMY[0])
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None:
        return None
    return _public(row)


def get_web_user(ws: Workspace, username: str) -> WebUserPublic | None:
    """The login ``username``, or None when there is none."""
    with ws.state.read() as s:
        row = s.scalar(select(WebUser).where(WebUser.username == username))
        return None if row is None else _public(row)


def list_web_users(ws: Workspace) -> list[WebUserPublic]:
    """Every cockpit login, by name."""
    with ws.state.read() as s:
        return [_public(r) for r in s.scalars(select(WebUser).order_by(WebUser.username))]


def _require(s: object, username: str) -> WebUser:
    row = s.scalar(select(WebUser).where(WebUser.username == username))  # type: ignore[attr-defined]
    if row is None:
        raise ConfigError(
            f"there is no cockpit login {username!r}; list them with liucun web-users list"
        )
    return row  # type: ignore[no-any-return]


def update_web_user(
    ws: Workspace,
    username: str,
    *,
    role: str | None = None,
    language: str | None = None,
    password: str | None = None,
    disabled: bool | None = None,
    by: str | None = None,
) -> WebUserPublic:
    """Change the role, language, password or disabled state of ``username``.

    An admin cannot take away the last active admin login (the cockpit would have no
    one left to manage it)."""
    if role is not None:
        _check_role(role)
    _check_language(language)
    hashed = hash_password(_check_password(password)) if password is not None else None
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _require(s, username)
        demoted = (role is not None and role != "admin") or disabled is True
        if row.role == "admin" and row.disabled_at is None and demoted:
            admins = s.scalars(
                select(WebUser).where(WebUser.role == "admin", WebUser.disabled_at.is_(None))
            ).all()
            if len(admins) <= 1:
                raise ConfigError(
                    f"{username!r} is the last active admin; make another admin first"
                )
        changed: dict[str, object] = {}
        if role is not None and role != row.role:
            row.role = changed["role"] = role
        if language is not None and language != row.language:
            row.language = changed["language"] = language
        if hashed is not None:
            row.password_hash = hashed
            changed["password"] = "changed"
        if disabled is not None and disabled != (row.disabled_at is not None):
            row.disabled_at = now if disabled else None
            changed["disabled"] = disabled
        if changed:
            record_audit(
                s,
                at=now,
                actor=by or current_actor(),
                action="web.user.update",
                target=username,
                details=changed,
            )
        s.flush()
        return _public(row)
