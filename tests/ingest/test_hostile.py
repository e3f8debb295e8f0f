"""Damaged and hostile files (issue 10): each one refused or quarantined with a sentence
that names the real cause. Every input is written the way the failing export looked."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from liucun.core import InvalidInput, NothingLoaded
from liucun.ingest import IngestOptions, ingest_events, ingest_tables, ingest_users
from liucun.warehouse import describe_read_error
from liucun.workspace import Workspace

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OPTS = IngestOptions(now=NOW)
HEADER = "user_id,event_type,ts,revenue,currency\n"


def order_rows(n: int) -> str:
    return "".join(
        f"u{i},order,2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{i % 97}.5,USD\n"
        for i in range(n)
    )


def loaded(fn, ws, path, opts=OPTS):  # type: ignore[no-untyped-def]
    """The load's result, also when it raised NothingLoaded after committing."""
    try:
        return fn(ws.warehouse, [path], opts)
    except NothingLoaded as exc:
        return exc.result  # type: ignore[attr-defined]


def quarantine(ws) -> list[dict]:  # type: ignore[no-untyped-def]
    q = ws.warehouse.table("quarantine").order_by("line").to_pyarrow().to_pylist()
    return [{"line": r["line"], "codes": list(r["reason_codes"]), **r} for r in q]


def assert_untouched(ws) -> None:  # type: ignore[no-untyped-def]
    wh = ws.warehouse
    assert {t: wh.count(t) for t in ("events", "loads", "quarantine")} == dict.fromkeys(
        ("events", "loads", "quarantine"), 0
    )


# -- 1. truncated gzip ----------------------------------------------------------------------


