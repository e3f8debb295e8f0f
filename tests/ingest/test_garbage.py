"""Garbage in, one clear line out: ``liucun ingest events`` on inputs that are not data.

Every case runs the real CLI in-process and checks the contract of ``liucun.cli``: exit
code 1 (2 is reserved for ``--max-reject-rate``), one non-empty line naming the file or
the problem, prefixed by liucun's own error name, no traceback, and a warehouse left as
it was (no events, no loads, no quarantined rows).
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from helpers import counts, make_workspace
from liucun.cli import app
from liucun.workspace import open_workspace

HEADER = "user_id,event_type,ts,revenue,currency\n"
LIUCUN_ERRORS = (
    "LiucunError",
    "ConfigError",
    "WorkspaceError",
    "InvalidInput",
    "WarehouseError",
    "RejectRateExceeded",
    "NothingLoaded",
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = re.compile(rf"^({'|'.join(LIUCUN_ERRORS)}): \S")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b")


def good_row(i: int) -> str:
    return f"u{i},order,2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{i % 97}.5,USD\n"


def run_cli(args: list[str]) -> tuple[int, str]:
    """Exit code and everything printed; an uncaught exception is shown as its traceback."""
    res = CliRunner().invoke(app, args)
    out = _ANSI.sub("", res.output)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        out += "".join(traceback.format_exception(res.exception))
    return res.exit_code, out


def assert_one_clear_line(out: str) -> str:
    """The output is one line ``Name: message`` with a liucun error name and no traceback."""
    assert "Traceback" not in out, out
    lines = _LINE_BREAK.split(out.strip())  # not splitlines(): \x1c is no break on a terminal
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{out}"
    line = lines[0]
    assert _PREFIX.match(line), f"no liucun error prefix: {line!r}"
    rest = line.split(": ", 1)[1]
    assert not _EXCEPTION_NAME.search(rest), f"a Python exception name leaks out: {line!r}"
    return line


# -- the garbage --------------------------------------------------------------------------


@dataclass(frozen=True)
class Garbage:
    """One bad input: how to make it, and what the message must say besides its name."""

    build: Callable[[Path], str]  # writes the input under a directory, returns the CLI argument
    says: str  # regex the message must match (case-insensitive)
    named: str | None = None  # text the message must contain; default: the argument's name


def _write(name: str, data: bytes) -> Callable[[Path], str]:
    def build(d: Path) -> str:
        (d / name).write_bytes(data)
        return str(d / name)

    return build


def _random_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _ragged(n_before: int, n_after: int) -> bytes:
    rows = [good_row(i) for i in range(n_before)]
    rows.append("u_x,order,2024-01-01T00:00:00Z,1.5,USD,surplus,field\n")
    rows += [good_row(i) for i in range(n_before, n_before + n_after)]
    return (HEADER + "".join(rows)).encode()


def _glob_nothing(d: Path) -> str:
    (d / "orders.csv").write_text(HEADER + good_row(1))  # exists, but is not matched
    return str(d / "exports" / "*.csv")


def _empty_dir(d: Path) -> str:
    (d / "inbox").mkdir()
    (d / "inbox" / ".hidden.csv").write_text(HEADER + good_row(1))
    return str(d / "inbox")


def _dir_of_other_files(d: Path) -> str:
    (d / "inbox" / "2024").mkdir(parents=True)
    (d / "inbox" / "README.txt").write_text("orders are exported every night\n")
    (d / "inbox" / "2024" / "orders.xlsx").write_bytes(b"PK\x03\x04" + _random_bytes(9, 200))
    return str(d / "inbox")


_GZ = gzip.compress((HEADER + "".join(good_row(i) for i in range(2000))).encode())
_UTF16 = (HEADER + "用户一,order,2024-01-01T00:00:00Z,10,CNY\n").encode("utf-16")
_GBK = (HEADER + "用户一,order,2024-01-01T00:00:00Z,10,CNY\n").encode("gbk")
_LATIN1 = (HEADER + "José,order,2024-01-01T00:00:00Z,10,EUR\n").encode("latin-1")
_JSON = '{"user_id": "u1", "event_type": "order", "ts": "2024-01-01T00:00:00Z"}'

GARBAGE: dict[str, object] = {  # a Garbage, or a pytest.param of one with marks
    "random_bytes": Garbage(_write("export.csv", _random_bytes(0, 64 * 1024)), r"binary"),
    "png_header": Garbage(
        _write("chart.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes(1, 2000)),
        r"binary",
    ),
    "zip_header": Garbage(
        _write("book.csv", b"PK\x03\x04\x14\x00\x06\x00" + _random_bytes(2, 2000)), r"binary"
    ),
    "utf16": Garbage(_write("unicode.csv", _UTF16), r"UTF-?(8|16)"),
    "gbk": Garbage(_write("gbk.csv", _GBK), r"not UTF-8.*iconv"),
    "latin1": Garbage(_write("latin1.csv", _LATIN1), r"not UTF-8.*iconv"),
    "empty": Garbage(_write("empty.csv", b""), r"empty"),
    "whitespace": Garbage(_write("blank.csv", b"  \n\t\r\n   \n\n"), r"empty"),
    "no_header": Garbage(
        _write("noheader.csv", "".join(good_row(i) for i in range(20)).encode()),
        r"looks like data.*header",
    ),
    "truncated_gzip": Garbage(_write("orders.csv.gz", _GZ[: len(_GZ) // 2]), r"gzip"),
    "not_gzip": Garbage(_write("plain.csv.gz", (HEADER + good_row(1)).encode()), r"gzip"),
    "csv_named_parquet": Garbage(
        _write("orders.parquet", (HEADER + good_row(1)).encode()), r"not a Parquet file"
    ),
    "corrupt_parquet": Garbage(
        _write("broken.parquet", b"PAR1" + _random_bytes(3, 4000) + b"PAR1"), r"cannot read"
    ),
    "jsonl_is_array": Garbage(
        _write("array.jsonl", f"[{_JSON}, {_JSON}]\n".encode()), r"one JSON object per line"
    ),
    "jsonl_is_text": Garbage(
        _write("notes.jsonl", b"these are my orders\nfrom last week\n"),
        r"one JSON object per line",
    ),
    "jsonl_broken_line": Garbage(
        _write("events.jsonl", (f"{_JSON}\n" * 3 + "{oops\n").encode()), r"not valid JSON Lines"
    ),
    "jsonl_broken_line_number": Garbage(
        _write("events.jsonl", (f"{_JSON}\n" * 3 + "{oops\n").encode()), r"line 4\b"
    ),
    "extra_fields_late": Garbage(
        _write("ragged_late.csv", _ragged(30_000, 5)), r"line 30002.*number of fields"
    ),
    "extra_fields_early": Garbage(_write("ragged_early.csv", _ragged(50, 50)), r"number of fields"),
    "extra_fields_tiny": Garbage(_write("ragged_tiny.csv", _ragged(1, 0)), r"number of fields"),
    "unterminated_quote": Garbage(
        _write("quote.csv", (HEADER + 'u1,order,"2024-01-01,1,USD\n' + good_row(2)).encode()),
        r"quot",
    ),
    "line_over_8mb": Garbage(
        _write(
            "long.csv", (HEADER + "u1,order,2024-01-01T00:00:00Z,1," + "X" * 9_000_000).encode()
        ),
        r"longer than 8 MB",
    ),
    "unknown_extension": Garbage(_write("orders.xlsx", b"PK\x03\x04junk"), r"file format"),
    "nonexistent": Garbage(lambda d: str(d / "missing" / "orders.csv"), r"does not exist"),
    "glob_nothing": Garbage(_glob_nothing, r"no file matches", named="*.csv"),
    "empty_directory": Garbage(_empty_dir, r"no files"),
    "directory_without_data_files": Garbage(_dir_of_other_files, r"no files"),
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.mark.parametrize("case", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_gives_one_clear_line(case: Garbage, workspace: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    arg = case.build(inputs)

    code, out = run_cli(["-w", str(workspace), "ingest", "events", arg])

    line = assert_one_clear_line(out)
    assert code == 1, out
    assert (case.named or Path(arg).name) in line
    assert re.search(case.says, line.replace(arg, "<input>"), re.IGNORECASE), line
    assert counts(workspace) == {"events": 0, "loads": 0, "quarantine": 0}


def test_two_gigabyte_single_line(workspace: Path, tmp_path: Path) -> None:
    """A 2 GiB file without a newline (sparse: ~1 MiB of data) is refused, not read."""
    path = tmp_path / "huge.csv"
    if shutil.disk_usage(tmp_path).free < (5 << 29):
        pytest.skip("needs 2.5 GiB free in case the filesystem cannot hold sparse files")
    path.write_bytes(b"a" * (1100 << 10))
    os.truncate(path, 2 << 30)
    if path.stat().st_blocks * 512 > (64 << 20):
        path.unlink()
        pytest.skip("the filesystem does not keep sparse files sparse")

    code, out = run_cli(["-w", str(workspace), "ingest", "events", str(path)])

    line = assert_one_clear_line(out)
    assert code == 1
    assert "huge.csv" in line
    assert re.search(r"line 1 is longer than", line), line
    assert counts(workspace) == {"events": 0, "loads": 0, "quarantine": 0}


def test_markup_in_a_header_is_printed_not_interpreted(workspace: Path, tmp_path: Path) -> None:
    """Column names end up in the message; Rich must not read them as markup."""
    path = tmp_path / "odd.csv"
    path.write_text("[/x],[bold]amount\n1,2\n")
    code, out = run_cli(["-w", str(workspace), "ingest", "events", str(path)])
    line = assert_one_clear_line(out)
    assert code == 1
    assert "[/x]" in line
    assert "[bold]amount" in line


def test_newline_in_a_header_keeps_the_message_on_one_line(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "multiline_header.csv"
    path.write_text('"order\nid",amount\n1,2\n')
    code, out = run_cli(["-w", str(workspace), "ingest", "events", str(path)])
    assert code == 1
    assert_one_clear_line(out)


def test_mixed_line_endings_are_refused_with_the_fix(workspace: Path, tmp_path: Path) -> None:
    """Known limit (docs/decisions/0001): DuckDB's strict CSV parser cannot read a file that
    mixes LF and CRLF (two exports concatenated); liucun says so and how to fix it."""
    path = tmp_path / "concatenated.csv"
    path.write_bytes((HEADER + good_row(1) + good_row(2).replace("\n", "\r\n")).encode())
    code, out = run_cli(["-w", str(workspace), "ingest", "events", str(path)])
    assert code == 1, out
    assert_one_clear_line(out)
    assert re.search(r"line endings.*dos2unix", out)
    assert counts(workspace) == {"events": 0, "loads": 0, "quarantine": 0}


# -- arbitrary bytes ----------------------------------------------------------------------

_FIELD = st.one_of(
    st.sampled_from(
        ["u1", "u2", "order", "view", "2024-03-01T10:00:00Z", "1700000000", "12.5", "USD", ""]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)


@st.composite
def _csvish(draw: st.DrawFn) -> bytes:
    """Text that looks like CSV: a header, then rows of mostly the header's width."""
    header = draw(st.sampled_from([HEADER.strip(), "ts,event_type,user_id,revenue", "a,b,c"]))
    width = header.count(",") + 1
    row = st.one_of(
        st.lists(_FIELD, min_size=width, max_size=width),
        st.lists(_FIELD, min_size=width, max_size=width),
        st.lists(_FIELD, min_size=1, max_size=width + 2),
    ).map(",".join)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return (header + eol + eol.join(draw(st.lists(row, max_size=8))) + eol).encode()


