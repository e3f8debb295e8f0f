"""The scale-out store: each canonical table a directory of Parquet files, read by Spark.

Writes go through the DuckDB ingest engine, which streams each table's new files into a
hidden staging directory. Commit writes a journal (the commit point, made atomic by a
rename), then moves the files into place and deletes the journal. A crash before the
journal exists leaves only staging directories, which the next open removes (roll back);
a crash after it is finished by the next open (roll forward). Spark and DuckDB both skip
paths that start with ``.`` or ``_``, so readers never see staged files.

Writers are serialized by an exclusive ``flock`` on ``_lock`` in the root, held for a
:meth:`~ParquetWarehouse.writing` block or one transaction (the holder's PID is written
into it, so a waiter can say who it is). Recovery deletes staging directories, so it runs
only under that lock: at every open (briefly, waiting for a writer) and at the start of
every write. Readers hold no lock: a query reads the files committed when it runs; one
that overlaps the few renames of a commit may see some tables of it before the others.
See docs/decisions/0006-warehouse-concurrency.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow.parquet as pq

from liucun.core import WarehouseError
from liucun.schema import TABLES, arrow_schema, ibis_schema
from liucun.warehouse._base import Warehouse, Writer, _check_table
from liucun.warehouse._engine import new_engine
from liucun.warehouse._locks import DEFAULT_WAIT_S, FileLock

JOURNAL_DIR = "_journal"
LOCK_FILE = "_lock"


class _ParquetWriter(Writer):
    def __init__(self, wh: ParquetWarehouse, tx: str) -> None:
        self._wh, self._tx = wh, tx
        self.ops: list[dict[str, Any]] = []

    def _stage(self, table: str, rows: ir.Table) -> tuple[list[str], int]:
        staging = self._wh.root / table / f".staging-{self._tx}"
        staging.mkdir(parents=True, exist_ok=True)
        schema = arrow_schema(table)
        part = staging / f"part-{self._tx}-{len(self.ops):04d}.parquet"
        reader = self._wh.engine.to_pyarrow_batches(
            rows.select(*schema.names).cast(ibis_schema(table)), chunk_size=500_000
        )
        n = 0
        with pq.ParquetWriter(part, schema, compression="zstd") as out:
            for batch in reader:
                out.write_batch(batch.cast(schema))
                n += batch.num_rows
        return [str(part.relative_to(self._wh.root))], n

    def append(self, table: str, rows: ir.Table) -> int:
        _check_table(table)
        files, n = self._stage(table, rows)
        self.ops.append({"table": table, "delete": [], "add": files})
        return n

    def upsert(self, table: str, rows: ir.Table, key: Sequence[str]) -> None:
        _check_table(table)
        current = self._wh.engine_table(table)
        kept = current.anti_join(rows.select(*key), list(key))
        merged = kept.union(rows.select(*ibis_schema(table).names).cast(ibis_schema(table)))
        existing = [str(p.relative_to(self._wh.root)) for p in self._wh.data_files(table)]
        files, _ = self._stage(table, merged)
        self.ops.append({"table": table, "delete": existing, "add": files})


class ParquetWarehouse(Warehouse):
    """Canonical tables as Parquet directories under ``root``; analytics on Spark."""

    def __init__(
        self,
        root: Path,
        *,
        master: str = "local[2]",
        read_only: bool = False,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> None:
        self.root = Path(root)
        self.master = master
        self.url = f"pyspark://{master}"
        self.wait_s = wait_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.root / LOCK_FILE)
        self._writers = 0
        self._hold: contextlib.ExitStack | None = None
        if read_only:
            with self.writing():  # recovery and missing tables, under the writers' lock
                pass
        else:
            self._hold = contextlib.ExitStack()
            self._hold.enter_context(self.writing())
        self.engine = new_engine()
        for name in TABLES:
            glob = str(self.root / name / "*.parquet")
            self.engine.con.register(name, self.engine.con.read_parquet(glob, union_by_name=True))
        self._spark: Any = None

    @property
    def backend_name(self) -> str:
        return "pyspark"

    def data_files(self, table: str) -> list[Path]:
        """The committed Parquet files of ``table``."""
        return sorted((self.root / table).glob("*.parquet"))

    def _init_tables(self) -> None:
        for name in TABLES:
            folder = self.root / name
            if not folder.exists():
                folder.mkdir(parents=True)
                empty = arrow_schema(name).empty_table()
                pq.write_table(empty, folder / "part-init.parquet")

    def recover(self) -> None:
        """Finish committed transactions and drop uncommitted staging after a crash."""
        journal = self.root / JOURNAL_DIR
        for entry in sorted(journal.glob("*.json")) if journal.exists() else []:
            self._apply(json.loads(entry.read_text()))
            entry.unlink()
        for staging in self.root.glob("*/.staging-*"):
            shutil.rmtree(staging, ignore_errors=True)

    def _apply(self, ops: list[dict[str, Any]]) -> None:
        """Carry out a journal's file operations (paths relative to the root; idempotent)."""
        for op in ops:
            for path in op["delete"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.root / path)
            for src in op["add"]:
                staged = self.root / src
                if staged.exists():
                    os.replace(staged, self.root / op["table"] / staged.name)

    @contextlib.contextmanager
    def writing(self) -> Iterator[ParquetWarehouse]:
        """Hold the writers' lock for the block (waiting up to ``wait_s``); blocks nest.

        Taking it finishes or rolls back whatever a killed writer left (:meth:`recover`).
        """
        if self._writers == 0:
            self._lock.acquire(exclusive=True, what=str(self.root), wait_s=self.wait_s)
            try:
                self.recover()
                self._init_tables()
            except BaseException:
                self._lock.release()
                raise
        self._writers += 1
        try:
            yield self
        finally:
            self._writers -= 1
            if self._writers == 0:
                self._lock.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        with self.writing():
            yield from self._transaction()

    def _transaction(self) -> Iterator[Writer]:
        tx = uuid.uuid4().hex[:12]
        writer = _ParquetWriter(self, tx)
        try:
            yield writer
        except BaseException:
            for staging in self.root.glob(f"*/.staging-{tx}"):
                shutil.rmtree(staging, ignore_errors=True)
            raise
        journal = self.root / JOURNAL_DIR
        journal.mkdir(exist_ok=True)
        tmp = journal / f".{tx}.tmp"
        tmp.write_text(json.dumps(writer.ops))
        os.replace(tmp, journal / f"{tx}.json")  # the commit point
        self._apply(writer.ops)
        (journal / f"{tx}.json").unlink()
        for staging in self.root.glob(f"*/.staging-{tx}"):
            shutil.rmtree(staging, ignore_errors=True)

    def spark(self) -> Any:
        """The Ibis PySpark connection (started on first use)."""
        if self._spark is None:
            try:
                from pyspark.sql import SparkSession
            except ImportError:
                raise WarehouseError(
                    "the pyspark warehouse needs the 'spark' extra: pip install 'liucun[spark]'"
                ) from None
            session = (
                SparkSession.builder.master(self.master)
                .appName("liucun")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.log.level", "ERROR")
                .getOrCreate()
            )
            self._spark = ibis.pyspark.connect(session)
        return self._spark

    def table(self, name: str) -> ir.Table:
        _check_table(name)
        return self.spark().read_parquet(str(self.root / name), table_name=f"liucun_{name}")

    def close(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.close()
        with contextlib.suppress(Exception):
            self.engine.disconnect()
