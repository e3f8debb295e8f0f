"""The report's Loyalty section: absent (no error) without a program or ledger accounts,
present with one, its headline figures and sentence the hand-worked numbers of
tests/loyalty_scenario.py, on SQLite and PostgreSQL state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.reports import REPORT_SECTIONS, build_report
from liucun.reports._analytics import ReportContext
from liucun.reports._loyalty import loyalty_section
from liucun.workspace import Workspace, init_workspace
from loyalty_scenario import AS_OF, START, build_scenario, insert_orders, t


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<section class="report" id="([a-z_]+)"', html)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _kpis(body: str) -> dict[str, tuple[str, str]]:
    found = re.findall(
        r'<div class="label">(.*?)</div><div class="value">(.*?)</div>'
        r'(?:<div class="note">(.*?)</div>)?',
        body,
    )
    return {label: (value, note) for label, value, note in found}


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(START)) as w:
        yield w


def _report(ws: Workspace, out: Path, as_of: datetime | None = None) -> dict[str, str]:
    path = build_report(ws, out, as_of=as_of, sections=(loyalty_section,))
    return _sections(path.read_text(encoding="utf-8"))


def test_no_program_and_no_accounts_means_no_section(ws: Workspace, tmp_path: Path) -> None:
    insert_orders(ws)
    assert loyalty_section in REPORT_SECTIONS
    assert tuple(_report(ws, tmp_path / "r.html")) == ("kpis",)
    # a ledger account of another program does not bring the section either
    loyalty.award(ws, "u1", 10, key="k1", program="other")
    assert "loyalty" not in _report(ws, tmp_path / "r.html")


def test_ledger_accounts_without_a_program_bring_an_unpriced_section(
    ws: Workspace, tmp_path: Path
) -> None:
    insert_orders(ws)
    loyalty.award(ws, "u1", 120, key="k1")
    body = _report(ws, tmp_path / "r.html")["loyalty"]
    assert "No loyalty program is in force" in body
    kpis = _kpis(body)
    assert kpis["Points outstanding"][0] == "120"
    assert kpis["Points liability (unpriced)"][0] == "—"


def test_the_section_shows_the_hand_worked_figures(ws: Workspace, tmp_path: Path) -> None:
    build_scenario(ws, tmp_path)
    # the report's as_of (given) is also the instant the ledger is read at
    body = _report(ws, tmp_path / "r.html", as_of=AS_OF)["loyalty"]
    kpis = _kpis(body)
    assert kpis["Points outstanding"] == ("1,750", "200 of them pending")
    assert kpis["Points liability (CNY)"][0] == "77.50"
    assert kpis["Points liability (CNY)"][1].startswith("87.50 with pending; 0.05 CNY a point")
    assert kpis["Expiring in 30 days"] == ("400", "CNY 20.00")
    assert kpis["Breakage"][0] == "29.8%"  # 700 / 2,350 in the trailing 365 days
    assert "(23.3% all time)" in kpis["Breakage"][1]  # 700 / 3,000
    assert kpis["Coupon redemption"] == ("50.0%", "of 4 settled codes; cost CNY 18.00")
    assert kpis["Paid members"] == ("2", "renewal rate 33.3% of 3 terms ended")
    lead = re.search(r'<p class="lead">(.*?)</p>', body)
    assert lead is not None
    text = lead.group(1)
    assert "Ledger as of 2026-03-25 12:00 UTC: 5 members hold 1,750 points" in text
    assert "a liability of CNY 77.50 at 0.05 CNY a point (CNY 87.50 counting pending" in text
    # paid membership: 1 of 3 ended terms renewed, Wilson 95 % interval of 1 / 3
    assert re.search(r"renewal rate</td>\s*<td>33.3%</td>", body)
    assert re.search(r"95 % interval</td>\s*<td>6.1% – 79.2%</td>", body)
    # repeat within 30 days of an order day: members 1 of 3, the others 2 of 8
    assert "Paid members ordered again within 30 days after 33.3% of their order days, " in text
    assert "the others after 25.0%" in text
    # u4's 250 lapsed points are named
    assert "250 points are past their expiry" in body
    # tiers, flows, points per month, coupons, member repeat
    assert body.count('<figure class="figure') == 5
    assert "ten_off" in body and "95 % interval" in body


def test_without_as_of_the_ledger_is_read_at_the_clock(ws: Workspace, tmp_path: Path) -> None:
    build_scenario(ws, tmp_path)
    clock = ws.clock
    assert isinstance(clock, SimulatedClock)
    clock.set(t(2026, 3, 27))  # a3's 200 were released on 26 March
    body = _report(ws, tmp_path / "r.html")["loyalty"]
    assert "Ledger as of 2026-03-27 00:00 UTC" in body
    assert _kpis(body)["Points outstanding"] == ("1,750", "0 of them pending")


def test_the_builder_is_none_without_a_workspace() -> None:
    import ibis

    events = ibis.memtable({"user_id": ["u"], "ts": [t(2026, 1, 1)]})
    assert loyalty_section(ReportContext(events=events, users=events, as_of=AS_OF)) is None
