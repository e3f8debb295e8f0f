"""The HTML report: every section has data, the file is self-contained, the numbers are the
metrics' numbers, and the CLI writes it."""

from __future__ import annotations

import re
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.metrics import day_n_retention
from liucun.reports import (
    REPORT_SECTIONS,
    build_report,
    headline_kpis,
    kpi_cards,
    overall_ltv_cac,
    region_dispersion,
)
from liucun.reports._kpis import ACTIVITY_EVENT_TYPES
from liucun.warehouse import resolved_events
from liucun.workspace import Workspace

SECTION_KEYS = ("cohorts", "curves", "lifecycle", "rfm", "stages", "funnel", "ltv_cac", "regions")


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<section class="report" id="([a-z_]+)"', html)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def report(shop_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from liucun.workspace import open_workspace

    out = tmp_path_factory.mktemp("report") / "report.html"
    steps: list[str] = []
    with open_workspace(shop_workspace) as ws:
        path = build_report(ws, out, on_step=steps.append)
    assert path == out
    assert steps[0] == "Headline KPIs" and len(steps) == 1 + len(REPORT_SECTIONS)
    return out.read_text(encoding="utf-8")


def test_every_section_is_there_with_data(report: str) -> None:
    sections = _sections(report)
    assert tuple(sections) == ("kpis", *SECTION_KEYS, "risk", "experiments")
    # nothing scored or logged yet: the sections say how to get them instead of drawing nothing
    assert "run `liucun train` and `liucun score`" in sections["risk"]
    assert "No experiment or campaign is logged yet" in sections["experiments"]
    for key in SECTION_KEYS:
        body = sections[key]
        assert 'class="empty"' not in body, f"{key} has no data"
        assert "Plotly.newPlot" in body, f"{key} has no chart"
        lead = re.search(r'<p class="lead">(.*?)</p>', body)
        assert lead and lead.group(1).strip(), f"{key} has no summary sentence"
    assert sections["kpis"].count('class="kpi"') >= 8


def test_the_file_is_self_contained(report: str) -> None:
    """No CDN or any other network address is loaded: Plotly's JS is inside the file."""
    assert not re.search(r"<script[^>]+src=", report)
    assert not re.search(r"<link[^>]+href=", report)
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs()
    assert plotly_js in report  # the whole library, embedded once
    ours = report.replace(plotly_js, "")
    assert not re.search(r"https?://", ours), "the report refers to a network address"


def test_headline_numbers_are_the_metrics_numbers(shop: Workspace, report: str) -> None:
    as_of = shop.data_end()
    assert as_of is not None
    events = shop.events()
    kpis = headline_kpis(events, shop.customers(), as_of=as_of)  # the report's users
    d30 = kpis[kpis.metric == "D30 activity retention"].value.iloc[0]
    acts = events.filter(events.ts < as_of)
    acts = acts.filter(acts.event_type.isin(list(ACTIVITY_EVENT_TYPES))).mutate(
        event_type=ibis.literal("activity")
    )
    direct = day_n_retention(
        acts, days=(30,), cohort_event="activity", return_event="activity", as_of=as_of
    )
    assert d30 == pytest.approx(direct.to_pandas().rate.iloc[0], rel=1e-12)
    header = _sections(report)["kpis"]
    for card in kpi_cards(kpis):
        assert f'<div class="value">{card.value}</div>' in header, card


def test_region_spread_matches_its_definition(shop: Workspace, report: str) -> None:
    """Repeat purchase within 30 days of the first order per region, computed in pandas
    from docs/metrics.md: of the customers whose first order's (UTC) day d has d + 30 days
    complete before the as-of, the share with another order on days d+1 … d+30."""
    wh = shop.warehouse
    as_of = shop.data_end()
    events = resolved_events(wh.table("events"), wh.table("identities"))
    orders = events.filter((events.event_type == "order") & (events.ts < as_of))
    o = orders.select("user_id", "ts").to_pandas()
    o["day"] = pd.to_datetime(o.ts, utc=True).dt.tz_localize(None).dt.normalize()
    first = o.groupby("user_id").day.min().rename("first")
    o = o.join(first, on="user_id")
    end = pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None)
    done = first[first + pd.Timedelta(days=31) <= end]
    gap = (o.day - o["first"]).dt.days
    back = set(o.loc[(gap >= 1) & (gap <= 30), "user_id"])
    users = wh.table("users").select("user_id", "region").to_pandas().set_index("user_id")
    frame = pd.DataFrame({"user_id": done.index})
    frame["region"] = frame.user_id.map(users.region).fillna("unknown")
    frame["back"] = frame.user_id.isin(back)
    per_region = frame.groupby("region").agg(n=("back", "size"), rate=("back", "mean"))
    per_region = per_region[per_region.n >= 30]
    rates = per_region.rate.to_numpy()
    got = region_dispersion(rates)
    assert got["spread"] == pytest.approx(rates.max() - rates.min())
    assert got["cv"] == pytest.approx(np.std(rates) / np.mean(rates))
    lead = re.search(r'<p class="lead">(.*?)</p>', _sections(report)["regions"]).group(1)
    assert f"a spread of {got['spread'] * 100:.1f} points" in lead
    assert f"coefficient of variation of {got['cv']:.2f}" in lead
    lo = per_region.rate.idxmin()
    assert f"from {per_region.rate.min():.1%} ({lo})" in lead, lead


