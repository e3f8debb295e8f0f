"""Sessions, CSRF and roles of the cockpit.

The session is a signed cookie (Starlette's ``SessionMiddleware``, itsdangerous under
the hood) whose key is derived from the workspace secret: it carries the login name and
a CSRF token, nothing else. Every request re-reads the login from ``web_users``, so a
disabled login or a changed role takes effect at once. Every POST must carry the
session's CSRF token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header
(htmx sends it from ``hx-headers`` on ``<body>``); otherwise 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from liucun.web._users import PERMISSIONS, WebUserPublic, get_web_user
from liucun.workspace import Workspace

#: The session cookie's name.
SESSION_COOKIE = "liucun_cockpit"
#: How long a session lasts without a new sign-in (seconds).
SESSION_MAX_AGE = 12 * 3600
#: The form field and the header that carry the CSRF token.
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
#: Failed sign-ins of one login name within FAILURE_WINDOW_S before it is refused a while.
MAX_FAILURES, FAILURE_WINDOW_S = 5, 300.0
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(Exception):
    """No signed-in login: pages redirect to the sign-in form."""


class Forbidden(Exception):
    """The login's role lacks a permission, or the CSRF token is missing or wrong."""

    def __init__(self, reason: str, *, role: str | None = None, needs: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason, self.role, self.needs = reason, role, needs


def session_secret(ws: Workspace) -> str:
    """The session cookie's signing key: an HMAC of a fixed label under the workspace
    secret (a new workspace secret signs every session out)."""
    return hmac.new(ws.hash_key, b"liucun.web.session.v1", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) an unsafe request without the session's CSRF token."""
    if request.method not in _UNSAFE:
        return
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the route reads it again
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("csrf")


def sign_in(request: Request, user: WebUserPublic) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: nothing carries over)."""
    request.session.clear()
    request.session["user"] = user.username
    request.session["at"] = int(time.time())
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def signed_in(request: Request) -> WebUserPublic | None:
    """The active login of this session, or None."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    ws: Workspace = request.app.state.cockpit.ws
    user = get_web_user(ws, name)
    if user is None or not user.active:
        request.session.clear()
        return None
    return user


def require(permission: str) -> Callable[[Request], WebUserPublic]:
    """A dependency: the signed-in login holding ``permission``; else LoginRequired or
    Forbidden."""
    needs = PERMISSIONS[permission]

    def dependency(request: Request) -> WebUserPublic:
        user = signed_in(request)
        if user is None:
            raise LoginRequired()
        if not user.can(permission):
            raise Forbidden("role", role=user.role, needs=needs)
        request.state.user = user
        return user

    dependency.__name__ = f"require_{permission}"
    return dependency


Viewer = Annotated[WebUserPublic, Depends(require("view"))]
Operator = Annotated[WebUserPublic, Depends(require("operate"))]
Approver = Annotated[WebUserPublic, Depends(require("approve"))]
UserAdmin = Annotated[WebUserPublic, Depends(require("users"))]


class FailedSignIns:
    """Recent failed sign-ins per login name, in memory (per cockpit process)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, name: str, now: float) -> deque[float]:
        q = self._seen[name]
        while q and now - q[0] > FAILURE_WINDOW_S:
            q.popleft()
        return q

    def blocked_for(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        now = time.monotonic()
        q = self._recent(name, now)
        return FAILURE_WINDOW_S - (now - q[0]) if len(q) >= MAX_FAILURES else 0.0

    def add(self, name: str) -> None:
        now = time.monotonic()
        self._recent(name, now).append(now)

    def clear(self, name: str) -> None:
        self._seen.pop(name, None)
