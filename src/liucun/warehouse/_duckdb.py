"""The default store: every canonical table in one DuckDB file.

Who holds the file, and for how long (docs/decisions/0006-warehouse-concurrency.md):
the engine is an in-memory DuckDB that ATTACHes the file as ``wh`` and USEs it, so the
canonical tables are visible by name beside the engine's temp tables. Opened for
reading, the file is attached READ_ONLY: many processes read at once and never block
each other. A write — a :meth:`~DuckDBWarehouse.writing` block, or one
:meth:`~DuckDBWarehouse.transaction` outside such a block — detaches the file and
attaches it read-write for the block only (staged inputs are engine temp tables, in
memory, and survive), then attaches it READ_ONLY again. Every attach waits, bounded,
for the process that holds the file (:func:`~liucun.warehouse._locks.wait_for`).

How a commit stays whole: the engine runs with ``checkpoint_threshold = 0`` and
``auto_checkpoint_skip_wal_threshold = 0``, so DuckDB commits each write transaction by
checkpointing it into the file, without writing it to the write-ahead log first; the new
database header, written last and in one block, is the commit point. A process killed
anywhere in a load leaves the previous file, and every reader (a plain
``duckdb.connect(path, read_only=True)`` too) sees the load whole or not at all. A
write-ahead log found at an open (left by an older liucun or another program; DuckDB 1.5
can replay the bulk rows of a torn commit, see decision 0006) is recovered first, under
a brief write open: replayed, swept of rows whose load never committed, and checkpointed
away.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import duckdb
import ibis.expr.types as ir
import sqlglot as sg
import sqlglot.expressions as sge

from liucun.core import WarehouseBusy, WarehouseError
from liucun.schema import TABLES, ibis_schema
from liucun.warehouse._base import Warehouse, Writer, _check_table
from liucun.warehouse._engine import new_engine, temp_table
from liucun.warehouse._locks import DEFAULT_WAIT_S, duckdb_holder, wait_for

log = logging.getLogger("liucun.warehouse")

#: Tables whose rows carry the ``load_id`` of the load that wrote them.
ORPHAN_TABLES = ("events", "users", "identities", "identity_links", "quarantine")
#: The name the warehouse file is attached under in the engine.
ALIAS = "wh"

_STORED_TABLES = "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary"


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log of the database file ``path``."""
    return path.with_name(path.name + ".wal")


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


