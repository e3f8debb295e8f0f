"""Loads say when nothing was loaded, and the workspace default currency (issue 9, item 9).

Through the CLI: an input of which no row is accepted exits 1 with one sentence naming
the main reason and its fix; the load still commits, so its rows are in the quarantine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import counts, make_workspace
from liucun.core import ConfigError
from liucun.ingest import IngestOptions
from liucun.workspace import open_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
EXPORT = (
    "cust,paid_at,amount\n"
    "c1,2024-02-01 08:00,99.50\nc2,2024-02-02 09:00,10\nc3,2024-02-03 10:00,1\n"
)
ORDER_FLAGS = ["--map", "cust=user_id", "--map", "paid_at=ts", "--map", "amount=revenue"]


def run(args: list[str], env: dict[str, str | None] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(app_(), args, env=env)
    out = _ANSI.sub("", res.output)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, out


def app_():  # type: ignore[no-untyped-def]
    from liucun.cli import app

    return app


def one_line(out: str) -> str:
    lines = _LINE_BREAK.split(out.strip())
    assert len(lines) == 1 and lines[0], f"expected one line:\n{out}"
    return lines[0]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def orders(ws: Path, source: Path, *extra: str, env=None) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return run(
        [
            "-w",
            str(ws),
            "ingest",
            "events",
            str(source),
            "--event-type",
            "order",
            *ORDER_FLAGS,
            *extra,
        ],
        env=env,
    )


def currencies(ws: Path) -> list[str]:
    with open_workspace(ws) as opened:
        return opened.warehouse.table("events").currency.to_pyarrow().to_pylist()


def test_orders_without_a_currency_say_so_in_one_sentence(workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(EXPORT)
    code, out = orders(workspace, source)
    assert code == 1, out
    line = one_line(out)
    assert line.startswith("NothingLoaded: all 3 rows of orders.csv lack a currency"), line
    assert line.endswith("pass --currency CNY or set [ingest] currency in liucun.toml"), line
    # the load committed: its rejected rows are in the quarantine, where the user looks
    assert counts(workspace) == {"events": 0, "loads": 1, "quarantine": 3}
    with open_workspace(workspace) as opened:
        (load_id,) = opened.warehouse.table("loads").load_id.to_pyarrow().to_pylist()
    assert f"load {load_id}" in line
    code, shown = run(
        ["-w", str(workspace), "quarantine", "show", "--load", load_id, "--format", "csv"]
    )
    assert code == 0 and shown.count("missing_currency") == 3, shown


def test_an_input_that_gives_nothing_fails_the_load_but_keeps_the_others(
    workspace: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.csv").write_text("user_id,event_type,ts\nu1,view,2024-03-01T10:00:00Z\n")
    (folder / "b_bad.csv").write_text(
        "user_id,event_type,ts\nu2,view,soon\nu3,view,later\nu4,teleport,2024-03-01\n"
    )
    code, out = run(["-w", str(workspace), "ingest", "events", str(folder)])
    assert code == 1, out
    line = one_line(out)
    assert "none of the 3 rows of b_bad.csv was accepted; 2 have a time that cannot be read" in line
    assert "pass --timestamp-format %d/%m/%Y %H:%M" in line
    assert counts(workspace) == {"events": 1, "loads": 1, "quarantine": 3}


def test_a_file_with_only_a_header_gives_nothing(workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("user_id,event_type,ts\n")
    code, out = run(["-w", str(workspace), "ingest", "events", str(source)])
    assert code == 1
    assert (
        one_line(out)
        == "NothingLoaded: empty.csv holds no rows (only a header); nothing was loaded from it"
    )


def test_a_users_file_that_gives_nothing(workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("id,country\nu1,CN\nu2,DE\n")
    code, out = run(
        ["-w", str(workspace), "ingest", "users", str(source), "--map", "id=account_id"]
    )
    assert code == 1
    line = one_line(out)
    assert line.startswith("InvalidInput: "), line  # no user_id column: refused as a whole
    source.write_text("user_id,country\n,CN\n ,DE\n")
    code, out = run(["-w", str(workspace), "ingest", "users", str(source)])
    assert code == 1
    line = one_line(out)
    assert line.startswith("NothingLoaded: all 2 rows of customers.csv have no user id"), line
    assert line.endswith("pass --map YOUR_ID=user_id or set [mapping] in liucun.toml"), line


# -- the workspace default currency ------------------------------------------------------


def _set_currency(ws: Path, code: str) -> None:
    toml = ws / "liucun.toml"
    toml.write_text(toml.read_text().replace('# currency = "CNY"', f'currency = "{code}"'))


def test_the_workspace_currency_fills_orders_that_carry_none(
    workspace: Path, tmp_path: Path
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(EXPORT)
    _set_currency(workspace, "cny")
    code, out = orders(workspace, source)
    assert code == 0, out
    assert currencies(workspace) == ["CNY"] * 3


def test_the_environment_overrides_the_file_and_the_flag_overrides_both(
    workspace: Path, tmp_path: Path
) -> None:
    _set_currency(workspace, "CNY")
    for i, (extra, env) in enumerate(
        [
            ([], {"LIUCUN_INGEST__CURRENCY": "USD"}),
            (["--currency", "eur"], {"LIUCUN_INGEST__CURRENCY": "USD"}),
        ]
    ):
        source = tmp_path / f"orders{i}.csv"
        source.write_text(EXPORT.replace("c1,", f"c1{i},"))
        code, out = orders(workspace, source, *extra, env=env)
        assert code == 0, out
    with open_workspace(workspace) as opened:
        ev = opened.warehouse.table("events").to_pyarrow().to_pylist()
    by_user = {e["user_id"]: e["currency"] for e in ev}
    assert by_user["c10"] == "USD" and by_user["c11"] == "EUR"


def test_a_row_with_its_own_currency_keeps_it(workspace: Path, tmp_path: Path) -> None:
    _set_currency(workspace, "CNY")
    source = tmp_path / "orders.csv"
    source.write_text(
        "user_id,event_type,ts,revenue,currency\nu1,order,2024-01-01,5,JPY\nu2,order,2024-01-01,6,\n"
    )
    code, out = run(["-w", str(workspace), "ingest", "events", str(source)])
    assert code == 0, out
    assert sorted(currencies(workspace)) == ["CNY", "JPY"]


@pytest.mark.parametrize(
    ("where", "value", "says"),
    [
        ("flag", "XYZ", "the default currency 'XYZ' is not an ISO 4217 code"),
        ("file", "XYZ", "the default currency 'XYZ' is not an ISO 4217 code"),
        ("file", "yuan", "ingest.currency 'yuan' is not an ISO 4217 code"),
        ("env", "C1Y", "ingest.currency 'C1Y' is not an ISO 4217 code"),
    ],
)
def test_a_currency_that_is_not_iso_4217_is_refused_before_reading(
    workspace: Path, tmp_path: Path, where: str, value: str, says: str
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(EXPORT)
    extra, env = [], None
    if where == "flag":
        extra = ["--currency", value]
    elif where == "file":
        _set_currency(workspace, value)
    else:
        env = {"LIUCUN_INGEST__CURRENCY": value}
    code, out = orders(workspace, source, *extra, env=env)
    assert code == 1
    line = one_line(out)
    assert line.startswith("ConfigError: ") and says in line, line
    toml = workspace / "liucun.toml"
    toml.write_text(toml.read_text().replace(f'currency = "{value}"', 'currency = "CNY"'))
    assert counts(workspace) == {"events": 0, "loads": 0, "quarantine": 0}


def test_the_library_option_checks_the_code_and_names_no_flag() -> None:
    assert IngestOptions(default_currency=" cny ").default_currency == "CNY"
    with pytest.raises(ConfigError, match="not an ISO 4217 code") as caught:
        IngestOptions(default_currency="ABC")
    assert "--" not in str(caught.value)
    assert caught.value.hint is not None and caught.value.hint.setting == "ingest.currency"
