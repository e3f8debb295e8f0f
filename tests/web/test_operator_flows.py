"""The operator flows of issue 13 in headless Chromium, at a laptop's 1366 px and a
phone's 390 px, on a real uvicorn server: log in, find an at-risk customer, open the 360
page, start a journey, acknowledge an alert, and (an admin) approve and activate a
journey. Each step asserts what the page shows and the state it changed, and leaves a
screenshot in ``$LIUCUN_ARTIFACTS/operator-flows`` (default
``artifacts/screenshots/operator-flows``; ``.ci/run`` says where they are).

Chromium is Debian's (``.ci/run`` installs it with fonts-wqy-microhei for the Chinese
UI); never ``playwright install``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from liucun.journeys import get_alert, journey_status
from liucun.reports import latest_scores
from liucun.state import Alert, JourneyEnrolment
from liucun.workspace import Workspace
from web.cockpit_support import END, WIDTHS, open_page, screenshot_dir, sign_in_page

pytestmark = pytest.mark.slow


def _number(text: str) -> float:
    """``'1,234'`` → 1234.0, ``'74%'`` → 0.74."""
    clean = text.strip().replace(",", "")
    return float(clean[:-1]) / 100 if clean.endswith("%") else float(clean)


class Steps:
    """Screenshots named by step and width: ``03-customer-360-390.png``."""

    def __init__(self, page: Any, width: int) -> None:
        self.page, self.width, self.n = page, width, 0
        self.out = screenshot_dir("operator-flows")
        self.taken: list[Path] = []

    def shot(self, name: str) -> None:
        self.n += 1
        path = self.out / f"{self.n:02d}-{name}-{self.width}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        assert wide <= self.width, f"{name} at {self.width} px scrolls sideways ({wide} px)"


def _open_alerts(page: Any) -> int:
    return int(page.inner_text("[data-kpi=alerts] .value"))


@pytest.mark.parametrize("width", WIDTHS.values(), ids=list(WIDTHS))
def test_operator_flows(browser: Any, live: str, cockpit_ws: Workspace, width: int) -> None:
    problems: list[str] = []
    page = open_page(browser, width, live, problems)
    steps = Steps(page, width)
    nav = page.locator("nav.tabs")

    # 1. log in: the form, then the overview with the operator's name and role
    page.goto(f"{live}/")
    assert "/login" in page.url
    steps.shot("login")
    sign_in_page(page, live, "oli")
    assert page.inner_text("[data-testid=signed-in]") == "oli · operator"
    open_before = _open_alerts(page)
    assert open_before == 3  # the shop's three open alerts, one per level
    steps.shot("overview")

    # 2. find an at-risk customer: listed by value at risk, every one at risk ≥ 50 %
    nav.get_by_role("link", name="At risk").click()
    page.wait_for_url(f"{live}/at-risk")
    rows = page.locator("[data-testid=at-risk] tbody tr")
    assert rows.count() >= 10
    risks = [_number(t) for t in rows.locator("td:nth-child(2)").all_inner_texts()]
    at_risk = [_number(t) for t in rows.locator("td:nth-child(4)").all_inner_texts()]
    assert min(risks) >= 0.5
    assert at_risk == sorted(at_risk, reverse=True)
    first = rows.first.locator("[data-testid=at-risk-customer]")
    customer = first.inner_text()
    scores, _card = latest_scores(cockpit_ws, END)
    assert scores is not None
    stored = float(scores.set_index("user_id").loc[customer, "churn_risk"])
    assert round(stored * 100) == round(risks[0] * 100)
    steps.shot("at-risk")

    # 3. open the 360 page: the same customer and risk, with the model's reasons
    first.click()
    page.wait_for_url(re.compile(r".*/customers/.+"))
    assert customer in page.inner_text("[data-testid=customer-title]")
    assert _number(page.inner_text("[data-testid=churn-risk]")) == pytest.approx(risks[0])
    assert page.locator("[data-testid=reasons] li").count() >= 1
    steps.shot("customer-360")

    # 4. start a journey: the answer names the arm, the enrolment is stored, and the
    #    customer's journeys list shows it after a reload
    form = page.locator("[data-testid=start-form]")
    form.locator("select").select_option("winback_risk")
    form.locator("button").click()
    text = page.locator("#start-result [data-testid=result]").inner_text()
    assert f"{customer} entered winback_risk" in text, text
    with cockpit_ws.state.read() as s:
        arms = s.scalars(
            select(JourneyEnrolment.arm).where(
                JourneyEnrolment.journey == "winback_risk", JourneyEnrolment.user_id == customer
            )
        ).all()
    assert len(arms) == 1 and arms[0] in text
    page.reload()
    listed = page.locator("#customer-journeys tbody tr", has_text="winback_risk")
    assert listed.count() == 1 and arms[0] in listed.inner_text()
    steps.shot("journey-started")

    # 5. acknowledge the level-3 alert: the row changes in place, the alert is stored
    #    acknowledged by this login, and the overview counts one open alert less
    nav.get_by_role("link", name="Alerts").click()
    page.wait_for_url(f"{live}/alerts")
    with cockpit_ws.state.read() as s:
        level3 = s.scalar(select(Alert.id).where(Alert.level == 3))
    row = page.locator(f"tr[data-alert='{level3}']")
    assert row.get_attribute("data-status") == "open"
    steps.shot("alerts")
    row.locator("[data-testid=ack]").click()
    page.wait_for_selector(f"tr[data-alert='{level3}'][data-status='acknowledged']")
    assert "acknowledged by web:oli" in row.inner_text()
    assert row.locator("[data-testid=ack]").count() == 0
    stored_alert = get_alert(cockpit_ws, level3)
    assert (stored_alert.status, stored_alert.acknowledged_by) == ("acknowledged", "web:oli")
    steps.shot("alert-acknowledged")
    page.goto(f"{live}/")
    assert _open_alerts(page) == open_before - 1

    # 6. approve a journey: an operator has no approve button; an admin approves the
    #    draft with a note, then activates it
    page.goto(f"{live}/journeys/inactive_push_coupon")
    assert page.locator("[data-testid=approve]").count() == 0
    assert page.inner_text("[data-testid=journey-status]").strip() != ""
    page.get_by_role("button", name="Log out").click()
    sign_in_page(page, live, "ada")
    page.goto(f"{live}/journeys/inactive_push_coupon")
    assert journey_status(cockpit_ws, "inactive_push_coupon").latest_approved is False
    steps.shot("journey-draft")
    page.fill("input[name=note]", "reviewed in the cockpit")
    page.click("[data-testid=approve]")
    page.wait_for_selector("#journey-actions [data-testid=activate]")
    assert "is approved by ada" in page.inner_text("#journey-actions [data-testid=result]")
    assert journey_status(cockpit_ws, "inactive_push_coupon").latest_approved is True
    steps.shot("journey-approved")
    page.click("[data-testid=activate]")
    page.wait_for_selector("#journey-actions[data-status=active]")
    status = journey_status(cockpit_ws, "inactive_push_coupon")
    assert (status.status, status.latest_approved, status.active_version) == ("active", True, 1)
    steps.shot("journey-active")

    assert problems == []
    assert len(steps.taken) == 10 and all(p.stat().st_size > 10_000 for p in steps.taken)
