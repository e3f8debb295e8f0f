"""Every page of the cockpit in headless Chromium on a real uvicorn server (127.0.0.1, a
free port) at a laptop's 1366 px and a phone's 390 px: drawn with no request leaving the
server, charts inside their cards, no page that scrolls sideways. The operator flows are
in test_operator_flows.py.

Chromium is Debian's (``.ci/run`` installs it); never ``playwright install``. Screenshots
go to ``$LIUCUN_ARTIFACTS/pages`` (default ``artifacts/screenshots/pages``) for CI to keep.
"""

from __future__ import annotations

from typing import Any

import pytest

from web.cockpit_support import WIDTHS, open_page, screenshot_dir, sign_in_page

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


def test_every_page_reads_at_laptop_and_phone_width(browser: Any, live: str) -> None:
    """Each page: drawn without errors, charts drawn inside their cards, the page never
    wider than the window (wide tables scroll inside their card)."""
    shots = screenshot_dir("pages")
    problems: list[str] = []
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for label, width in WIDTHS.items():
        page = open_page(browser, width, live, problems)
        sign_in_page(page, live, "ada")
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
