"""The cockpit in headless Chromium on a real uvicorn server (127.0.0.1, a free port):
the operator flows of issue 13 — sign in, find an at-risk customer, open the 360 page,
start a journey, approve a journey, acknowledge an alert — and every page at a laptop's
1366 px and a phone's 390 px, with no request leaving the server and no page that
scrolls sideways.

Chromium is Debian's (``.ci/run`` installs it); never ``playwright install``. Screenshots
go to ``$LIUCUN_SCREENSHOTS`` (default: the test's tmp dir) so CI can keep them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi import FastAPI
from playwright import sync_api
from sqlalchemy import select

from liucun.journeys import journey_status
from liucun.state import Alert, JourneyEnrolment
from liucun.web import create_cockpit
from liucun.workspace import Workspace
from web.cockpit_support import PASSWORD, serving

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDTHS = {"laptop": 1366, "phone": 390}
#: Every page, by a short name for its screenshot.
PAGES = {
    "overview": "/",
    "cohorts": "/cohorts",
    "segments": "/segments?segment=Champions",
    "at-risk": "/at-risk",
    "journeys": "/journeys",
    "journey": "/journeys/winback",
    "experiments": "/experiments",
    "loyalty": "/loyalty",
    "alerts": "/alerts",
    "tasks": "/tasks",
    "users": "/users",
}

pytestmark = pytest.mark.slow


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("LIUCUN_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def live(cockpit_ws: Workspace) -> Iterator[str]:
    """The cockpit mounted at /cockpit of a real server; yields the cockpit's URL."""
    parent = FastAPI()
    parent.mount("/cockpit", create_cockpit(cockpit_ws))
    with serving(parent) as url:
        yield url + "/cockpit"


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Any, width: int, live: str, problems: list[str]) -> Any:
    """A page of a fresh context that records errors and any request off the server."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    page = context.new_page()
    host = urlparse(live).netloc

    def only_the_server(route: Any) -> None:
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            problems.append(f"request off the server: {route.request.url}")
            route.abort()

    page.route("**/*", only_the_server)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    return page


def _sign_in(page: Any, live: str, name: str) -> None:
    page.goto(f"{live}/")
    assert "/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click(".login button[type=submit]")
    page.wait_for_url(f"{live}/")


def test_operator_and_admin_flows(
    browser: Any, live: str, cockpit_ws: Workspace, shots: Path
) -> None:
    problems: list[str] = []
    page = _page(browser, WIDTHS["laptop"], live, problems)
    # the operator: sign in, find a customer at risk, open the 360 page, start a journey
    _sign_in(page, live, "oli")
    page.screenshot(path=str(shots / "flow-1-overview.png"), full_page=True)
    page.click("nav.tabs >> text=At risk")
    first = page.locator("[data-testid=at-risk-customer]").first
    customer = first.inner_text()
    page.screenshot(path=str(shots / "flow-2-at-risk.png"), full_page=False)
    first.click()
    page.wait_for_selector("[data-testid=customer-title]")
    assert customer in page.inner_text("[data-testid=customer-title]")
    page.select_option("[data-testid=start-form] select", "winback_risk")
    page.click("[data-testid=start-form] button")
    result = page.wait_for_selector("#start-result [data-testid=result]")
    text = result.inner_text()
    page.screenshot(path=str(shots / "flow-3-customer-360.png"), full_page=True)
    assert f"{customer} entered winback_risk" in text, text
    with cockpit_ws.state.read() as s:
        arms = s.scalars(
            select(JourneyEnrolment.arm).where(
                JourneyEnrolment.journey == "winback_risk", JourneyEnrolment.user_id == customer
            )
        ).all()
    assert len(arms) == 1 and arms[0] in text
    # … acknowledge the level-3 alert (htmx swaps the row in place)
    page.click("nav.tabs >> text=Alerts")
    row = page.locator("tr[data-alert='3']")
    row.locator("[data-testid=ack]").click()
    page.wait_for_selector("tr[data-alert='3'][data-status='acknowledged']")
    page.screenshot(path=str(shots / "flow-4-alert-acknowledged.png"), full_page=True)
    assert "acknowledged by web:oli" in page.inner_text("tr[data-alert='3']")
    # … and an operator has no approve button
    page.goto(f"{live}/journeys/inactive_push_coupon")
    assert page.locator("[data-testid=approve]").count() == 0
    # the admin approves the draft journey, then activates it
    page.click("text=Log out")
    _sign_in(page, live, "ada")
    page.goto(f"{live}/journeys/inactive_push_coupon")
    page.fill("input[name=note]", "reviewed in the cockpit")
    page.click("[data-testid=approve]")
    page.wait_for_selector("#journey-actions [data-testid=activate]")
    assert "is approved by ada" in page.inner_text("#journey-actions [data-testid=result]")
    page.click("[data-testid=activate]")
    page.wait_for_selector("#journey-actions[data-status=active]")
    page.screenshot(path=str(shots / "flow-5-journey-approved.png"), full_page=True)
    status = journey_status(cockpit_ws, "inactive_push_coupon")
    assert (status.status, status.latest_approved, status.active_version) == ("active", True, 1)
    with cockpit_ws.state.read() as s:
        alert = s.get(Alert, 3)
        assert (alert.status, alert.acknowledged_by) == ("acknowledged", "web:oli")
    assert problems == []


def test_every_page_reads_at_laptop_and_phone_width(browser: Any, live: str, shots: Path) -> None:
    """Each page: drawn without errors, charts drawn inside their cards, the page never
    wider than the window (wide tables scroll inside their card)."""
    problems: list[str] = []
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for label, width in WIDTHS.items():
        page = _page(browser, width, live, problems)
        _sign_in(page, live, "ada")
        for name, path in PAGES.items():
            page.goto(f"{live}{path}")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.js-plotly-plot')]"
                ".every(el => el._fullLayout)"
            )
            found[(label, name)] = page.evaluate(
                """() => ({
                    page: document.documentElement.scrollWidth,
                    window: window.innerWidth,
                    charts: [...document.querySelectorAll('figure.figure')].map(f => {
                        const p = f.querySelector('.js-plotly-plot');
                        const fr = f.getBoundingClientRect();
                        const pr = p ? p.getBoundingClientRect() : fr;
                        return {inside: pr.left >= fr.left - 1 && pr.right <= fr.right + 1,
                                width: Math.round(pr.width)};
                    }),
                })"""
            )
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        page.context.close()
    assert problems == []
    for (label, name), got in found.items():
        assert got["page"] <= got["window"], f"{name} at {label}: the page scrolls sideways"
        for chart in got["charts"]:
            assert chart["inside"], f"{name} at {label}: a chart overflows its card"
            assert chart["width"] >= (300 if label == "phone" else 400), (name, label, chart)
    assert sum(len(found[("laptop", n)]["charts"]) for n in PAGES) >= 10