class _Attachment:
    """This process's engine on one warehouse file, shared by every handle on the file.

    DuckDB refuses to attach one file twice in a process when either attachment is
    read-write ("Unique file handle conflict"), so all :class:`DuckDBWarehouse` handles
    on a file share one engine: ``mode`` is how the file is attached now, ``writers``
    how many write blocks are open (they nest), ``write_lock`` serializes this
    process's threads, and ``placeholders`` are the empty temp tables that stand in,
    while reading, for canonical tables the file does not have yet.
    """

    def __init__(self, path: Path, *, threads: int | None) -> None:
        self.path = path
        self.engine = new_engine(threads=threads, temp_directory=path.with_name(path.name + ".tmp"))
        # Commit by checkpoint, never through the write-ahead log (see the module doc):
        # checkpoint at every commit, and skip the log even for a small one (by default
        # DuckDB logs a commit estimated below 100 kB first, which a bulk insert's is:
        # its rows are already in the file, the log holds only pointers to them).
        self.engine.con.execute("SET checkpoint_threshold = '0b'")
        self.engine.con.execute("SET auto_checkpoint_skip_wal_threshold = 0")
        self.mode: Literal["read", "write"] | None = None
        self.writers = 0
        self.handles = 0
        self.write_lock = threading.RLock()
        self.placeholders: set[str] = set()

    # -- attaching -------------------------------------------------------------------

    def _attach(self, *, write: bool) -> None:
        """One attempt; raises :class:`~liucun.warehouse._locks.Held` when the file is held."""
        options = [] if write else [sge.AttachOption(this=sge.var("READ_ONLY"))]
        attach = sge.Attach(
            this=sge.alias_(sge.convert(str(self.path)), ALIAS), exists=False, expressions=options
        )
        con = self.engine.con
        try:
            con.execute(attach.sql("duckdb"))
        except duckdb.Error as exc:
            if (held := duckdb_holder(exc)) is not None:
                raise held from None
            message = " ".join(str(exc).split())
            raise WarehouseError(f"cannot open the warehouse {self.path}: {message}") from None
        con.execute(sge.Use(this=sg.table(ALIAS)).sql("duckdb"))
        self.mode = "write" if write else "read"

    def _detach(self) -> None:
        if self.mode is None:
            return
        con = self.engine.con
        con.execute(sge.Use(this=sg.table("memory")).sql("duckdb"))
        con.execute(sge.Detach(this=sg.to_identifier(ALIAS)).sql("duckdb"))
        self.mode = None

    def _attach_for_reading(self) -> None:
        """Attach READ_ONLY; a missing file, or one with a write-ahead log, is first
        created or recovered under a brief write attach."""
        if not self.path.exists() or wal_path(self.path).exists():
            unclean = wal_path(self.path).exists()
            self._attach(write=True)
            try:
                self._prepare_for_writing(unclean=unclean)
            finally:
                self._detach()
        self._attach(write=False)
        self._add_placeholders()

    def open_for_reading(self, wait_s: float) -> None:
        with self.write_lock:
            if self.mode is None:
                wait_for(
                    self._attach_for_reading, what=str(self.path), purpose="reading", wait_s=wait_s
                )

    def begin_write(self, wait_s: float) -> None:
        """Hold the file read-write (waiting up to ``wait_s``); blocks nest."""
        if not self.write_lock.acquire(timeout=max(0.0, wait_s)):
            raise WarehouseBusy(
                f"the warehouse {self.path} is being written by another thread of this "
                f"process, which held it for more than {wait_s:g} s; try again when it is done"
            )
        try:
            if self.writers == 0 and self.mode != "write":
                self._upgrade(wait_s)
            self.writers += 1
        except BaseException:
            self.write_lock.release()
            raise

    def _upgrade(self, wait_s: float) -> None:
        was_reading = self.mode == "read"
        self._detach()

        def attempt() -> bool:
            unclean = wal_path(self.path).exists()
            self._attach(write=True)
            return unclean

        try:
            unclean = wait_for(attempt, what=str(self.path), purpose="writing", wait_s=wait_s)
            self._prepare_for_writing(unclean=unclean)
        except BaseException:
            self._detach()
            if was_reading:  # keep reading, if the file lets us now; else at the next read
                with contextlib.suppress(Exception):
                    self.open_for_reading(0.0)
            raise

    def end_write(self, wait_s: float, *, then_read: bool) -> None:
        """Close one write block; the last one goes back to reading (or detaches).

        The writes are committed by then: when another process takes the file before it
        can be attached for reading again, that is logged and left to the next read
        (:meth:`DuckDBWarehouse.engine_table` attaches again), not raised.
        """
        try:
            self.writers -= 1
            if self.writers == 0:
                self._detach()  # DuckDB checkpoints anything still in the log here
                if then_read:
                    try:
                        self.open_for_reading(wait_s)
                    except WarehouseBusy as exc:
                        log.warning("%s; it is attached again at the next read", exc)
        finally:
            self.write_lock.release()

    # -- what a write open does first ------------------------------------------------

    def _stored_tables(self) -> set[str]:
        rows = self.engine.con.execute(_STORED_TABLES, [ALIAS]).fetchall()
        return {name for (name,) in rows}

    def _add_placeholders(self) -> None:
        """While reading, a canonical table the file lacks (a workspace made before the
        table existed) reads as empty; the first write creates it."""
        for name in sorted(set(TABLES) - self._stored_tables()):
            self.engine.create_table(name, schema=ibis_schema(name), temp=True)
            self.placeholders.add(name)

    def _prepare_for_writing(self, *, unclean: bool) -> None:
        for name in sorted(self.placeholders):
            drop = sge.Drop(
                this=sg.table(name, db="main", catalog="temp", quoted=True),
                kind="TABLE",
                exists=True,
            )
            self.engine.con.execute(drop.sql("duckdb"))
        self.placeholders.clear()
        existing = self._stored_tables()
        for name in TABLES:
            if name not in existing:
                self.engine.create_table(name, schema=ibis_schema(name))
        if unclean:
            self._recover()

    def _recover(self) -> None:
        """Sweep what a write-ahead log replayed, and make sure the log is gone.

        Measured on DuckDB 1.5.6 (decision 0006): after a torn log is replayed the file
        still has it, and a commit that skips the log (ours) leaves it in place, so the
        next open would replay it again on top of the newer file. A commit through the
        log, then a checkpoint, removes it; so recovery runs with DuckDB's defaults.
        """
        con = self.engine.con
        con.execute("RESET checkpoint_threshold")
        con.execute("RESET auto_checkpoint_skip_wal_threshold")
        try:
            self.sweep_orphans()
            if wal_path(self.path).exists():  # nothing was swept, so nothing was logged
                scratch = sg.table("_liucun_recovery", quoted=True)
                con.execute(
                    sge.Create(
                        this=sge.Schema(
                            this=scratch,
                            expressions=[
                                sge.ColumnDef(
                                    this=sg.to_identifier("x"),
                                    kind=sge.DataType.build("int"),
                                )
                            ],
                        ),
                        kind="TABLE",
                    ).sql("duckdb")
                )
                con.execute(sge.Drop(this=scratch, kind="TABLE").sql("duckdb"))
                con.execute("CHECKPOINT")
        finally:
            con.execute("SET checkpoint_threshold = '0b'")
            con.execute("SET auto_checkpoint_skip_wal_threshold = 0")

    def sweep_orphans(self) -> int:
        """Delete rows of loads that never committed (file attached read-write)."""
        loads = sg.select(sg.column("load_id", quoted=True)).from_(sg.table("loads", quoted=True))
        removed = 0
        for name in ORPHAN_TABLES:
            where = sge.Not(this=sg.column("load_id", quoted=True).isin(query=loads.subquery()))
            delete = sge.Delete(this=sg.table(name, quoted=True), where=sge.Where(this=where))
            removed += int(self.engine.raw_sql(delete).fetchone()[0])
        self.engine.con.execute("CHECKPOINT")
        return removed

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._detach()
        with contextlib.suppress(Exception):
            self.engine.disconnect()


