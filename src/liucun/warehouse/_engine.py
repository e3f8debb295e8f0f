"""The ingest engine: an in-process DuckDB, reached through Ibis.

Files are parsed and validated column-wise by DuckDB, whatever backend stores the data.
This module holds the DuckDB-specific pieces that the portable Ibis API lacks: file
readers with their options, and a handful of DuckDB functions declared as Ibis builtins.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.duckdb import Backend as DuckDBBackend

from liucun.core import InvalidInput

FileFormat = Literal["csv", "tsv", "parquet", "jsonl"]

#: Column added by :func:`read_file`: the 1-based line of the row in its file
#: (CSV/TSV: the header is line 1; Parquet: the row number).
LINE = "_line"


def new_engine(
    path: str | Path | None = None,
    *,
    threads: int | None = None,
    temp_directory: str | Path | None = None,
) -> DuckDBBackend:
    """Open a DuckDB connection configured the way ingestion needs it (UTC session).

    ``temp_directory`` is where an in-memory engine spills (DuckDB's default: ``.tmp`` in
    the current directory).
    """
    config: dict[str, Any] = {} if threads is None else {"threads": threads}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    con = ibis.duckdb.connect(str(path) if path is not None else ":memory:", **config)
    con.con.execute("SET TimeZone = 'UTC'")  # needs ICU, which loads on first use
    # Spark's name for "UTC instant → wall-clock time in a zone", so one Ibis builtin
    # (from_utc_timestamp below) works on both backends. TEMP: visible whichever database
    # is in USE (the warehouse store attaches its file and uses it).
    con.con.execute(
        "CREATE OR REPLACE TEMP MACRO from_utc_timestamp(ts, tz) AS "
        "timezone(tz, CAST(ts AS TIMESTAMPTZ))"
    )
    return con


def read_file(con: DuckDBBackend, path: Path, fmt: FileFormat, *, name: str) -> ir.Table:
    """Register ``path`` as view ``name`` and return it with a :data:`LINE` column.

    CSV and TSV are read with every column as text (types are checked later, so a bad
    value quarantines one row instead of failing the file); Parquet keeps its types;
    JSON Lines is read with type detection and then cast to text per column as needed.
    """
    src = str(path)
    offset = 1
    if fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else ","
        names, header_lines = csv_header(path, delimiter)
        # The header is parsed here, not sniffed by DuckDB: sniffing guesses (it may skip
        # rows or read a wide data row as the header) and its line numbers drift.
        rel = con.con.read_csv(
            src,
            header=False,
            skiprows=header_lines,
            columns=dict.fromkeys(names, "VARCHAR"),
            auto_detect=False,
            delimiter=delimiter,
            quotechar='"',
            escapechar='"',
            null_padding=False,
            max_line_size=8_000_000,
        )
        offset = header_lines + 1
    elif fmt == "parquet":
        rel = con.con.read_parquet(src)
    elif fmt == "jsonl":
        rel = con.con.read_json(
            src, format="newline_delimited", records="true", maximum_object_size=16_777_216
        )
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(fmt)
    # Copy the rows once into a temp table, whose rowid follows the file's order (DuckDB
    # preserves insertion order), and number them from it: one parallel read and parse, and
    # every later query (checks, rejected rows) runs on memory. Measured faster than
    # querying the file directly, even for Parquet and its file_row_number.
    return _numbered_copy(con, rel, name=name, offset=offset)


def _numbered_copy(
    con: DuckDBBackend, rel: duckdb.DuckDBPyRelation, *, name: str, offset: int
) -> ir.Table:
    con.con.register(f"{name}_src", rel)
    try:
        temp_table(con, f"{name}_raw", con.table(f"{name}_src"))
    finally:
        con.con.unregister(f"{name}_src")
    line = duckdb.ColumnExpression("rowid") + duckdb.ConstantExpression(offset)
    numbered = con.con.table(f"{name}_raw").select(duckdb.StarExpression(), line.alias(LINE))
    con.con.register(name, numbered)
    return con.table(name)


def read_arrow(con: DuckDBBackend, data: pa.Table, *, name: str) -> ir.Table:
    """Register in-memory Arrow data as view ``name`` with a :data:`LINE` (row number) column."""
    return _numbered_copy(con, con.con.from_arrow(data), name=name, offset=1)


def csv_header(path: Path, delimiter: str) -> tuple[list[str], int]:
    """Column names of a CSV/TSV file (gzip'd or not) and how many lines the header spans."""
    opener = gzip.open if path.suffix.lower() in (".gz", ".gzip") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:  # type: ignore[operator]
        head = fh.read(1 << 20)
    reader = csv.reader(io.StringIO(head), delimiter=delimiter, quotechar='"')
    try:
        first = next(reader)
    except (StopIteration, csv.Error):
        raise InvalidInput(f"{path}: the first line is not a readable header") from None
    names = [n.strip() or f"column_{i + 1}" for i, n in enumerate(first)]
    seen: set[str] = set()
    for n in names:
        if n.lower() in seen:
            raise InvalidInput(f"{path}: column {n!r} appears twice in the header; rename one")
        seen.add(n.lower())
    return names, reader.line_num


def temp_table(con: DuckDBBackend, name: str, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` into temp table ``name``, replacing one of that name.

    Not ``create_table(..., overwrite=True)``: for temp tables Ibis 12 then fills a
    scratch table and copies it, which doubles the cost.
    """
    con.drop_table(name, force=True)
    return con.create_table(name, expr, temp=True)


def drop_view(con: DuckDBBackend, name: str) -> None:
    """Forget what :func:`read_file` or :func:`read_arrow` registered as ``name``."""
    con.con.unregister(name)
    con.drop_table(f"{name}_raw", force=True)


_NAIVE_TS = dt.Timestamp(scale=6)
_UTC_TS = dt.Timestamp(timezone="UTC", scale=6)

# -- DuckDB functions used by the validators, as Ibis builtins -----------------------------


@ibis.udf.scalar.builtin(name="try_strptime")
def try_strptime(value: str, fmt: str) -> _NAIVE_TS:  # type: ignore[empty-body,valid-type]
    """Parse ``value`` with strftime format ``fmt``; NULL when it does not match."""


@ibis.udf.scalar.builtin(name="timezone")
def local_to_utc(zone: str, value: _NAIVE_TS) -> _UTC_TS:  # type: ignore[empty-body,valid-type]
    """Interpret naive ``value`` as wall-clock time in ``zone`` and return it in UTC."""


@ibis.udf.scalar.builtin(name="epoch_us")
def epoch_us(value: _UTC_TS) -> int:  # type: ignore[empty-body,valid-type]
    """Microseconds since 1970-01-01 UTC."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp")
def from_utc_timestamp(value: _UTC_TS, zone: str) -> _NAIVE_TS:  # type: ignore[empty-body,valid-type]
    """Wall-clock time in ``zone`` of the UTC instant ``value`` (DuckDB: a macro that
    :func:`new_engine` defines; Spark: built in)."""


@ibis.udf.scalar.builtin(name="json_valid")
def json_valid(value: str) -> bool:  # type: ignore[empty-body]
    """True when ``value`` is valid JSON."""


@ibis.udf.scalar.builtin(name="json_merge_patch")
def json_merge_patch(a: str, b: str) -> str:  # type: ignore[empty-body]
    """Merge JSON object ``b`` into ``a``."""


#: What the engine raises when it cannot read or parse an input.
EngineError = duckdb.Error


_LINE_RE = re.compile(r"line:?\s*(\d+)", re.IGNORECASE)


def describe_read_error(exc: Exception, path: Path, fmt: FileFormat) -> str:
    """One sentence for a file the engine could not read: the file, the line and the fix."""
    text = " ".join(str(exc).split())
    low = text.lower()
    m = _LINE_RE.search(text)
    line = int(m.group(1)) - (1 if fmt == "jsonl" else 0) if m else None
    at = f" line {line}" if line is not None else ""
    where = f"{path}{':' if at else ''}{at}"
    if "expected number of columns" in low or "too many columns" in low:
        return (
            f"{where}: a row has a different number of fields than the header; check quoting "
            "and delimiters (a value with a comma must be in double quotes)"
        )
    if "unterminated quote" in low:
        return f"{where}: a quoted value is never closed; check for a stray double quote"
    if ("line size" in low and "exceed" in low) or "parallel csv reader" in low:
        # a line longer than DuckDB's whole read buffer (16 × max_line_size) is reported as
        # "The Parallel CSV Reader currently does not support a full read on this file"
        return f"{where}: a line is longer than 8 MB; this is not a usable line-based file"
    if "invalid state" in low:
        return (
            f"{path}: cannot be parsed as {fmt.upper()}; it may mix Windows (CRLF) "
            "and Unix (LF) line endings or hold stray quotes: re-export it, or convert the "
            "line endings (e.g. dos2unix)"
        )
    if "unicode" in low or "utf-8" in low or "utf8" in low:
        return f"{where}: not valid UTF-8 text; convert the file to UTF-8 (e.g. with iconv)"
    if fmt == "jsonl" and ("json" in low or "malformed" in low):
        return f"{where}: not valid JSON Lines (one JSON object per line); fix that line"
    first = text.split(" LINE ")[0][:240]
    return f"cannot read {where}: {first}"
