"""Issue 10: cohorts of any age in the heatmap, the funnel from ``[reporting] funnel`` and
readable covariate labels in the drivers chart.

Small hand-made histories, ingested like a user's export; the expected numbers are worked
out by hand from the definitions in docs/metrics.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ConfigError
from liucun.ingest import ingest_tables
from liucun.reports import build_report
from liucun.reports._analytics import check_funnel, cohort_heatmap, funnel_section
from liucun.reports._render import Section
from liucun.reports._risk import _drivers, covariate_labels
from liucun.workspace import init_workspace, open_workspace

#: First orders in 2022-01, 2022-03, 2022-04 and 2022-06 (none in 2022-02 or 2022-05);
#: the history ends in July 2022, two years before the report's as-of date.
OLD_ORDERS = [
    ("u01", "2022-01-05"),
    ("u01", "2022-02-10"),  # 2022-01 cohort: 1 of 2 back in month 1
    ("u02", "2022-01-20"),
    ("u03", "2022-03-02"),
    ("u03", "2022-04-03"),  # 2022-03 cohort: 1 of 3 back in month 1 (u04 only in month 2)
    ("u04", "2022-03-15"),
    ("u04", "2022-05-01"),
    ("u05", "2022-03-30"),
    ("u06", "2022-04-04"),
    ("u06", "2022-05-09"),  # 2022-04 cohort: 1 of 2 back in month 1
    ("u07", "2022-04-21"),
    ("u08", "2022-06-01"),
    ("u08", "2022-07-02"),  # 2022-06 cohort: 2 of 4 back in month 1
    ("u09", "2022-06-11"),
    ("u09", "2022-07-20"),
    ("u10", "2022-06-12"),
    ("u11", "2022-06-30"),
]
AS_OF = datetime(2024, 7, 1, tzinfo=UTC)


def _events(rows: list[tuple[str, str, str]]) -> pa.Table:
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts"])
    df["ts"] = pd.to_datetime(df.ts, utc=True) + pd.Timedelta(hours=12)
    df["revenue"] = [20.0 if t == "order" else None for t in df.event_type]
    df["currency"] = [("USD" if t == "order" else None) for t in df.event_type]
    return pa.Table.from_pandas(df, preserve_index=False)


def _workspace(path: Path, rows: list[tuple[str, str, str]], reporting: str = "") -> Path:
    with init_workspace(path) as ws:
        ingest_tables(ws.warehouse, events=_events(rows))
    if reporting:
        with (path / "liucun.toml").open("a", encoding="utf-8") as toml:
            toml.write(f"\n[reporting]\n{reporting}\n")
    return path


def _lead(html: str, key: str) -> str:
    part = html.split(f'id="{key}"', 1)[1]
    return re.search(r'<p class="lead">(.*?)</p>', part, re.S).group(1)


@pytest.fixture(scope="module")
def old_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [(u, "order", day) for u, day in OLD_ORDERS]
    return _workspace(tmp_path_factory.mktemp("old") / "ws", rows, "heatmap_cohorts = 3")


def test_the_heatmap_shows_the_latest_cohorts_of_a_history_that_ended_long_ago(
    old_shop: Path, tmp_path: Path
) -> None:
    """The history ended two years before as-of: the heatmap still shows the 3 most recent
    cohorts that have data (2022-03, 2022-04, 2022-06; 2022-05 has none), and the sentence
    is computed on those three only: (1 + 1 + 2) / (3 + 2 + 4) = 4/9."""
    with open_workspace(old_shop) as ws:
        html = build_report(ws, tmp_path / "r.html", as_of=AS_OF).read_text(encoding="utf-8")
    cohorts = html.split('id="cohorts"', 1)[1].split("</section>", 1)[0]
    assert 'class="empty"' not in cohorts, "the heatmap says there are no cohorts"
    assert '"2022-03 (n=3)","2022-04 (n=2)","2022-06 (n=4)"' in cohorts
    assert "2022-01" not in cohorts and "2022-05" not in cohorts
    lead = _lead(html, "cohorts")
    assert f"{4 / 9:.1%} of their customers order again" in lead, lead  # not 5/11 (all cohorts)
    assert "3 most recent cohorts (2022-03 … 2022-06)" in lead


def test_the_number_of_cohorts_comes_from_the_context() -> None:
    """Without a workspace the default is 12: here every one of the 4 cohorts is shown and
    the sentence covers all of them, (1 + 1 + 1 + 2) / (2 + 3 + 2 + 4) = 5/11."""
    from liucun.reports import ReportContext

    events = pa.Table.from_pandas(
        pd.DataFrame(
            {
                "user_id": [u for u, _ in OLD_ORDERS],
                "event_type": "order",
                "ts": pd.to_datetime([d for _, d in OLD_ORDERS], utc=True),
                "revenue": 20.0,
            }
        )
    )
    import ibis

    sec = cohort_heatmap(ReportContext(events=ibis.memtable(events), users=None, as_of=AS_OF))
    assert sec.empty is None
    assert f"{5 / 11:.1%} of their customers" in sec.lead
    assert '"2022-01 (n=2)","2022-03 (n=3)","2022-04 (n=2)","2022-06 (n=4)"' in sec.figures[0]


FUNNEL_ROWS = [
    ("u1", "visit", "2024-05-20"),
    ("u1", "view", "2024-05-21"),
    ("u1", "order", "2024-05-23"),  # view → order within 7 days
    ("u2", "view", "2024-05-22"),  # viewed, never ordered
    ("u3", "view", "2024-05-10"),
    ("u3", "order", "2024-05-25"),  # ordered 15 days after the view: outside the window
    ("u4", "order", "2024-05-26"),  # ordered without a view
    ("u5", "visit", "2024-05-27"),
]


def test_the_funnel_takes_its_steps_from_the_setting(tmp_path: Path) -> None:
    """``funnel = ["view", "order"]``: 3 users viewed in the last 30 days, 1 ordered within
    7 days of the view (u3 after 15 days, u4 without a view)."""
    ws_path = _workspace(tmp_path / "ws", FUNNEL_ROWS, 'funnel = ["view", "order"]')
    with open_workspace(ws_path) as ws:
        out = build_report(ws, tmp_path / "r.html", sections=(funnel_section,))
    html = out.read_text(encoding="utf-8")
    assert "view → order: ordered funnel" in html
    lead = _lead(html, "funnel")
    assert f"{1 / 3:.1%} of users with a &#39;view&#39; went on to &#39;order&#39;" in lead, lead


def test_an_unknown_funnel_step_is_an_error_that_names_the_setting(tmp_path: Path) -> None:
    ws_path = _workspace(tmp_path / "ws", FUNNEL_ROWS, 'funnel = ["visit", "View", "order"]')
    with open_workspace(ws_path) as ws, pytest.raises(ConfigError) as err:
        build_report(ws, tmp_path / "r.html")
    message = str(err.value)
    assert "reporting.funnel" in message and "'View'" in message
    assert "did you mean 'view'" in message
    assert "add_to_cart" in message and "order" in message  # the known types are listed
    assert not (tmp_path / "r.html").exists()
    res = CliRunner().invoke(app, ["-w", str(ws_path), "report", "--out", str(tmp_path / "c.html")])
    assert res.exit_code == 1
    assert "reporting.funnel" in res.output and "Traceback" not in res.output


def test_check_funnel_accepts_declared_and_observed_types() -> None:
    assert check_funnel(["visit", "catalog_view", "order"], ["catalog_view"]) == (
        "visit",
        "catalog_view",
        "order",
    )
    with pytest.raises(ConfigError, match="'checkout' is not a known event type"):
        check_funnel(["visit", "checkout"])


HAZARDS = [
    # helper D's table: term, covariate, level, reference (no label column yet)
    ("first_order_value_log2_rel", "first_order_value_log2_rel", None, None, 0.94),
    ("region[north]", "region", "north", "east", 0.98),
    ("main_channel[mini_program]", "main_channel", "mini_program", "app", 0.93),
    ("late_delivery_share", "late_delivery_share", None, None, 1.02),
]


def _hazards() -> pd.DataFrame:
    d = pd.DataFrame(HAZARDS, columns=["term", "covariate", "level", "reference", "hazard_ratio"])
    return d.assign(ci_low=d.hazard_ratio * 0.9, ci_high=d.hazard_ratio * 1.1)


def test_covariates_get_readable_labels_without_a_label_column() -> None:
    assert covariate_labels(_hazards()) == [
        "first order value (2× median)",
        "region: north vs east",
        "main channel: mini program vs app",
        "late delivery share",
    ]
    # a term name alone (an older card) is read the same way
    assert covariate_labels(pd.DataFrame({"covariate": ["main_channel[web]"]})) == [
        "main channel: web"
    ]


def test_a_label_column_is_used_when_the_drivers_model_gives_one() -> None:
    d = _hazards().assign(label=["first order ×2", "north (vs east)", None, ""])
    assert covariate_labels(d) == [
        "first order ×2",
        "north (vs east)",
        "main channel: mini program vs app",  # missing labels fall back to the derived one
        "late delivery share",
    ]


def test_the_drivers_chart_shows_no_raw_column_name() -> None:
    card = SimpleNamespace(metrics={"drivers": _hazards().to_dict("records")})
    sec = Section("risk", "Risk and value")
    _drivers(sec, card)
    (figure,) = sec.figures
    for raw in ("log2_rel", "first_order_value", "region[north]", "mini_program"):
        assert raw not in figure, raw
    # labels go into the figure's JSON (long ones wrapped at a space with <br>); plotly
    # escapes "<" either way, "×" only with the json engine (orjson, when installed, not)
    assert any(
        f"first order value (2{times}\\u003cbr\\u003emedian)" in figure
        for times in ("\\u00d7", "×")
    )
    assert '"region: north vs east"' in figure


def test_the_funnel_window_is_whole_days_of_the_reporting_time_zone(tmp_path: Path) -> None:
    """Data end 2024-05-28 00:00 UTC is 08:00 in Shanghai, so the last 30 Shanghai days
    start on 2024-04-29 00:00 there (04-28 16:00 UTC): u6's view at 04-28 20:00 Shanghai
    is outside (in UTC days it would be inside, giving 2 of 4)."""
    rows = [*FUNNEL_ROWS, ("u6", "view", "2024-04-28"), ("u6", "order", "2024-04-30")]
    ws_path = _workspace(tmp_path / "ws", rows, 'funnel = ["view", "order"]')
    toml = ws_path / "liucun.toml"
    text = toml.read_text(encoding="utf-8")
    assert 'reporting_timezone = "UTC"' in text
    toml.write_text(
        text.replace('reporting_timezone = "UTC"', 'reporting_timezone = "Asia/Shanghai"')
    )
    with open_workspace(ws_path) as ws:
        out = build_report(ws, tmp_path / "r.html", sections=(funnel_section,))
    lead = _lead(out.read_text(encoding="utf-8"), "funnel")
    assert f"{1 / 3:.1%} of users with a &#39;view&#39;" in lead, lead


def test_a_funnel_step_without_events_in_the_window_is_an_empty_step(tmp_path: Path) -> None:
    """A declared step ('wishlist') and one present in the data only before the funnel's
    30-day window ('view' of u9, 60 days back) are checked against the whole history:
    the report shows them as empty steps instead of failing."""
    rows = [
        ("u9", "view", "2024-03-28"),
        ("u9", "order", "2024-03-29"),
        ("u1", "visit", "2024-05-20"),
        ("u1", "order", "2024-05-23"),
    ]
    ws_path = _workspace(tmp_path / "ws", rows, 'funnel = ["visit", "wishlist", "order"]')
    toml = ws_path / "liucun.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            "custom_event_types = []", 'custom_event_types = ["wishlist"]'
        ),
        encoding="utf-8",
    )
    with open_workspace(ws_path) as ws:
        out = build_report(ws, tmp_path / "r.html", sections=(funnel_section,))
    lead = _lead(out.read_text(encoding="utf-8"), "funnel")
    assert "0.0% of users with a &#39;visit&#39;" in lead, lead