def _flushed_gzip(data: bytes) -> bytes:
    """A gzip stream of ``data`` cut right after a full flush: it decompresses cleanly up
    to the cut and has no end-of-stream marker or CRC (what an interrupted upload leaves)."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)


@pytest.mark.parametrize("cut", ["at_line_end", "mid_line", "anywhere"])
def test_a_truncated_gzip_is_refused_whole(tmp_path: Path, workspace: Workspace, cut: str) -> None:
    data = (HEADER + order_rows(100_000)).encode()
    half = len(data) // 2
    if cut == "at_line_end":  # the flush point falls between two lines: rows parse cleanly
        blob = _flushed_gzip(data[: data[:half].rfind(b"\n") + 1])
    elif cut == "mid_line":  # the last line is cut: looked like "a different number of fields"
        blob = _flushed_gzip(data[:half])
    else:
        full = gzip.compress(data)
        blob = full[: len(full) // 2]
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(blob)
    with pytest.raises(InvalidInput) as err:
        ingest_events(workspace.warehouse, [path], OPTS)
    msg = str(err.value)
    assert "ends before the end of its compressed stream" in msg
    assert "nothing was loaded" in msg and "re-download or re-export" in msg
    assert "number of fields" not in msg
    assert_untouched(workspace)


def test_a_truncated_gzip_refuses_the_whole_load(tmp_path: Path, workspace: Workspace) -> None:
    good = tmp_path / "a.csv"
    good.write_text(HEADER + order_rows(10))
    bad = tmp_path / "b.csv.gz"
    bad.write_bytes(_flushed_gzip((HEADER + order_rows(1000)).encode()))
    with pytest.raises(InvalidInput, match=r"b\.csv\.gz ends before the end"):
        ingest_events(workspace.warehouse, [good, bad], OPTS)
    assert_untouched(workspace)


def test_a_whole_gzip_still_loads(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress((HEADER + order_rows(500)).encode()))
    assert ingest_events(workspace.warehouse, [path], OPTS).accepted == 500


# -- 2. JSON Lines with mixed types ---------------------------------------------------------


def test_json_lines_mixing_numbers_and_strings_follow_the_csv_rules(
    tmp_path: Path, workspace: Workspace
) -> None:
    rows = [
        {"event_id": "a", "user_id": "u1", "event_type": "order", "ts": 1704103200,
         "revenue": 5, "currency": "USD"},
        {"event_id": "b", "user_id": "u2", "event_type": "order", "ts": "2024-01-01T10:00:00Z",
         "revenue": "7.5", "currency": "EUR"},
        {"event_id": "c", "user_id": "u3", "event_type": "order", "ts": "2024-01-01T11:00:00Z",
         "revenue": 5, "currency": 1},
        {"event_id": "d", "user_id": "u4", "event_type": "order", "ts": "yesterday",
         "revenue": 5, "currency": "USD"},
    ]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = loaded(ingest_events, workspace, path)
    assert (res.accepted, res.quarantined) == (2, 2)
    ev = workspace.warehouse.table("events").order_by("event_id").to_pyarrow().to_pylist()
    assert [(e["event_id"], e["ts"], e["revenue"], e["currency"]) for e in ev] == [
        ("a", datetime(2024, 1, 1, 10, tzinfo=UTC), 5.0, "USD"),
        ("b", datetime(2024, 1, 1, 10, tzinfo=UTC), 7.5, "EUR"),
    ]
    reasons = {r["line"]: r["reasons"] for r in quarantine(workspace)}
    # the value is shown as written, without its JSON quotes
    assert reasons[3] == [
        "line 3, field 'currency': '1' is not an ISO 4217 currency code; use three letters "
        "such as CNY, USD or EUR"
    ]
    assert reasons[4][0].startswith("line 4, field 'ts': 'yesterday' is not a date/time")


# -- 3. implausible and non-finite money ----------------------------------------------------


def test_money_must_be_finite_and_below_the_maximum_order_value(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        HEADER
        + "u1,order,2024-01-01T10:00:00Z,1e308,USD\n"
        + "u2,order,2024-01-01T10:00:00Z,1e309,USD\n"
        + "u3,order,2024-01-01T10:00:00Z,NaN,USD\n"
        + "u4,refund,2024-01-01T10:00:00Z,-inf,USD\n"
        + "u5,order,2024-01-01T10:00:00Z,1000000000,USD\n"  # exactly the maximum: accepted
        + "u6,order,2024-01-01T10:00:00Z,1000000000.01,USD\n"
    )
    res = loaded(ingest_events, workspace, path)
    assert (res.accepted, res.quarantined) == (1, 5)
    rows = {r["line"]: r for r in quarantine(workspace)}
    assert rows[2]["codes"] == ["implausible_revenue"]
    assert rows[7]["codes"] == ["implausible_revenue"]
    for line in (2, 7):
        (msg,) = rows[line]["reasons"]
        assert msg.startswith(f"line {line}, field 'revenue': '1e308'" if line == 2 else "line 7")
        assert "[ingest] max_order_value" in msg and "1,000,000,000" in msg
    for line, raw in ((3, "1e309"), (4, "NaN"), (5, "-inf")):
        assert rows[line]["codes"] == ["bad_revenue"], rows[line]
        (msg,) = rows[line]["reasons"]
        assert f"field 'revenue': '{raw}' is not a finite number" in msg
        assert "[ingest] max_order_value" in msg
    total = workspace.warehouse.table("events").revenue.sum().to_pyarrow().as_py()
    assert total == 1e9


def test_the_maximum_order_value_comes_from_the_settings(
    tmp_path: Path, workspace: Workspace
) -> None:
    settings = workspace.settings.model_copy(
        update={"ingest": workspace.settings.ingest.model_copy(update={"max_order_value": 100})}
    )
    opts = IngestOptions.from_settings(settings, now=NOW)
    path = tmp_path / "orders.csv"
    path.write_text(
        HEADER + "u1,order,2024-01-01T10:00:00Z,100,USD\nu2,order,2024-01-01T10:00:00Z,100.5,USD\n"
    )
    res = loaded(ingest_events, workspace, path, opts)
    assert (res.accepted, res.by_reason) == (1, {"implausible_revenue": 1})
    (row,) = quarantine(workspace)
    assert "'100.5' is above the maximum order value 100" in row["reasons"][0]


# -- 4. acquisition cost --------------------------------------------------------------------


def test_non_finite_acquisition_costs_are_bad_cost(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "user_id,acquisition_cost,country\n"
        "u1,NaN,CN\nu2,inf,CN\nu3,1e309,CN\nu4,-inf,CN\nu5,12.5,CN\nu6,nan,China\nu7,2e9,CN\n"
    )
    res = loaded(ingest_users, workspace, path)
    assert res.accepted == 1
    rows = {r["line"]: r for r in quarantine(workspace)}
    assert sorted(rows) == [2, 3, 4, 5, 7, 8]
    for line, raw in ((2, "NaN"), (3, "inf"), (4, "1e309"), (5, "-inf"), (7, "nan")):
        assert "bad_cost" in rows[line]["codes"], rows[line]
        msg = next(m for m in rows[line]["reasons"] if "acquisition_cost" in m)
        assert f"field 'acquisition_cost': '{raw}' is not a finite number" in msg
    # a row with two faults lists both, the NaN included
    assert rows[7]["codes"] == ["bad_country", "bad_cost"]
    assert "'2e9' is above 1,000,000,000 ([ingest] max_order_value)" in rows[8]["reasons"][0]


def test_non_finite_costs_in_typed_input_are_bad_cost(workspace: Workspace) -> None:
    users = pa.table(
        {"user_id": ["u1", "u2", "u3"], "acquisition_cost": [float("nan"), float("inf"), 3.0]}
    )
    (res,) = ingest_tables(workspace.warehouse, users=users, options=OPTS)
    assert (res.accepted, res.by_reason) == (1, {"bad_cost": 2})


# -- 5. a line longer than the engine's read buffer -------------------------------------------


def test_the_parallel_reader_error_is_the_long_line_sentence() -> None:
    """The exact text DuckDB gives for a line longer than its whole read buffer."""
    raw = (
        "Not implemented Error: The Parallel CSV Reader currently does not support a full "
        "read on this file.\nTo correctly parse this file, please run with the single "
        "threaded error (i.e., parallel = false)"
    )
    msg = describe_read_error(RuntimeError(raw), Path("big.csv"), "csv")
    assert msg == "big.csv: a line is longer than 8 MB; this is not a usable line-based file"


@pytest.mark.slow
def test_a_line_longer_than_the_read_buffer_gets_the_long_line_sentence(
    tmp_path: Path, workspace: Workspace
) -> None:
    """DuckDB's read buffer is 16 × max_line_size (128 MB); a line beyond it took the
    parallel reader's path (the reported 2 GB line did). 130 MB triggers the same path."""
    path = tmp_path / "orders.csv"
    with open(path, "w") as fh:
        fh.write(HEADER + order_rows(1000))
        fh.write("u1,order,2024-01-01T10:00:00Z,1,USD," + "x" * 130_000_000 + "\n")
        fh.write(order_rows(1000))
    with pytest.raises(InvalidInput) as err:
        ingest_events(workspace.warehouse, [path], OPTS)
    assert "a line is longer than 8 MB" in str(err.value)
    assert "parallel" not in str(err.value).lower()
    assert_untouched(workspace)