ARBITRARY_BYTES = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=400).map(lambda s: s.encode("utf-8", "surrogatepass")),
    _csvish(),
    _csvish(),
)


@pytest.fixture(scope="module")
def shared_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("fuzz") / "ws")


def loads(ws: Path) -> list[dict[str, object]]:
    with open_workspace(ws) as opened:
        return opened.warehouse.table("loads").to_pyarrow().to_pylist()


def _check_arbitrary_bytes(data: bytes, workspace: Path) -> None:
    """Any bytes named .csv: exit 0 with counts that add up; or exit 1 with one line and
    nothing changed; or exit 1 with one line saying that no row was accepted, after a load
    that kept its rejected rows in the quarantine."""
    path = workspace.parent / "fuzz.csv"
    path.write_bytes(data)
    before, earlier = counts(workspace), {row["load_id"] for row in loads(workspace)}

    code, out = run_cli(["-w", str(workspace), "ingest", "events", str(path)])

    assert "Traceback" not in out, out
    after = counts(workspace)
    nothing = code == 1 and assert_one_clear_line(out).startswith("NothingLoaded: ")
    event("nothing loaded" if nothing else f"exit {code}")
    if code == 1 and not nothing:
        assert after == before
        return
    assert code in (0, 1), out
    (last,) = [row for row in loads(workspace) if row["load_id"] not in earlier]
    assert last["rows_read"] == (
        last["accepted"] + last["updated"] + last["duplicates"] + last["quarantined"]
    )
    assert after["events"] - before["events"] == last["accepted"]
    assert 0 <= after["quarantine"] - before["quarantine"] <= last["quarantined"]


@settings(derandomize=True, max_examples=25, deadline=None)
@given(data=ARBITRARY_BYTES)
@example(data=(HEADER + good_row(1) + good_row(2)).encode())
@example(
    data=f"\ufeff{HEADER}{good_row(1)}u2,order,soon,1,USD\n,,,,\n".replace("\n", "\r\n").encode()
)
@example(data=HEADER.encode())
def test_arbitrary_bytes_load_cleanly_or_fail_in_one_line(
    data: bytes, shared_workspace: Path
) -> None:
    _check_arbitrary_bytes(data, shared_workspace)


@pytest.mark.slow
@settings(
    derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=ARBITRARY_BYTES)
def test_many_arbitrary_bytes_load_cleanly_or_fail_in_one_line(
    data: bytes, shared_workspace: Path
) -> None:
    _check_arbitrary_bytes(data, shared_workspace)
