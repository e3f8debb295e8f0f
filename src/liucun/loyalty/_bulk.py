"""Bulk statements for the batch write path, on PostgreSQL and SQLite (SQLAlchemy Core).

Thousands of rows per statement are cheap for the database but not for the client when
each row is its own set of placeholders: a multi-row ``VALUES`` with 20,000 parameters
is rebuilt and re-parsed for every batch (psycopg spent most of a batch doing that), and
``RETURNING`` in parameter order makes SQLAlchemy send one row per statement on SQLite.
So:

- **PostgreSQL**: new rows go by ``COPY … FROM STDIN`` (psycopg's copy, in the
  batch's transaction); updates and the accounts' insert-if-missing take one array per
  column (``UPDATE … FROM (SELECT unnest(:a), unnest(:b) …) v WHERE t.id = v.id``);
  lookups take ``= ANY(:array)``. The statement text is the same for every batch.
- **SQLite**: the driver's ``executemany`` (a prepared statement run per row in C);
  lookups use ``IN`` lists of at most :data:`IN_LIST` values.
- **Ids** are allocated before the insert — ``nextval`` of the table's sequence on
  PostgreSQL; ``max(id) + 1 …`` on SQLite, where the batch holds the write lock
  (``BEGIN IMMEDIATE``), so they are the ids the database would have given — and no
  ``RETURNING`` is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Table,
    any_,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

#: Values per ``IN (…)`` list on SQLite.
IN_LIST = 1000


def dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def select_in(
    s: Session,
    columns: Sequence[Any],
    column: Any,
    values: Sequence[Any],
    *where: Any,
    lock: bool = False,
) -> list[Any]:
    """Rows of ``columns`` whose ``column`` is one of ``values`` (and ``where`` holds);
    with ``lock``, locked ``FOR UPDATE`` in the order of ``column`` (sort ``values``)."""
    if not values:
        return []

    def run(query: Any) -> list[Any]:
        if lock:
            query = query.order_by(column).with_for_update()
        return list(s.execute(query))

    if dialect(s) == "postgresql":
        wanted = cast(bindparam(None, list(values)), _array(column.type))
        return run(select(*columns).where(column == any_(wanted), *where))
    rows: list[Any] = []
    for i in range(0, len(values), IN_LIST):
        part = list(values[i : i + IN_LIST])
        rows.extend(run(select(*columns).where(column.in_(part), *where)))
    return rows


def next_ids(s: Session, table: Table, n: int) -> list[int]:
    """``n`` new ids of ``table``, increasing."""
    if n == 0:
        return []
    if dialect(s) == "postgresql":
        seq = s.scalar(select(func.pg_get_serial_sequence(table.name, "id")))
        query = select(func.nextval(seq)).select_from(func.generate_series(1, n))
        return sorted(int(v) for v in s.scalars(query))
    top = int(s.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0)
    return list(range(top + 1, top + 1 + n))


def insert_rows(s: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    if dialect(s) == "postgresql":
        _copy(s, table, rows)
        return
    s.execute(insert(table), rows)


def _copy(s: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """``COPY table (cols) FROM STDIN`` in the session's transaction (psycopg composes the
    statement from quoted identifiers; the rows go as data, never as SQL)."""
    from psycopg import sql

    cols = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, cols))
    )
    raw = s.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in cols])


def insert_missing(
    s: Session, table: Table, rows: list[dict[str, Any]], unique: Sequence[str]
) -> None:
    """Insert the ``rows`` whose ``unique`` columns are not in ``table`` yet."""
    if not rows:
        return
    if dialect(s) == "postgresql":
        cols = list(rows[0])
        statement = postgresql.insert(table).from_select(cols, _unnest(table, rows, cols))
        s.execute(statement.on_conflict_do_nothing(index_elements=list(unique)))
        return
    s.execute(sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique)), rows)


def update_rows(s: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Set the columns given in ``rows`` (dicts with ``id`` and the same keys) by id."""
    if not rows:
        return
    cols = [c for c in rows[0] if c != "id"]
    if dialect(s) == "postgresql":
        v = _unnest(table, rows, ["id", *cols]).subquery("v")
        s.execute(update(table).where(table.c.id == v.c.id).values({c: v.c[c] for c in cols}))
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({c: bindparam(f"b_{c}") for c in cols})
    )
    s.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])


def _unnest(table: Table, rows: list[dict[str, Any]], cols: list[str]) -> Any:
    """``SELECT unnest(:col1), unnest(:col2), …`` over one array per column."""
    parts = []
    for c in cols:
        kind = table.c[c].type
        values = [row[c] for row in rows]
        array = cast(bindparam(None, values, type_=_array(kind)), _array(kind))
        parts.append(func.unnest(array, type_=kind).label(c))
    return select(*parts)


def _array(kind: TypeEngine[Any]) -> postgresql.ARRAY[Any]:
    return postgresql.ARRAY(kind)
