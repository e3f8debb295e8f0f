"""The exposure log in state: idempotent bulk inserts and reads by id for the sync.

Bulk paths go through the driver directly (one ``executemany`` of tuples in, one
``fetchall`` out, converted column-wise with Arrow): SQLAlchemy's per-row type
processing made a 200 k-row copy 5x slower. SQLite keeps timestamps as text in
SQLAlchemy's format (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so ORM reads of the same
rows agree with the bulk path; PostgreSQL takes and returns ``timestamptz`` natively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from liucun.state._models import Exposure

#: The columns of an exposure row, in the warehouse's order (``id`` is state's own).
EXPOSURE_COLUMNS = (
    "exposure_id",
    "experiment",
    "layer",
    "unit_type",
    "unit_id",
    "variant",
    "probability",
    "holdout",
    "ts",
    "load_id",
)
_BATCH = 20_000
#: Arrow's %S prints microseconds for a "us" timestamp: "2026-07-02 09:00:00.000000".
_SQLITE_TS = "%Y-%m-%d %H:%M:%S"
_UTC_TS = pa.timestamp("us", tz="UTC")


def insert_exposures(session: Session, rows: pa.Table) -> int:
    """Insert ``rows`` (the :data:`EXPOSURE_COLUMNS`), skipping exposure ids already
    logged; return how many were new. The caller commits."""
    connection = session.connection()
    dialect = connection.dialect
    stmt = (sqlite.insert if dialect.name == "sqlite" else postgresql.insert)(Exposure)
    stmt = stmt.on_conflict_do_nothing(index_elements=["exposure_id"])
    compiled = stmt.values({c: None for c in EXPOSURE_COLUMNS}).compile(dialect=dialect)
    columns = _driver_columns(rows.select(list(EXPOSURE_COLUMNS)), dialect.name)
    params: list[Any]
    if compiled.positiontup:  # SQLite: qmark placeholders take tuples
        params = list(zip(*(columns[n] for n in compiled.positiontup), strict=True))
    else:  # psycopg: named placeholders take mappings
        names = list(EXPOSURE_COLUMNS)
        values = zip(*(columns[n] for n in names), strict=True)
        params = [dict(zip(names, row, strict=True)) for row in values]
    # Both drivers report the rows an executemany inserted (a refused duplicate adds 0),
    # so no COUNT(*) over the whole log is needed: a one-row log call stays cheap.
    inserted = 0
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(params), _BATCH):
            cursor.executemany(compiled.string, params[start : start + _BATCH])
            inserted += max(cursor.rowcount, 0)
    finally:
        cursor.close()
    return inserted


def _driver_columns(rows: pa.Table, dialect: str) -> dict[str, list[Any]]:
    ts = rows["ts"].cast(_UTC_TS)
    out = {name: rows[name].to_pylist() for name in rows.column_names if name != "ts"}
    if dialect == "sqlite":
        naive = ts.cast(pa.timestamp("us"))
        out["ts"] = pc.strftime(naive, format=_SQLITE_TS).to_pylist()
    else:
        out["ts"] = ts.to_pylist()
    return out


def count_exposures(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Exposure)) or 0)


def max_exposure_id(session: Session) -> int:
    """The highest ``id`` in the log (0 when it is empty)."""
    return int(session.scalar(select(func.max(Exposure.id))) or 0)


def exposures_after(session: Session, after_id: int, *, schema: pa.Schema) -> pa.Table:
    """Rows with ``id > after_id`` as Arrow with ``schema`` plus ``id``, oldest first."""
    names = ("id", *EXPOSURE_COLUMNS)
    table = Exposure.__table__
    query = select(*[table.c[n] for n in names]).where(table.c.id > after_id).order_by(table.c.id)
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    params = (
        [compiled.params[k] for k in compiled.positiontup]
        if compiled.positiontup
        else (compiled.params)
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, params)
        records = cursor.fetchall()
    finally:
        cursor.close()
    full = schema.append(pa.field("id", pa.int64(), nullable=False))
    columns: list[Sequence[Any]] = (
        list(zip(*records, strict=True)) if records else [[] for _ in names]
    )
    arrays = dict(zip(names, columns, strict=True))
    return pa.table(
        {f.name: _to_arrow(f, arrays[f.name], connection.dialect.name) for f in full},
        schema=full,
    )


def _to_arrow(field: pa.Field, values: Any, dialect: str) -> pa.Array:
    if field.name == "ts" and dialect == "sqlite":  # naive UTC text → aware UTC
        return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(field.type)
    if field.name == "holdout":
        return pa.array([bool(v) for v in values], field.type)
    return pa.array(values, field.type)
