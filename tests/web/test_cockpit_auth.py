"""Sign-in, the session cookie, CSRF on every POST and what each role may do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from liucun.journeys import journey_status
from liucun.state import Alert, AuditEntry
from liucun.web import update_web_user
from liucun.workspace import Workspace
from web.cockpit_support import csrf_of, make_client, sign_in

#: Every page of the cockpit (GET), as a signed-in login sees it.
PAGES = (
    "/",
    "/cohorts",
    "/segments",
    "/segments?segment=Champions",
    "/at-risk",
    "/journeys",
    "/journeys/winback_risk",
    "/experiments",
    "/loyalty",
    "/alerts",
    "/tasks",
)
#: Every action (POST) and the roles that may take it.
ACTIONS: dict[str, tuple[str, ...]] = {
    "/journeys/inactive_push_coupon/approve": ("admin",),
    "/journeys/winback_risk/pause": ("admin",),
    "/alerts/1/ack": ("operator", "admin"),
    "/tasks/1/respond": ("operator", "admin"),
    "/users": ("admin",),
}


def test_sign_in_with_the_right_password_only(client: Any) -> None:
    bad = sign_in(client, "ada", "not the password")
    assert bad.status_code == 401
    assert "Wrong login name or password." in bad.text
    assert "liucun_cockpit" not in client.cookies or client.get("/cockpit/").url.path == (
        "/cockpit/login"
    )
    good = sign_in(client, "ada")
    assert good.status_code == 200 and good.url.path == "/cockpit/"
    assert "ada · admin" in good.text
    cookie = client.cookies.get("liucun_cockpit")
    assert cookie and "ada" not in cookie.split(".")[-1]  # signed, not a plain name
    client.cookies.set("liucun_cockpit", cookie[:-4] + "AAAA")  # a forged signature
    assert client.get("/cockpit/").url.path == "/cockpit/login"


def test_repeated_failures_lock_the_login_for_a_while(client: Any) -> None:
    for _ in range(5):
        assert sign_in(client, "oli", "wrong").status_code == 401
    locked = sign_in(client, "oli")  # the right password, but too many failures before
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text


@pytest.mark.parametrize("path", [*PAGES, "/users", "/customers/u000001"])
def test_every_page_redirects_to_the_sign_in_when_anonymous(client: Any, path: str) -> None:
    res = client.get(f"/cockpit{path}", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"].startswith("/cockpit/login?next=/cockpit")


def test_htmx_requests_get_a_redirect_header_instead(client: Any) -> None:
    res = client.get("/cockpit/alerts", headers={"HX-Request": "true"}, follow_redirects=False)
    assert res.status_code == 401
    assert res.headers["hx-redirect"] == "/cockpit/login?next=/cockpit/alerts"


def test_the_next_page_after_sign_in_stays_inside_the_cockpit(client: Any) -> None:
    for target, lands in (
        ("/cockpit/alerts", "/cockpit/alerts"),
        ("https://evil.example/", "/cockpit/"),
        ("//evil.example/x", "/cockpit/"),
        ("/other-app", "/cockpit/"),
    ):
        client.cookies.clear()
        page = client.get("/cockpit/login")
        res = client.post(
            "/cockpit/login",
            data={"username": "ana", "password": "correct horse battery",
                  "csrf_token": csrf_of(page.text), "next": target},
            follow_redirects=False,
        )  # fmt: skip
        assert res.status_code == 303 and res.headers["location"] == lands, target


def test_post_without_the_csrf_token_is_refused(
    as_role: Callable[[str], Any], cockpit_ws: Workspace
) -> None:
    c = as_role("ada")
    for path in ACTIONS:
        res = c.post(f"/cockpit{path}", data={"note": "x"})
        assert res.status_code == 403, path
        assert "security token" in res.text
    wrong = c.post("/cockpit/alerts/1/ack", headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403
    assert journey_status(cockpit_ws, "inactive_push_coupon").status == "draft"
    with cockpit_ws.state.read() as s:
        assert s.get(Alert, 1).status == "open"
    # the sign-in form is a POST too
    c.cookies.clear()
    c.get("/cockpit/login")
    assert c.post("/cockpit/login", data={"username": "ada", "password": "x"}).status_code == 403


def test_the_token_works_as_form_field_and_as_htmx_header(
    as_role: Callable[[str], Any], cockpit_ws: Workspace
) -> None:
    c = as_role("oli")
    token = csrf_of(c.get("/cockpit/alerts").text)
    res = c.post("/cockpit/alerts/1/ack", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert res.status_code == 200
    assert 'data-status="acknowledged"' in res.text and "oli" in res.text
    res = c.post("/cockpit/alerts/2/snooze", data={"csrf_token": token})
    assert res.status_code == 200 and res.url.path == "/cockpit/alerts"
    with cockpit_ws.state.read() as s:
        assert (s.get(Alert, 1).status, s.get(Alert, 1).acknowledged_by) == (
            "acknowledged",
            "web:oli",
        )
        assert s.get(Alert, 2).status == "snoozed"


@pytest.mark.parametrize("role", ["analyst", "operator", "admin"])
def test_each_role_may_do_what_it_should_and_no_more(
    as_role: Callable[[str], Any], cockpit_ws: Workspace, role: str
) -> None:
    name = {"admin": "ada", "analyst": "ana", "operator": "oli"}[role]
    c = as_role(name)
    for path in PAGES:
        assert c.get(f"/cockpit{path}").status_code == 200, (role, path)
    assert c.get("/cockpit/users").status_code == (200 if role == "admin" else 403)
    token = csrf_of(c.get("/cockpit/").text)
    forms = {
        "/journeys/inactive_push_coupon/approve": {"note": "ok"},
        "/journeys/winback_risk/pause": {},
        "/alerts/1/ack": {},
        "/tasks/1/respond": {},
        "/users": {"username": f"new-{name}", "password": "long enough pw", "role": "analyst"},
    }
    for path, allowed in ACTIONS.items():
        res = c.post(f"/cockpit{path}", data={**forms[path], "csrf_token": token})
        if role in allowed:
            assert res.status_code == 200, (role, path, res.text[-400:])
        else:
            assert res.status_code == 403, (role, path)
            assert "may not do this" in res.text
    approved = journey_status(cockpit_ws, "inactive_push_coupon").latest_approved
    assert approved is (role == "admin")
    assert journey_status(cockpit_ws, "winback_risk").status == (
        "paused" if role == "admin" else "active"
    )
    with cockpit_ws.state.read() as s:
        acked = s.get(Alert, 1).status == "acknowledged"
        actors = {a.actor for a in s.scalars(select(AuditEntry)) if a.actor.startswith("web:")}
    assert acked is (role != "analyst")
    assert actors == (set() if role == "analyst" else {f"web:{name}"})


def test_analyst_cannot_start_a_journey(as_role: Callable[[str], Any]) -> None:
    c = as_role("ana")
    page = c.get("/cockpit/at-risk")
    assert "Start journey" not in page.text  # no button for a reader
    res = c.post(
        "/cockpit/customers/anyone/journeys",
        data={"journey": "winback_risk", "csrf_token": csrf_of(page.text)},
    )
    assert res.status_code == 403


def test_a_disabled_login_is_signed_out_at_its_next_request(
    as_role: Callable[[str], Any], cockpit_ws: Workspace
) -> None:
    c = as_role("oli")
    assert c.get("/cockpit/alerts").url.path == "/cockpit/alerts"
    update_web_user(cockpit_ws, "oli", disabled=True)
    assert c.get("/cockpit/alerts").url.path == "/cockpit/login"


def test_sign_out_ends_the_session(as_role: Callable[[str], Any]) -> None:
    c = as_role("ana")
    token = csrf_of(c.get("/cockpit/").text)
    assert c.post("/cockpit/logout", data={"csrf_token": token}).url.path == "/cockpit/login"
    assert c.get("/cockpit/", follow_redirects=False).status_code == 303


def test_the_service_serves_the_api_and_the_cockpit_together(cockpit_ws: Workspace) -> None:
    """What ``liucun serve`` runs: the API's routes and the cockpit under /cockpit."""
    from liucun.web import COCKPIT_PATH, create_service

    app = create_service(cockpit_ws, run_loader=False)
    with make_client(app) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/users/u1").status_code == 401  # the API, with its auth
        page = c.get(f"{COCKPIT_PATH}/login")
        assert page.status_code == 200
        assert "<form" in page.text


def test_in_the_service_the_pages_take_turns_with_the_loader_on_the_warehouse(
    cockpit_ws: Workspace,
) -> None:
    """Mounted in the API, the cockpit's warehouse use goes through the service's
    access, so a loader round and a page never use the one DuckDB connection at once."""
    import threading

    from liucun.web import COCKPIT_PATH, create_service

    app = create_service(cockpit_ws, run_loader=False)
    svc = app.state.service
    (mounted,) = [r for r in app.routes if getattr(r, "path", "") == COCKPIT_PATH]
    cockpit = mounted.app.state.cockpit  # type: ignore[attr-defined]
    with cockpit.using():
        assert svc._warehouse_lock._is_owned()  # the service's lock is this thread's
    # while a loader round holds the warehouse, a page waits for it
    held, release, order = threading.Event(), threading.Event(), []

    def loader_round() -> None:
        with svc.warehouse():
            held.set()
            release.wait(5)
            order.append("loader")

    t = threading.Thread(target=loader_round)
    t.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    with cockpit.using():
        order.append("page")
    t.join(5)
    assert order == ["loader", "page"]