def test_region_dispersion_by_hand() -> None:
    got = region_dispersion(np.array([0.10, 0.20, 0.30]))
    assert got["spread"] == pytest.approx(0.20)
    assert got["cv"] == pytest.approx(np.sqrt(2 / 3) * 0.1 / 0.2)


def test_overall_ltv_cac_weights_channels_by_customers() -> None:
    channels = pd.DataFrame(
        {
            "channel": ["a", "b", "organic"],
            "customers": [10, 30, 50],
            "revenue": [100.0, 300.0, 900.0],
            "cac": [2.0, 4.0, None],
        }
    )
    # (100 + 300) / (10·2 + 30·4); organic has no known cost and is left out
    assert overall_ltv_cac(channels) == pytest.approx(400 / 140)
    assert overall_ltv_cac(channels.iloc[2:]) is None


def test_kpi_cards_format_each_kind() -> None:
    kpis = pd.DataFrame(
        [
            ("active customers (ordered in the last 90 days)", "", 1234.0, "count"),
            ("D1 order retention", "", 0.1234, "rate"),
            ("AOV (last 365 days)", "CNY", 203.456, "money"),
            ("AOV (last 365 days)", "USD", 20.0, "money"),
            ("LTV/CAC", "paid", 3.0, "ratio"),
            ("LTV/CAC", "all channels", None, "ratio"),
        ],
        columns=["metric", "by", "value", "kind"],
    )
    cards = [(c.label, c.value, c.note) for c in kpi_cards(kpis)]
    assert cards == [
        ("active customers", "1,234", "ordered in the last 90 days"),
        ("D1 order retention", "12.3%", ""),
        ("AOV CNY", "203.46", "last 365 days"),
        ("LTV/CAC all channels", "—", ""),
    ]


def test_an_empty_warehouse_is_refused_in_a_sentence(tmp_path: Path) -> None:
    from helpers import make_workspace

    ws = make_workspace(tmp_path / "ws")
    res = CliRunner().invoke(app, ["-w", str(ws), "report", "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 1
    assert "no events yet" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r.html").exists()


def test_report_command_writes_the_file(shop_workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "r.html"
    res = CliRunner().invoke(
        app,
        ["-w", str(shop_workspace), "report", "--out", str(out), "--as-of", "2026-08-01"],
    )
    assert res.exit_code == 0, res.output
    assert str(out.resolve()) in res.output.replace("\n", "")
    html = out.read_text(encoding="utf-8")
    assert "As of 2026-08-01 00:00" in html
    assert "2026-08-01" in re.search(r"<title>(.*?)</title>", html).group(1)


def test_a_section_without_data_says_why(shop: Workspace) -> None:
    """With no visits the funnel section explains itself instead of drawing nothing."""
    from liucun.reports import ReportContext
    from liucun.reports._analytics import funnel_section

    wh = shop.warehouse
    as_of = shop.data_end()
    assert as_of is not None
    events = wh.table("events")
    ctx = ReportContext(
        events=events.filter(events.event_type == "order"), users=wh.table("users"), as_of=as_of
    )
    sec = funnel_section(ctx)
    assert sec.empty == "No 'visit' events in the last 30 days."
    assert sec.figures == []


def test_an_unknown_breakdown_is_refused_in_a_sentence(
    shop_workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        app, ["-w", str(shop_workspace), "report", "--out", str(out), "--breakdown", "nope"]
    )
    assert res.exit_code == 1
    assert "cannot break down by 'nope'" in res.output and "Traceback" not in res.output
    assert not out.exists()
