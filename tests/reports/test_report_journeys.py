"""The report's Journeys section: absent without enrolments, present (through `liucun
report`) when a journey ran against the responding world, with its per-node table, its
chart of incremental margin with intervals and truth markers, and a chart that reads
right in Chromium at 1440 and 390 pixels."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright import sync_api
from typer.testing import CliRunner

from journeys.world_support import SHOP_END, Shop, buyers, copy_shop, enrol, make_shop
from liucun.cli import app
from liucun.journeys._report import journey_report
from liucun.reports import REPORT_SECTIONS, build_report
from liucun.reports._journeys import journeys_section
from liucun.simulate import responsive_world
from liucun.workspace import open_workspace

AUDIT = (Path(__file__).with_name("chart_audit.js")).read_text(encoding="utf-8")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<section class="report" id="([a-z_]+)"', html)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return make_shop(tmp_path_factory.mktemp("rj"), users=1_500, days=120, seed=31)


@pytest.fixture(scope="module")
def ran(base: Shop, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """Two journeys (one measurable, one with a too-small control arm) run 31 days."""
    shop = copy_shop(base, tmp_path_factory.mktemp("ran") / "ws")
    with open_workspace(shop.ws_dir) as ws:
        users = buyers(ws)
        enrol(ws, "winback", users, second_share=0.5)
        enrol(ws, "tiny", users[:200], control_share=0.02, channel="push")
        responsive_world(shop.sim_dir, seed=2, strengths={"coupon": 3.0}).advance(
            ws, SHOP_END + timedelta(days=31)
        )
    return shop


def test_no_journeys_no_section(base: Shop, tmp_path: Path) -> None:
    assert journeys_section in REPORT_SECTIONS
    shop = copy_shop(base, tmp_path / "ws")
    with open_workspace(shop.ws_dir) as ws:
        out = build_report(ws, tmp_path / "r.html", sections=(journeys_section,))
    assert tuple(_sections(out.read_text(encoding="utf-8"))) == ("kpis",)


def test_the_report_command_includes_the_section(ran: Shop, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["-w", str(ran.ws_dir), "report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    body = _sections(out.read_text(encoding="utf-8"))["journeys"]
    with open_workspace(ran.ws_dir) as ws:
        winback = journey_report(ws, "winback", truth="auto", as_of=ws.data_end())
    offer = winback.nodes[0]
    t, c = offer.entered_by_arm["treatment"], offer.entered_by_arm["control"]
    assert f"{t:,} / {c:,}" in body
    assert f"<td>{offer.sent:,}</td>" in body
    assert f"{offer.true_incremental_margin:,.0f}" in body  # the truth column
    assert "winback: incremental margin per node" in body
    assert "tiny: Too few units for an interval" in body  # said, with no interval drawn
    assert body.count('data-figure="fig-journeys-') == 1  # tiny has no chart
    assert '"name":"truth"' in body and '"symbol":"diamond"' in body
    kpis = dict(re.findall(r'<div class="label">(.*?)</div><div class="value">(.*?)</div>', body))
    assert kpis["Journeys"] == "2"
    assert kpis["True incremental margin"] != "—"


@pytest.mark.slow
def test_the_chart_reads_right_at_1440_and_390(ran: Shop, tmp_path: Path, chromium: str) -> None:
    out = tmp_path / "r.html"
    with open_workspace(ran.ws_dir) as ws:
        build_report(ws, out, sections=(journeys_section,))
    shots = Path(os.environ.get("LIUCUN_SCREENSHOT_DIR") or tmp_path)
    found = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            for width in (1440, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(out.as_uri())
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.js-plotly-plot')]"
                    ".every(el => el._fullLayout)"
                )
                page.wait_for_timeout(300)
                found[width] = page.evaluate(AUDIT)
                page.screenshot(path=str(shots / f"journeys-{width}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    for width, result in found.items():
        chart = result["charts"]["fig-journeys-0"]
        assert chart["problems"] == [], (width, chart["problems"])
        assert chart["categories"] == 6  # offer, remind, done: in the estimates and the truth
        assert chart["marks"] >= 6  # an estimate and a truth marker per node
        assert result["page"] <= result["window"], f"{width}px: the page scrolls sideways"
