"""The report in headless Chromium: it opens offline, every section draws, and every chart
reads right at 1280, 1440 and 1920 pixels and on a 390-pixel phone (issue 10), the
Loyalty section's charts included (issue 11).

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it); Playwright
drives it. Never ``playwright install``: it downloads a browser, which fails here.
Set ``LIUCUN_SCREENSHOT_DIR`` to keep the screenshots at 1440 and 390 pixels.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from playwright import sync_api
from typer.testing import CliRunner

from journeys.world_support import SHOP_END, buyers, enrol
from liucun.cli import app
from liucun.reports import build_report
from liucun.simulate import campaign_exposures, simulate_shop
from liucun.workspace import open_workspace
from loyalty_shop import shop_loyalty

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SECTIONS = ("cohorts", "curves", "lifecycle", "rfm", "stages", "funnel", "ltv_cac", "regions")
AUDIT = (Path(__file__).with_name("chart_audit.js")).read_text(encoding="utf-8")
#: Desktop widths the report must read right at, and the phone.
WIDTHS = (1280, 1440, 1920, 390)
SCREENSHOT_WIDTHS = (1440, 390)

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
        finally:
            browser.close()
    assert errors == [], errors
    assert requested == [], f"the report tried to fetch {requested}"
    for key in SECTIONS:
        assert drawn[key]["plots"] >= 1, f"{key}: no chart drawn"
        assert drawn[key]["marks"] > 0, f"{key}: the chart has no data marks"
        assert drawn[key]["width"] > 300, f"{key}: the chart did not take its width"
    assert len(kpis) >= 8 and all(k.strip() for k in kpis)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with every section and chart: a simulated shop with its logged campaign,
    trained and scored churn/value models (risk, calibration, CLV deciles, drivers), an
    uplift model (Qini curve) and a loyalty program with a ledger, coupons, tiers and
    paid members (tests/loyalty_shop.py), and a journey's enrolments (tests/journeys/
    world_support.py), built as a user would with the CLI."""
    root = tmp_path_factory.mktemp("full")
    sim = simulate_shop(root / "sim", preset="b2c", users=4_000, days=365, seed=11)
    ws = root / "ws"
    runner = CliRunner()
    experiment = campaign_exposures(pq.read_table(sim.truth_path))["experiment"][0]
    for args in (
        ["init", str(ws)],
        ["-w", str(ws), "ingest", "simulated", str(root / "sim")],
        ["-w", str(ws), "train", "--threads", "1"],
        ["-w", str(ws), "score", "--top", "0"],
        ["-w", str(ws), "uplift", "train", experiment.as_py()],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, f"{args}: {res.output}"
    shop_loyalty(ws)
    with open_workspace(ws) as opened:  # a journey entered 45 days before the data end
        enrol(opened, "winback", buyers(opened), at=SHOP_END - timedelta(days=45))
    res = runner.invoke(app, ["-w", str(ws), "report", "--out", str(root / "report.html")])
    assert res.exit_code == 0, res.output
    return root / "report.html"


def test_every_chart_reads_right_at_desktop_and_phone_widths(
    full_report: Path, tmp_path: Path, chromium: str
) -> None:
    """For every chart of the report, at each width: the chart and its plot area lie
    inside its card, no label is cut, every category of its data has a visible label and
    every value a visible mark (chart_audit.js), and the page never scrolls sideways."""
    shots = Path(os.environ.get("LIUCUN_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    found: dict[int, dict] = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(full_report.as_uri())
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.js-plotly-plot')]"
                    ".every(el => el._fullLayout)"
                )
                page.wait_for_timeout(300)  # the resize observer's redraws
                found[width] = page.evaluate(AUDIT)  # before a screenshot resizes the page
                if width in SCREENSHOT_WIDTHS:
                    page.screenshot(path=str(shots / f"report-{width}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    for width, result in found.items():
        charts = result["charts"]
        sections = {key.split("-")[1] for key in charts}
        assert {*SECTIONS, "risk", "experiments", "loyalty", "journeys"} <= sections, (
            width,
            sorted(sections),
        )
        assert sum(k.startswith("fig-risk-") for k in charts) >= 5  # risk, CLV, calibration, …
        assert sum(k.startswith("fig-experiments-") for k in charts) >= 3  # lift, path, Qini
        # tiers, tier-change matrix, points per month, coupon rate, member repeat
        assert sum(k.startswith("fig-loyalty-") for k in charts) == 5
        assert sum(k.startswith("fig-journeys-") for k in charts) == 1  # winback's nodes
        assert result["page"] <= result["window"], f"{width}px: the page scrolls sideways"
        problems = {k: c["problems"] for k, c in charts.items() if c["problems"]}
        assert problems == {}, f"at {width}px: {problems}"
        for key, chart in charts.items():
            assert chart["marks"] > 0, f"{width}px {key}: nothing drawn"
        # the stage chart has one labelled bar per stage: potential … churned
        assert charts["fig-stages-0"]["categories"] == 6
        # one labelled bar per tier of the example program: 基础, 进阶, 尊享
        assert charts["fig-loyalty-0"]["categories"] == 3
    for width in SCREENSHOT_WIDTHS:
        assert (shots / f"report-{width}.png").stat().st_size > 50_000