# -- 6. header names that are one name once normalized --------------------------------------


@pytest.mark.parametrize("twin", ["USER ID", "User-Id", "user id"])
def test_header_twins_after_normalization_are_refused(
    tmp_path: Path, workspace: Workspace, twin: str
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f'user_id,event_type,ts,"{twin}"\nu1,view,2024-01-01T10:00:00Z,u9\n')
    with pytest.raises(InvalidInput) as err:
        ingest_events(workspace.warehouse, [path], OPTS)
    msg = str(err.value)
    assert "'user_id'" in msg and repr(twin) in msg
    assert "same name" in msg
    assert_untouched(workspace)


def test_header_twin_mapped_elsewhere_is_fine(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,event_type,ts,USER ID\nu1,view,2024-01-01T10:00:00Z,a9\n")
    opts = IngestOptions(now=NOW, mapping={"USER ID": "anonymous_id"})
    assert ingest_events(workspace.warehouse, [path], opts).accepted == 1


# -- 9. UTC offsets ---------------------------------------------------------------------------


def test_offsets_beyond_14_hours_are_bad_timestamps(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,event_type,ts\n"
        "u1,view,2024-01-01T10:00:00-25:00\n"
        "u2,view,2024-01-01T10:00:00+14:00\n"  # Kiribati: real
        "u3,view,2024-01-01T10:00:00+14:30\n"
        "u4,view,2024-01-01T10:00:00-1200\n"
        "u5,view,2024-01-01 10:00:00+15\n"
        "u6,view,2024-01-01T10:00:00.123-99:59\n"
        "u7,view,2024-01-01T10:00:00+05:45\n"  # Nepal: real
    )
    res = loaded(ingest_events, workspace, path)
    assert res.accepted == 3
    rows = {r["line"]: r for r in quarantine(workspace)}
    assert sorted(rows) == [2, 4, 6, 7]
    for r in rows.values():
        assert r["codes"] == ["bad_timestamp"]
        assert "UTC offset beyond ±14:00" in r["reasons"][0]
    ts = {
        e["user_id"]: e["ts"] for e in workspace.warehouse.table("events").to_pyarrow().to_pylist()
    }
    assert ts == {
        "u2": datetime(2023, 12, 31, 20, tzinfo=UTC),
        "u4": datetime(2024, 1, 1, 22, tzinfo=UTC),
        "u7": datetime(2024, 1, 1, 4, 15, tzinfo=UTC),
    }


# -- 7. identical rows within one file ------------------------------------------------------


def test_rows_repeated_within_a_file_are_not_called_already_loaded(
    tmp_path: Path, workspace: Workspace
) -> None:
    first = tmp_path / "jan.csv"
    first.write_text(HEADER + "u1,order,2024-01-01T10:00:00Z,5,USD\n")
    ingest_events(workspace.warehouse, [first], OPTS)
    path = tmp_path / "feb.csv"
    row = "u2,order,2024-02-01T10:00:00Z,7,USD\n"
    path.write_text(HEADER + row * 3 + "u1,order,2024-01-01T10:00:00Z,5,USD\n")
    res = ingest_events(workspace.warehouse, [path], OPTS)
    # one new event; two copies of it repeat within the file; one row was there already
    assert (res.rows_read, res.accepted, res.quarantined) == (4, 1, 0)
    assert (res.duplicates, res.repeated, res.already_loaded, res.superseded) == (3, 2, 1, 0)


def test_cli_summary_separates_repeats_from_rows_already_loaded(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app
    from liucun.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "u2,order,2024-02-01T10:00:00Z,7,USD\n" * 2)
    args = ["-w", str(tmp_path / "ws"), "ingest", "events", str(path)]
    out = CliRunner().invoke(app, args, env={"COLUMNS": "200"}).output
    assert re.search(r"duplicates \(already loaded\)\s+│\s+0 ", out), out
    assert re.search(r"repeated within this load \(kept once\)\s+│\s+1 ", out), out


# -- 8. two different rows for one user in one file -------------------------------------------


def test_a_changed_user_row_within_a_file_is_reported(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "user_id,country,acquisition_channel\n"
        "u1,CN,ads\n"
        "u2,DE,seo\n"
        "u1,US,ads\n"  # u1 again, another country: the earlier row must not vanish silently
        "u2,DE,seo\n"  # u2 again, identical: a plain repeat
    )
    res = ingest_users(workspace.warehouse, [path], OPTS)
    assert (res.rows_read, res.accepted, res.updated, res.quarantined) == (4, 2, 0, 0)
    assert (res.duplicates, res.repeated, res.superseded, res.already_loaded) == (2, 1, 1, 0)
    assert res.notes == (
        "user 'u1' appears twice with different values: line 2 of users.csv differs from "
        "line 4 of the same file in country 'CN' → 'US'; line 4 was kept (the last row of a "
        "user in a load wins; put the row you want last, or fix the other)",
    )
    stored = workspace.warehouse.table("users").order_by("user_id").to_pyarrow().to_pylist()
    assert [(u["user_id"], u["country"]) for u in stored] == [("u1", "US"), ("u2", "DE")]


def test_a_changed_user_row_across_files_of_one_load_names_both(
    tmp_path: Path, workspace: Workspace
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("user_id,country,region\nu1,CN,east\n")
    b.write_text("user_id,country,region\nu1,CN,west\n")
    res = ingest_users(workspace.warehouse, [a, b], OPTS)
    assert (res.accepted, res.superseded) == (1, 1)
    (note,) = res.notes
    assert "line 2 of a.csv differs from line 2 of b.csv in region 'east' → 'west'" in note


# -- 11. status counts what is still open ----------------------------------------------------

_loads = itertools.count(1)


def next_load() -> IngestOptions:
    """Options of a load one minute after the previous one."""
    return IngestOptions(now=NOW + timedelta(minutes=next(_loads)))


def test_status_counts_nothing_open_after_the_corrected_file_loaded(
    tmp_path: Path, workspace: Workspace
) -> None:
    from liucun.ingest import warehouse_status

    bad = tmp_path / "orders.csv"
    bad.write_text(
        "event_id,user_id,event_type,ts,revenue,currency\n"
        "o1,u1,order,2024-01-01T10:00:00Z,5,USD\n"
        "o2,u2,order,31/01/2024,7,USD\n"  # bad timestamp
        "o3,u3,order,2024-01-02T10:00:00Z,1e308,USD\n"  # implausible
    )
    no_ids = tmp_path / "views.csv"
    no_ids.write_text("user_id,event_type,ts\nu4,view,yesterday\nu5,view,2024-01-03T10:00:00Z\n")
    users = tmp_path / "users.csv"
    users.write_text("user_id,country\nu1,China\nu2,CN\n")
    for fn, path in ((ingest_events, bad), (ingest_events, no_ids), (ingest_users, users)):
        loaded(fn, workspace, path, next_load())
    st = warehouse_status(workspace.warehouse)
    assert (st.quarantined, st.quarantined_open) == (4, 4)

    fixed = tmp_path / "orders_fixed.csv"
    fixed.write_text(
        "event_id,user_id,event_type,ts,revenue,currency\n"
        "o1,u1,order,2024-01-01T10:00:00Z,5,USD\n"
        "o2,u2,order,2024-01-31T00:00:00Z,7,USD\n"
        "o3,u3,order,2024-01-02T10:00:00Z,1300,USD\n"
    )
    ingest_events(workspace.warehouse, [fixed], next_load())
    st = warehouse_status(workspace.warehouse)
    assert (st.quarantined, st.quarantined_open) == (4, 2)  # the view and the user remain

    views_fixed = tmp_path / "views_fixed.csv"
    views_fixed.write_text("user_id,event_type,ts\nu4,View,2024-01-03T09:00:00Z\n")
    users_fixed = tmp_path / "users_fixed.csv"
    users_fixed.write_text("user_id,country\nu1,CN\n")
    ingest_events(workspace.warehouse, [views_fixed], next_load())
    ingest_users(workspace.warehouse, [users_fixed], next_load())
    st = warehouse_status(workspace.warehouse)
    assert (st.quarantined, st.quarantined_open) == (4, 0)


def test_a_conflicting_event_id_stays_open(tmp_path: Path, workspace: Workspace) -> None:
    """The stored event that owns the id is older than the rejection: nothing was fixed."""
    from liucun.ingest import warehouse_status

    head = "event_id,user_id,event_type,ts\n"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(head + "e1,u1,view,2024-01-01T10:00:00Z\n")
    second.write_text(head + "e1,u2,view,2024-01-02T10:00:00Z\n")
    ingest_events(workspace.warehouse, [first], next_load())
    loaded(ingest_events, workspace, second, next_load())
    st = warehouse_status(workspace.warehouse)
    assert (st.quarantined, st.quarantined_open) == (1, 1)


def test_cli_status_shows_open_and_history(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app
    from liucun.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(HEADER + "u1,order,2024-01-01T10:00:00Z,5,USD\nu2,order,soon,7,USD\n")
    good.write_text(HEADER + "u2,order,2024-01-01T11:00:00Z,7,USD\n")
    ws = ["-w", str(tmp_path / "ws")]
    run = CliRunner()
    env = {"COLUMNS": "200"}
    assert run.invoke(app, [*ws, "ingest", "events", str(bad)], env=env).exit_code == 0
    out = run.invoke(app, [*ws, "status"], env=env).output
    assert re.search(r"quarantined rows still open\s+│\s+1 ", out), out
    assert run.invoke(app, [*ws, "ingest", "events", str(good)], env=env).exit_code == 0
    out = run.invoke(app, [*ws, "status"], env=env).output
    assert re.search(r"quarantined rows still open\s+│\s+0 ", out), out
    assert re.search(r"quarantined rows, all loads \(history\)\s+│\s+1 ", out), out


# -- 10. custom event types -------------------------------------------------------------------

CLICKS = (
    "user_id,event_type,ts\n"
    "u1,Catalog,2024-01-01T10:00:00Z\n"
    "u1,WISHLIST,2024-01-01T10:01:00Z\n"
    "u1,view,2024-01-01T10:02:00Z\n"
)


def test_an_unknown_event_type_lists_the_known_ones_and_names_the_flag(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text(CLICKS)
    res = loaded(ingest_events, workspace, path)
    assert (res.accepted, res.by_reason) == (1, {"unknown_event_type": 2})
    msg = quarantine(workspace)[0]["reasons"][0]
    assert msg.startswith("line 2, field 'event_type': 'catalog' is not a known event type")
    assert "known: add_to_cart, check_in, coupon_issued," in msg and "order," in msg
    assert "tier_changed" not in msg  # liucun writes those itself: not a shop's to send
    assert "ingest.custom_event_types" in msg and "allow new event types" in msg


def test_declared_and_new_event_types_are_accepted_lower_cased(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text(CLICKS)
    opts = IngestOptions(now=NOW, custom_event_types=("Catalog",), allow_new_event_types=True)
    res = ingest_events(workspace.warehouse, [path], opts)
    assert (res.accepted, res.new_event_types) == (3, ("wishlist",))
    types = workspace.warehouse.table("events").event_type.to_pyarrow().to_pylist()
    assert sorted(types) == ["catalog", "view", "wishlist"]


def test_allow_new_event_types_still_refuses_names_that_are_not_names(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text('user_id,event_type,ts\nu1,"drop table;",2024-01-01T10:00:00Z\n')
    res = loaded(ingest_events, workspace, path, IngestOptions(now=NOW, allow_new_event_types=True))
    assert res.by_reason == {"unknown_event_type": 1}
    assert "is not a usable event type name" in quarantine(workspace)[0]["reasons"][0]


TOML = """# my shop
warehouse_url = "duckdb"

[mapping]
amount = "revenue"  # the export's name

[ingest]
# keep this comment
future_tolerance_hours = 48
custom_event_types = [
    "livestream_watch",  # from the app
]
max_reject_rate = 0.5

[state]
"""


def test_declare_event_types_appends_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    import tomllib

    from liucun.ingest import declare_event_types

    (tmp_path / "liucun.toml").write_text(TOML)
    added = declare_event_types(tmp_path, ["Catalog", "order", "livestream_watch", "wishlist"])
    assert added == ("catalog", "wishlist")  # standard and declared ones are skipped
    text = (tmp_path / "liucun.toml").read_text()
    doc = tomllib.loads(text)
    assert doc["ingest"] == {
        "future_tolerance_hours": 48,
        "custom_event_types": ["livestream_watch", "catalog", "wishlist"],
        "max_reject_rate": 0.5,
    }
    assert doc["mapping"] == {"amount": "revenue"}
    for line in ("# my shop", "# keep this comment", 'amount = "revenue"  # the export\'s name'):
        assert line in text
    assert declare_event_types(tmp_path, ["catalog"]) == ()


@pytest.mark.parametrize(
    "toml", ['warehouse_url = "duckdb"\n', "[ingest]\nmax_reject_rate = 1.0\n[state]\n"]
)
def test_declare_event_types_adds_the_key_or_the_table(tmp_path: Path, toml: str) -> None:
    import tomllib

    from liucun.ingest import declare_event_types

    (tmp_path / "liucun.toml").write_text(toml)
    assert declare_event_types(tmp_path, ["catalog"]) == ("catalog",)
    doc = tomllib.loads((tmp_path / "liucun.toml").read_text())
    assert doc["ingest"]["custom_event_types"] == ["catalog"]


def test_cli_event_types_are_declared_for_the_workspace(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app
    from liucun.workspace import init_workspace, open_workspace

    init_workspace(tmp_path / "ws").close()
    before = (tmp_path / "ws" / "liucun.toml").read_text()
    clicks, more = tmp_path / "clicks.csv", tmp_path / "more.csv"
    clicks.write_text(CLICKS)
    more.write_text(
        "user_id,event_type,ts\nu2,catalog,2024-01-02T10:00:00Z\nu2,Compare,2024-01-02T10:01:00Z\n"
    )
    ws = ["-w", str(tmp_path / "ws")]
    run, env = CliRunner(), {"COLUMNS": "200"}
    res = run.invoke(
        app, [*ws, "ingest", "events", str(clicks), "--event-types", "catalog, Wishlist"], env=env
    )
    assert res.exit_code == 0, res.output
    assert "Recorded event types catalog, wishlist in " in res.output
    assert "([ingest] custom_event_types)" in " ".join(res.output.split())
    # later loads know them without the flag; a new one is refused, naming the flag
    res = run.invoke(app, [*ws, "ingest", "events", str(more)], env=env)
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    with open_workspace(tmp_path / "ws") as opened:
        assert opened.settings.ingest.custom_event_types == ["catalog", "wishlist"]
        assert opened.warehouse.count("events") == 4
        (reasons,) = opened.warehouse.table("quarantine").reasons.to_pyarrow().to_pylist()
        assert "'compare' is not a known event type" in reasons[0]
    # the CLI names the flags (stored reasons never do)
    assert "declare yours with --event-types NAME,NAME" in out
    assert "--allow-new-event-types" in out
    res = run.invoke(app, [*ws, "ingest", "events", str(more), "--allow-new-event-types"], env=env)
    assert res.exit_code == 0, res.output
    assert "Recorded event type compare" in res.output
    with open_workspace(tmp_path / "ws") as opened:
        assert opened.settings.ingest.custom_event_types == ["catalog", "wishlist", "compare"]
        assert opened.warehouse.count("events") == 5
    after = (tmp_path / "ws" / "liucun.toml").read_text()
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert changed == ['custom_event_types = ["catalog", "wishlist", "compare"]']


def test_cli_refuses_an_event_type_that_is_not_a_name(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app
    from liucun.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    path = tmp_path / "clicks.csv"
    path.write_text(CLICKS)
    args = ["-w", str(tmp_path / "ws"), "ingest", "events", str(path), "--event-types", "a b"]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 1
    assert "'a b' is not a usable event type name" in res.output


def test_cli_nothing_loaded_for_unknown_types_names_the_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app
    from liucun.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    path = tmp_path / "clicks.csv"
    path.write_text("user_id,event_type,ts\nu1,Catalog,2024-01-01T10:00:00Z\n")
    args = ["-w", str(tmp_path / "ws"), "ingest", "events", str(path)]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 1
    assert "--event-types catalog" in " ".join(res.output.split()), res.output
