"""The report opens in headless Chromium with no network and every section draws.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it); Playwright
drives it. Never ``playwright install``: it downloads a browser, which fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright import sync_api

from liucun.reports import build_report
from liucun.workspace import open_workspace

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SECTIONS = ("cohorts", "curves", "lifecycle", "rfm", "stages", "funnel", "ltv_cac", "regions")

pytestmark = pytest.mark.slow


def test_report_renders_offline_in_chromium(
    shop_workspace: Path, tmp_path: Path, chromium: str
) -> None:
    out = tmp_path / "report.html"
    with open_workspace(shop_workspace) as ws:
        build_report(ws, out)
    requested: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
            page = context.new_page()

            def only_the_file(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if url.startswith("file://"):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    requested.append(url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_the_file)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(out.as_uri())
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 8")
            drawn = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('section.report')]
                    .map(s => [s.id, {
                        plots: s.querySelectorAll('.js-plotly-plot .main-svg').length,
                        marks: s.querySelectorAll(
                            '.js-plotly-plot .point, .js-plotly-plot .bars path,'
                            + ' .js-plotly-plot .heatmaplayer image, .js-plotly-plot .trace'
                            + ' path, .js-plotly-plot .slice, .js-plotly-plot .sankey-link'
                        ).length,
                        width: Math.round(s.querySelector('.js-plotly-plot')
                            ?.getBoundingClientRect().width ?? 0),
                    }]))"""
            )
            kpis = page.locator("#kpis .kpi .value").all_inner_texts()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [], errors
    assert requested == [], f"the report tried to fetch {requested}"
    for key in SECTIONS:
        assert drawn[key]["plots"] >= 1, f"{key}: no chart drawn"
        assert drawn[key]["marks"] > 0, f"{key}: the chart has no data marks"
        assert drawn[key]["width"] > 300, f"{key}: the chart did not take its width"
    assert len(kpis) >= 8 and all(k.strip() for k in kpis)
