"""The default store: every canonical table in one DuckDB file.

Transactions are DuckDB transactions, so a load that fails or is killed part-way leaves
the file as it was (DuckDB replays only committed work from its write-ahead log).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import ibis.expr.types as ir
import sqlglot as sg
import sqlglot.expressions as sge

from liucun.core import WarehouseError
from liucun.schema import TABLES, ibis_schema
from liucun.warehouse._base import Warehouse, Writer, _check_table
from liucun.warehouse._engine import new_engine, temp_table

#: Tables whose rows carry the ``load_id`` of the load that wrote them.
ORPHAN_TABLES = ("events", "users", "identities", "identity_links", "quarantine")


class _DuckDBWriter(Writer):
    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self._wh = warehouse

    def append(self, table: str, rows: ir.Table) -> int:
        _check_table(table)
        before = self._wh.count(table)
        raw = self._wh.engine.con
        # Stored row order carries no meaning, so let DuckDB write in parallel.
        raw.execute("SET preserve_insertion_order = false")
        try:
            self._wh.engine.insert(table, rows.select(*ibis_schema(table).names))
        finally:
            raw.execute("SET preserve_insertion_order = true")
        return self._wh.count(table) - before

    def upsert(self, table: str, rows: ir.Table, key: Sequence[str]) -> None:
        _check_table(table)
        con = self._wh.engine
        staged_name = f"_upsert_{table}"
        staged = temp_table(con, staged_name, rows)
        target = sg.table(table, quoted=True)
        keys = sge.Tuple(expressions=[sg.column(k, table=table, quoted=True) for k in key])
        subquery = sg.select(*[sg.column(k, quoted=True) for k in key]).from_(
            sg.table(staged_name, quoted=True)
        )
        delete = sge.Delete(this=target, where=sge.Where(this=keys.isin(query=subquery.subquery())))
        con.raw_sql(delete)
        con.insert(table, staged.select(*ibis_schema(table).names))
        con.drop_table(staged_name, force=True)


class DuckDBWarehouse(Warehouse):
    """Canonical tables in the DuckDB file at ``path``."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.url = f"duckdb:///{self.path}"
        unclean = self.path.with_name(self.path.name + ".wal").exists()
        try:
            self.engine = new_engine(self.path, threads=threads)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseError(
                    f"the warehouse {self.path} is in use by another process; wait for it "
                    "to finish (only one liucun command can write a workspace at a time)"
                ) from None
            raise WarehouseError(f"cannot open the warehouse {self.path}: {exc}") from None
        self._create_tables()
        if unclean:
            self.sweep_orphans()

    def sweep_orphans(self) -> int:
        """Delete rows of loads that never committed; returns how many were removed.

        The ``loads`` row is written last in every load's transaction, so a row whose
        ``load_id`` has no ``loads`` row belongs to a load that did not finish. DuckDB 1.5
        can replay the row groups of a big insert whose commit record was torn (see
        docs/decisions/0001-foundation.md); this sweep, run after an unclean shutdown,
        restores all-or-nothing.
        """
        loads = sg.select(sg.column("load_id", quoted=True)).from_(sg.table("loads", quoted=True))
        removed = 0
        for name in ORPHAN_TABLES:
            where = sge.Not(this=sg.column("load_id", quoted=True).isin(query=loads.subquery()))
            delete = sge.Delete(this=sg.table(name, quoted=True), where=sge.Where(this=where))
            removed += int(self.engine.raw_sql(delete).fetchone()[0])
        if removed:
            self.engine.con.execute("CHECKPOINT")
        return removed

    @property
    def backend_name(self) -> str:
        return "duckdb"

    def _create_tables(self) -> None:
        existing = set(self.engine.list_tables())
        for name in TABLES:
            if name not in existing:
                self.engine.create_table(name, schema=ibis_schema(name))

    def table(self, name: str) -> ir.Table:
        return self.engine_table(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        raw = self.engine.con
        raw.begin()
        try:
            yield _DuckDBWriter(self)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
        raw.execute("CHECKPOINT")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.disconnect()
