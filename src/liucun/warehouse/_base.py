"""What every warehouse offers, whichever backend stores the tables."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.duckdb import Backend as DuckDBBackend

from liucun.schema import TABLES
from liucun.warehouse._engine import FileFormat, drop_view, read_arrow, read_file, temp_table


class Writer(ABC):
    """Collects the writes of one transaction; nothing is visible until it commits."""

    @abstractmethod
    def append(self, table: str, rows: ir.Table) -> int:
        """Append ``rows`` (an engine expression with the table's columns); return the count."""

    @abstractmethod
    def upsert(self, table: str, rows: ir.Table, key: Sequence[str]) -> None:
        """Replace the rows of ``table`` whose ``key`` appears in ``rows``, and add the rest."""


class Warehouse(ABC):
    """One workspace's store of canonical tables.

    Who may read and write when is docs/decisions/0006-warehouse-concurrency.md.
    Two Ibis connections are involved: :attr:`engine`, an in-process DuckDB that parses,
    validates and deduplicates input and in which every canonical table is visible by
    name; and the analytics connection behind :meth:`table`, which is the same DuckDB
    for the default store and a Spark session for the Parquet store.
    """

    url: str
    engine: DuckDBBackend

    @abstractmethod
    def table(self, name: str) -> ir.Table:
        """Canonical table ``name`` on the analytics backend."""

    def engine_table(self, name: str) -> ir.Table:
        """Canonical table ``name`` as the ingest engine sees it."""
        _check_table(name)
        return self.engine.table(name)

    @abstractmethod
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """A unit of work: every write in it lands, or none does.

        Outside a :meth:`writing` block it takes the store for writing for its own
        duration (waiting, bounded, for another writer), so a handle opened for reading
        writes without ceremony.
        """

    @abstractmethod
    @contextlib.contextmanager
    def writing(self) -> Iterator[Warehouse]:
        """Hold the store for writing for the whole block (several transactions).

        One process writes at a time: entering waits up to the handle's ``wait_s`` for
        another writer (and, on DuckDB, for readers in other processes), then raises
        :class:`~liucun.core.WarehouseBusy` naming the process that holds it. Blocks
        nest; leaving the outermost one releases the store and goes back to reading.
        """

    @property
    @abstractmethod
    def backend_name(self) -> str:
        """Short name of the analytics backend ('duckdb' or 'pyspark')."""

    def read_file(self, path: Path, fmt: FileFormat, *, name: str) -> ir.Table:
        """Expose a file to the engine as a table with a ``_line`` column."""
        return read_file(self.engine, path, fmt, name=name)

    def read_arrow(self, data: pa.Table, *, name: str) -> ir.Table:
        """Expose in-memory Arrow data to the engine as a table with a ``_line`` column."""
        return read_arrow(self.engine, data, name=name)

    def forget(self, name: str) -> None:
        """Drop a view made by :meth:`read_file` or a temp table made by :meth:`materialize`."""
        with contextlib.suppress(Exception):
            drop_view(self.engine, name)
        with contextlib.suppress(Exception):
            self.engine.drop_table(name, force=True)

    def materialize(self, expr: ir.Table, *, name: str) -> ir.Table:
        """Compute ``expr`` once into an engine temp table and return that table."""
        return temp_table(self.engine, name, expr)

    def count(self, name: str) -> int:
        """Rows in canonical table ``name``."""
        return int(self.engine_table(name).count().to_pyarrow().as_py())

    @abstractmethod
    def close(self) -> None:
        """Release connections and file locks."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_table(name: str) -> None:
    if name not in TABLES:
        known = ", ".join(sorted(TABLES))
        raise KeyError(f"no canonical table {name!r}; the tables are {known}")
