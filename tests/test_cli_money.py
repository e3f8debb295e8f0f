"""`liucun ingest fx` and money in the reporting currency through the CLI (issue 10), and
one as-of convention for `liucun retention` and the report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from helpers import make_workspace
from liucun.metrics import retention
from liucun.workspace import open_workspace
from test_cli import one_line, run

ORDERS = """user_id,event_type,ts,revenue,currency
a,order,2024-01-04T12:00:00Z,10,USD
a,order,2024-01-04T17:00:00Z,20,USD
b,order,2024-01-03T00:00:00Z,100,CNY
c,order,2024-01-02T10:00:00Z,50,EUR
c,order,2024-01-06T10:00:00Z,10,EUR
a,visit,2024-01-03T09:00:00Z,,
"""
# CNY per unit; Shanghai days: a's 2nd order is on 01-05 there (7.2), c's 2nd uses 01-02's
RATES = "date,currency,rate\n2024-01-01,USD,7.0\n2024-01-05,USD,7.2\n2024-01-02,EUR,7.8\n"
TOTAL_CNY = 70 + 144 + 100 + 390 + 78


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ws = make_workspace(tmp_path / "ws")
    with (ws / "liucun.toml").open("a") as f:
        f.write('\n[reporting]\ncurrency = "CNY"\n')
    text = (
        (ws / "liucun.toml")
        .read_text()
        .replace('reporting_timezone = "UTC"', 'reporting_timezone = "Asia/Shanghai"')
    )
    (ws / "liucun.toml").write_text(text)
    (tmp_path / "orders.csv").write_text(ORDERS)
    code, out = run(["-w", str(ws), "ingest", "events", str(tmp_path / "orders.csv")])
    assert code == 0, out
    return ws


def _fx_table(ws: Path) -> list[tuple[object, ...]]:
    with open_workspace(ws) as opened:
        t = opened.table("fx_rates").order_by(["date", "currency"]).to_pandas()
    return [
        (str(r.date)[:10], r.currency, r.quote, r.rate)
        for r in t[["date", "currency", "quote", "rate"]].itertuples(index=False)
    ]


def test_ingest_fx_help_has_an_example() -> None:
    code, out = run(["ingest", "fx", "--help"])
    assert code == 0 and "Example" in out and "liucun " in out[out.index("Example") :]


def test_metrics_json_in_the_reporting_currency(shop: Path, tmp_path: Path) -> None:
    base = ["-w", str(shop), "metrics", "--as-of", "2024-01-10", "--format", "json"]
    # no rates yet: a sentence naming the currency, the day and the fix
    code, out = run(base)
    line = one_line(out)
    assert code == 1 and "EUR" in line and "2024-01-02" in line and "liucun ingest fx" in line
    (tmp_path / "fx.csv").write_text(RATES)
    for _ in range(2):  # loading the same file twice leaves the same table
        code, out = run(["-w", str(shop), "ingest", "fx", str(tmp_path / "fx.csv")])
        assert code == 0, out
        assert _fx_table(shop) == [
            ("2024-01-01", "USD", "CNY", 7.0),
            ("2024-01-02", "EUR", "CNY", 7.8),
            ("2024-01-05", "USD", "CNY", 7.2),
        ]
    code, out = run(base)
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    money = {
        r["metric"]: r for r in rows if r["metric"].split(" ")[0] in ("AOV", "revenue", "ARPU")
    }
    assert {r["by"] for r in money.values()} == {"CNY"}
    assert money["revenue (last 365 days)"]["value"] == pytest.approx(TOTAL_CNY)
    assert money["AOV (last 365 days)"]["value"] == pytest.approx(TOTAL_CNY / 5)
    assert money["ARPU (last 365 days)"]["value"] == pytest.approx(TOTAL_CNY / 3)


def test_ecb_layout_is_crossed_into_the_reporting_currency(shop: Path, tmp_path: Path) -> None:
    ecb = tmp_path / "eurofxref-hist.csv"
    # as published: newest first, per 1 EUR, N/A cells, a retired currency, a trailing comma
    ecb.write_text(
        "Date,USD,JPY,CNY,CYP,\n2024-01-03,1.0919,155.5,7.8,N/A,\n2024-01-02,1.0956,N/A,7.82,N/A,\n"
    )
    code, out = run(["-w", str(shop), "ingest", "fx", str(ecb)])
    assert code == 0, out
    got = {(d, c): r for d, c, q, r in _fx_table(shop)}
    assert got == {
        ("2024-01-02", "EUR"): pytest.approx(7.82),
        ("2024-01-02", "USD"): pytest.approx(7.82 / 1.0956),
        ("2024-01-03", "EUR"): pytest.approx(7.8),
        ("2024-01-03", "USD"): pytest.approx(7.8 / 1.0919),
        ("2024-01-03", "JPY"): pytest.approx(7.8 / 155.5),
    }


def test_bad_fx_rows_refuse_the_file_with_line_numbers(shop: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,currency,rate\n2024-01-01,USD,7.0\n2024-02-30,USD,7.1\n"
        "2024-01-02,XYZ,1\n2024-01-03,EUR,0\n2024-01-04,EUR,nan\n"
    )
    code, out = run(["-w", str(shop), "ingest", "fx", str(bad)])
    line = one_line(out)
    assert code == 1 and "nothing loaded" in line
    for expected in ("line 3: date '2024-02-30'", "line 4: currency 'XYZ'", "line 5: rate '0'"):
        assert expected in line, line
    assert "line 6: rate 'nan'" in line
    assert _fx_table(shop) == []


def test_fx_without_a_reporting_currency_says_what_to_set(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (tmp_path / "fx.csv").write_text(RATES)
    code, out = run(["-w", str(ws), "ingest", "fx", str(tmp_path / "fx.csv")])
    assert code == 1 and "[reporting] currency" in one_line(out)


def test_cli_retention_and_the_report_mark_the_same_periods_complete(shop: Path) -> None:
    code, out = run(["-w", str(shop), "retention", "--period", "day", "--format", "csv"])
    assert code == 0, out
    cli = {(r["cohort"], r["period"]): r["complete"] for r in csv.DictReader(io.StringIO(out))}
    with open_workspace(shop) as ws:  # what build_report passes: ws.data_end()
        end = ws.data_end()
        events = ws.events()
        report = retention(
            events.filter(events.ts < end),
            period="day",
            as_of=end,
            timezone=ws.settings.reporting_timezone,
        ).to_pandas()
    expected = {(str(r.cohort)[:10], str(r.period)): str(r.complete) for r in report.itertuples()}
    assert cli == expected
    # data end: the UTC midnight after the last event (01-07 08:00 in Shanghai), so the
    # 01-04 cohort's day 2 (01-06) has ended and its day 3 (01-07) has not
    assert cli[("2024-01-04", "2")] == "True" and cli[("2024-01-04", "3")] == "False"


def test_the_report_shows_money_in_the_reporting_currency(shop: Path, tmp_path: Path) -> None:
    (tmp_path / "fx.csv").write_text(RATES)
    assert run(["-w", str(shop), "ingest", "fx", str(tmp_path / "fx.csv")])[0] == 0
    out = tmp_path / "report.html"
    code, text = run(["-w", str(shop), "report", "--as-of", "2024-01-10", "--out", str(out)])
    assert code == 0, text
    html = out.read_text()
    # one revenue card, in CNY, with the amounts converted by hand (not one card per currency)
    assert f"{TOTAL_CNY:,}" in html or f"{TOTAL_CNY:,.2f}" in html
    assert "revenue CNY" in html and "revenue USD" not in html and "AOV EUR" not in html
