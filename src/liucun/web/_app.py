"""``create_cockpit(ws)``: the operator cockpit as a FastAPI application.

The service mounts it at ``/cockpit`` (``app.mount("/cockpit", create_cockpit(ws))``);
every link is relative to where it is mounted. Everything it serves comes from the app
itself — htmx from ``web/static`` (vendored, pinned), Plotly.js from the installed
``plotly`` package — so it works with no network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from liucun.web import (
    _routes_auth,
    _routes_customers,
    _routes_insight,
    _routes_journeys,
    _routes_ops,
)
from liucun.web._auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    FailedSignIns,
    Forbidden,
    LoginRequired,
    check_csrf,
    session_secret,
)
from liucun.web._cockpit import CACHE_TTL_S, Cockpit, base_path, is_htmx, new_environment, render
from liucun.workspace import Workspace

STATIC = Path(__file__).with_name("static")


def create_cockpit(
    ws: Workspace,
    *,
    secret: str | None = None,
    https_only: bool = False,
    cache_ttl_s: float = CACHE_TTL_S,
    access: Callable[[], AbstractContextManager[Any]] | None = None,
) -> FastAPI:
    """The cockpit on workspace ``ws``: a FastAPI app to mount (at ``/cockpit``).

    ``secret`` signs the session cookies (default: derived from the workspace secret,
    so every process of one workspace accepts the same sessions); ``https_only`` marks
    the cookie Secure (set it behind TLS). ``cache_ttl_s`` is how long a computed page
    part (KPIs, a chart) is reused. ``access`` is the service's warehouse access when
    the cockpit is mounted in the API (:func:`liucun.web.create_service`).
    """
    app = FastAPI(
        title="liucun cockpit",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(check_csrf)],
    )
    app.state.cockpit = Cockpit(ws=ws, env=new_environment(), ttl_s=cache_ttl_s, access=access)
    app.state.failed_sign_ins = FailedSignIns()
    app.state.plotly_js = None
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret or session_secret(ws),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=https_only,
    )

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, _exc: LoginRequired) -> Response:
        base = base_path(request)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{base}/login?next={quote(here)}"
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        from liucun.web._cockpit import language
        from liucun.web._i18n import translate

        lang = language(request, getattr(request.state, "user", None))
        if exc.reason == "csrf":
            text = translate(lang, "error.csrf")
        else:
            roles = ", ".join(translate(lang, f"role.{r}") for r in exc.needs)
            text = translate(
                lang, "error.forbidden", role=translate(lang, f"role.{exc.role}"), roles=roles
            )
        if is_htmx(request):
            return HTMLResponse(f'<p class="result error">{_escape(text)}</p>', status_code=403)
        return render(request, "error.html.j2", status_code=403, message=text)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        body, etag = _plotly(app)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(
            body,
            media_type="text/javascript; charset=utf-8",
            headers={"ETag": etag, "Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        _routes_auth,
        _routes_insight,
        _routes_customers,
        _routes_journeys,
        _routes_ops,
    ):
        app.include_router(module.router)
    return app


def _plotly(app: FastAPI) -> tuple[bytes, str]:
    """Plotly.js from the installed ``plotly`` package, read once per app."""
    if app.state.plotly_js is None:
        from plotly.offline import get_plotlyjs

        body = get_plotlyjs().encode("utf-8")
        app.state.plotly_js = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return app.state.plotly_js  # type: ignore[no-any-return]


def _escape(text: str) -> str:
    import html

    return html.escape(text)