# The attachments open in this process, by resolved file path: see _Attachment for why
# handles share them. Entries live exactly as long as a handle on the file is open.
_OPEN: dict[Path, _Attachment] = {}
_OPEN_LOCK = threading.Lock()


def _acquire(path: Path, *, threads: int | None) -> _Attachment:
    key = path.resolve()
    with _OPEN_LOCK:
        att = _OPEN.get(key)
        if att is None:
            att = _OPEN[key] = _Attachment(key, threads=threads)
        att.handles += 1
        return att


def _release(att: _Attachment) -> None:
    with _OPEN_LOCK:
        att.handles -= 1
        if att.handles > 0:
            return
        del _OPEN[att.path]
    att.close()


class DuckDBWarehouse(Warehouse):
    """Canonical tables in the DuckDB file at ``path``.

    ``read_only=True`` attaches the file for reading and takes it for writing only
    inside :meth:`writing` and :meth:`transaction`; ``read_only=False`` holds it for
    writing from open to :meth:`close`. Opening and each write wait up to ``wait_s``
    seconds for another process that holds the file, then raise
    :class:`~liucun.core.WarehouseBusy` naming it.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        wait_s: float = DEFAULT_WAIT_S,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.url = f"duckdb:///{self.path}"
        self.wait_s = wait_s
        self._att: _Attachment | None = _acquire(self.path, threads=threads)
        self.engine = self._att.engine
        self._held_open = not read_only
        try:
            if read_only:
                self._att.open_for_reading(wait_s)
            else:
                self._att.begin_write(wait_s)
        except BaseException:
            self._held_open = False
            self.close()
            raise

    @property
    def backend_name(self) -> str:
        return "duckdb"

    def _attachment(self) -> _Attachment:
        if self._att is None:
            raise WarehouseError(f"the warehouse {self.path} is closed; open the workspace again")
        return self._att

    @contextlib.contextmanager
    def writing(self) -> Iterator[DuckDBWarehouse]:
        """Hold the file for writing for the whole block (waiting up to ``wait_s``)."""
        att = self._attachment()
        att.begin_write(self.wait_s)
        try:
            yield self
        finally:
            att.end_write(self.wait_s, then_read=True)

    def sweep_orphans(self) -> int:
        """Delete rows of loads that never committed; returns how many were removed.

        The ``loads`` row is written last in every load's transaction, so a row whose
        ``load_id`` has no ``loads`` row belongs to a load that did not finish. DuckDB 1.5
        can replay the row groups of a big insert whose commit record was torn in the
        write-ahead log (decision 0006); every open that finds a log runs this sweep.
        """
        with self.writing():
            return self._attachment().sweep_orphans()

    def engine_table(self, name: str) -> ir.Table:
        att = self._attachment()
        if att.mode is None:  # a write ended while another process held the file
            att.open_for_reading(self.wait_s)
        return super().engine_table(name)

    def table(self, name: str) -> ir.Table:
        return self.engine_table(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        with self.writing():
            raw = self.engine.con
            raw.begin()
            try:
                yield _DuckDBWriter(self)
            except BaseException:
                raw.rollback()
                raise
            raw.commit()  # a checkpoint: see the module doc
            raw.execute("CHECKPOINT")  # a no-op, unless DuckDB logged the commit after all

    def close(self) -> None:
        att, self._att = self._att, None
        if att is None:
            return
        if self._held_open:
            self._held_open = False
            with contextlib.suppress(Exception):
                att.end_write(self.wait_s, then_read=att.handles > 1)
        _release(att)
