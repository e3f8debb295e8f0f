"""What every cockpit page shares: the workspace, a lock, a short-lived cache, the
templates, and how a page is rendered."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from liucun.web._auth import csrf_token
from liucun.web._i18n import LANG_COOKIE, choose_language, translator
from liucun.web._users import WebUserPublic
from liucun.workspace import Workspace

T = TypeVar("T")

#: The pages in the navigation bar: (path, message key, permission needed to see it).
NAV: tuple[tuple[str, str, str], ...] = (
    ("/", "nav.overview", "view"),
    ("/cohorts", "nav.cohorts", "view"),
    ("/segments", "nav.segments", "view"),
    ("/at-risk", "nav.at_risk", "view"),
    ("/journeys", "nav.journeys", "view"),
    ("/experiments", "nav.experiments", "view"),
    ("/loyalty", "nav.loyalty", "view"),
    ("/alerts", "nav.alerts", "view"),
    ("/tasks", "nav.tasks", "view"),
    ("/users", "nav.users", "users"),
)
#: Seconds a computed page part (KPIs, a report section) is reused.
CACHE_TTL_S = 120.0


@dataclass
class Cockpit:
    """The state of one cockpit app (``app.state.cockpit``): nothing lives at module level.

    ``lock`` serializes the library calls of concurrent requests (the warehouse's DuckDB
    connection is shared by the process); ``cache`` keeps computed parts for
    :data:`CACHE_TTL_S` seconds and is cleared by every action.
    """

    ws: Workspace
    env: jinja2.Environment
    lock: threading.RLock = field(default_factory=threading.RLock)
    cache: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    ttl_s: float = CACHE_TTL_S
    #: The service's warehouse access (:meth:`liucun.api.Service.warehouse`) when the
    #: cockpit is mounted in it: the loader, the decider and the pages then take turns
    #: on the one DuckDB connection. Alone, the cockpit uses ``lock``.
    access: Callable[[], AbstractContextManager[Any]] | None = None

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """The workspace to this request alone for the block."""
        if self.access is None:
            with self.lock:
                yield
        else:
            with self.lock, self.access():
                yield

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` under the lock, reused for ``ttl_s`` seconds per ``key``."""
        now = time.monotonic()
        hit = self.cache.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]  # type: ignore[no-any-return]
        with self.using():
            value = compute()
        self.cache[key] = (time.monotonic(), value)
        return value

    def run(self, action: Callable[[], T]) -> T:
        """Run a write ``action`` under the lock and forget cached parts."""
        with self.using():
            try:
                return action()
            finally:
                self.cache.clear()


def new_environment() -> jinja2.Environment:
    """The cockpit's Jinja2 environment (autoescaped; undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("liucun.web", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _dt
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def _dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "—" if value is None else value.strftime(fmt)


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.{digits}%}"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def cockpit_of(request: Request) -> Cockpit:
    return request.app.state.cockpit  # type: ignore[no-any-return]


def base_path(request: Request) -> str:
    """Where the cockpit is mounted (``/cockpit`` in the service; '' alone)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def language(request: Request, user: WebUserPublic | None = None) -> str:
    return choose_language(
        request.cookies.get(LANG_COOKIE),
        user.language if user is not None else None,
        request.headers.get("accept-language"),
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message shown once on the next full page."""
    request.session.setdefault("flash", []).append([kind, text])


def render(
    request: Request,
    template: str,
    *,
    user: WebUserPublic | None = None,
    status_code: int = 200,
    page: str = "",
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with what every page needs: the login, its language and
    translator, the mount path, the CSRF token, the navigation and one-time messages."""
    cockpit = cockpit_of(request)
    user = user if user is not None else getattr(request.state, "user", None)
    lang = language(request, user)
    base = base_path(request)
    nav = [
        (base + (path if path != "/" else "/"), key, path == page)
        for path, key, permission in NAV
        if user is not None and user.can(permission)
    ]
    messages = request.session.pop("flash", []) if not template.startswith("_") else []
    body = cockpit.env.get_template(template).render(
        request=request,
        user=user,
        lang=lang,
        t=translator(lang),
        base=base,
        csrf=csrf_token(request),
        nav=nav,
        page=page,
        messages=messages,
        safe=Markup,
        **context,
    )
    return HTMLResponse(body, status_code=status_code)
