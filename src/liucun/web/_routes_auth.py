"""Sign-in, sign-out, the language switch and the logins page (admins)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liucun.core import LiucunError
from liucun.web._auth import UserAdmin, sign_in, sign_out, signed_in
from liucun.web._cockpit import base_path, cockpit_of, flash, language, render
from liucun.web._i18n import LANG_COOKIE, LANGS, translate
from liucun.web._users import (
    LANGUAGES,
    ROLES,
    check_password,
    create_web_user,
    list_web_users,
    update_web_user,
)

router = APIRouter()


def _safe_next(request: Request, target: str | None) -> str:
    """``target`` when it is a path inside the cockpit, else the overview (no open
    redirect to another site)."""
    base = base_path(request)
    inside = not base or target == base or (target or "").startswith(base + "/")
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target if inside else base + "/"
    return base + "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if signed_in(request) is not None:
        return RedirectResponse(_safe_next(request, next), status_code=303)
    return render(request, "login.html.j2", page="login", next=next or "", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    failures = request.app.state.failed_sign_ins
    lang = language(request)
    wait = failures.blocked_for(username)
    if wait > 0:
        error = translate(lang, "login.throttled", minutes=math.ceil(wait / 60))
        return render(request, "login.html.j2", status_code=429, next=next, error=error)
    user = check_password(cockpit_of(request).ws, username, password)
    if user is None:
        failures.add(username)
        error = translate(lang, "login.failed")
        return render(request, "login.html.j2", status_code=401, next=next, error=error)
    failures.clear(username)
    sign_in(request, user)
    return RedirectResponse(_safe_next(request, next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse(base_path(request) + "/login", status_code=303)


@router.post("/lang")
def set_language(
    request: Request,
    lang: Annotated[str, Form()],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    chosen = lang if lang in LANGS else "en"
    user = signed_in(request)
    if user is not None and user.language != chosen:
        cockpit = cockpit_of(request)
        cockpit.run(lambda: update_web_user(cockpit.ws, user.username, language=chosen,
                                            by=f"web:{user.username}"))  # fmt: skip
    response = RedirectResponse(_safe_next(request, next), status_code=303)
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: UserAdmin) -> Response:
    cockpit = cockpit_of(request)
    logins = list_web_users(cockpit.ws)
    return render(
        request, "users.html.j2", page="/users", logins=logins, roles=ROLES, languages=LANGUAGES
    )


@router.post("/users")
def add_user(
    request: Request,
    user: UserAdmin,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form()],
    user_language: Annotated[str, Form(alias="language")] = "",
) -> Response:
    cockpit = cockpit_of(request)
    lang = language(request, user)
    try:
        made = cockpit.run(
            lambda: create_web_user(
                cockpit.ws,
                username,
                password,
                role=role,
                language=user_language or None,
                by=f"web:{user.username}",
            )
        )
    except LiucunError as exc:
        flash(request, str(exc), "error")
    else:
        flash(
            request,
            translate(
                lang, "users.added", user=made.username, role=translate(lang, f"role.{role}")
            ),
        )
    return RedirectResponse(base_path(request) + "/users", status_code=303)


@router.post("/users/{username}/disabled")
def set_disabled(
    request: Request,
    username: str,
    user: UserAdmin,
    disabled: Annotated[bool, Form()],
) -> Response:
    cockpit = cockpit_of(request)
    try:
        cockpit.run(
            lambda: update_web_user(
                cockpit.ws, username, disabled=disabled, by=f"web:{user.username}"
            )
        )
    except LiucunError as exc:
        flash(request, str(exc), "error")
    return RedirectResponse(base_path(request) + "/users", status_code=303)
