"""Who may open the warehouse when: readers share it, a writer has it alone, everyone waits.

Every test runs real processes on real files (docs/decisions/0006-warehouse-concurrency.md):
a *holder* process opens a workspace for reading or writing and keeps it until the test
writes a line to its stdin, and the test checks what another process (``liucun`` itself,
or a short script) does meanwhile. Waiting is observed through the waiter's log line
naming the holder's PID, never through timing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from liucun.core import WarehouseBusy, WarehouseError
from liucun.ingest import ingest_events
from liucun.warehouse import ParquetWarehouse, connect_warehouse
from liucun.workspace import init_workspace, open_workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from test_atomic import write_orders

LIUCUN = str(Path(sys.executable).parent / "liucun")
N = 20_000

# Opens the workspace argv[1] for argv[2] ("read" or "write"; "write" loads argv[3] if
# given), says "holding N" (the events it sees) and keeps it until a line arrives on stdin.
_HOLDER = """
import sys
from liucun.ingest import ingest_events
from liucun.workspace import open_workspace

ws = open_workspace(sys.argv[1])
if sys.argv[2] == "read":
    print("holding", ws.warehouse.count("events"), flush=True)
    sys.stdin.readline()
else:
    with ws.writing() as wh:
        if len(sys.argv) > 3:
            ingest_events(wh, [sys.argv[3]])
        print("holding", wh.count("events"), flush=True)
        sys.stdin.readline()
ws.close()
"""

# Opens the workspace argv[1] for reading (logging at INFO to stderr) and prints the
# number of events and of loads it sees.
_COUNT = """
import logging, sys
from liucun.workspace import open_workspace

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
with open_workspace(sys.argv[1]) as ws:
    print(ws.warehouse.count("events"), ws.warehouse.count("loads"), flush=True)
"""

# Loads the file argv[2] into the workspace argv[1] (logging at INFO to stderr), the way
# ``liucun ingest events`` does: through the reading handle.
_LOAD = """
import logging, sys
from liucun.ingest import ingest_events
from liucun.workspace import open_workspace

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
with open_workspace(sys.argv[1]) as ws:
    print(ingest_events(ws.warehouse, [sys.argv[2]]).accepted, flush=True)
"""


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    made: dict[tuple[int, int], Path] = {}

    def get(n: int, seed: int = 1) -> Path:
        if (n, seed) not in made:
            folder = tmp_path_factory.mktemp("orders")
            made[n, seed] = write_orders(folder / f"orders_{n}_{seed}.parquet", n, seed=seed)
        return made[n, seed]

    return get


def new_workspace(path: Path, store: str = "duckdb") -> Path:
    init_workspace(path, warehouse_url=store).close()
    return path


@contextmanager
def holding(ws: Path, mode: str, source: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """A process that holds ``ws`` for ``mode`` until the block ends."""
    args = [sys.executable, "-c", _HOLDER, str(ws), mode, *([str(source)] if source else [])]
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("holding"), line + proc.communicate()[1]
        yield proc
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count_events(ws: Path) -> subprocess.Popen[str]:
    return start([sys.executable, "-c", _COUNT, str(ws)])


def wait_for_line(proc: subprocess.Popen[str], pattern: str) -> str:
    """Read ``proc``'s stderr until a line matches ``pattern`` (fails if it ends first)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"{pattern!r} never logged; stderr was:\n{''.join(seen)}")


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    return out


def events_and_loads(ws: Path) -> tuple[int, int]:
    with open_workspace(ws) as opened:
        return opened.warehouse.count("events"), opened.warehouse.count("loads")


# -- readers -----------------------------------------------------------------------------


def test_readers_share_the_warehouse(orders: Callable[..., Path], tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    with open_workspace(ws) as opened:
        ingest_events(opened.warehouse, [orders(N)])

    with holding(ws, "read") as first, holding(ws, "read") as second:
        assert first.poll() is None and second.poll() is None  # both hold it at once
        statuses = [start([LIUCUN, "-w", str(ws), "status"]) for _ in range(2)]
        outs = [finish(p) for p in statuses]

    for out in outs:
        assert re.search(r"│ events\s+│\s+20,000 │", out), out


def test_a_reader_waits_for_a_load_and_sees_it(orders: Callable[..., Path], tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    with holding(ws, "write", orders(N)) as writer:
        reader = count_events(ws)
        wait_for_line(reader, rf"INFO .*in use by process {writer.pid}\b.*for reading")
        assert reader.poll() is None

    assert finish(reader).split() == [str(N), "1"]


def test_a_writer_waits_for_a_reader(orders: Callable[..., Path], tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    with holding(ws, "read") as reader:
        load = start([sys.executable, "-c", _LOAD, str(ws), str(orders(N))])
        wait_for_line(load, rf"in use by process {reader.pid}\b.*for writing")
        assert load.poll() is None

    assert finish(load).split() == [str(N)]
    assert events_and_loads(ws) == (N, 1)


@pytest.mark.parametrize("read_only", [True, False], ids=["reader", "writer"])
def test_the_wait_ends_with_warehouse_busy_naming_the_holder(
    tmp_path: Path, read_only: bool
) -> None:
    ws = new_workspace(tmp_path / "ws")
    with (
        holding(ws, "write") as writer,
        pytest.raises(WarehouseBusy, match=rf"in use by process {writer.pid} \(-c .*\)"),
    ):
        connect_warehouse("duckdb", ws, read_only=read_only, wait_s=0.5)


def test_a_write_through_a_reading_handle_waits_and_names_the_reader(
    orders: Callable[..., Path], tmp_path: Path
) -> None:
    ws = new_workspace(tmp_path / "ws")
    wh = connect_warehouse("duckdb", ws, read_only=True, wait_s=0.5)
    try:
        with holding(ws, "read") as reader:
            with pytest.raises(WarehouseBusy, match=rf"process {reader.pid}\b.*for writing"):
                ingest_events(wh, [orders(N)])
            assert wh.count("events") == 0  # still reading after the failed write
        ingest_events(wh, [orders(N)])  # the reader is gone: the write goes through
        assert wh.count("events") == N
    finally:
        wh.close()


# -- writers -----------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["duckdb", "pyspark"])
def test_two_loads_at_once_are_serialized(
    orders: Callable[..., Path], tmp_path: Path, store: str
) -> None:
    """The same file twice and another file, all at once: each event stored once."""
    ws = new_workspace(tmp_path / "ws", store)
    same, other = orders(N), orders(N, 2)
    loads = [
        start([LIUCUN, "-w", str(ws), "ingest", "events", str(path)])
        for path in (same, same, other)
    ]
    for proc in loads:
        finish(proc)

    with open_workspace(ws) as opened:
        wh = opened.warehouse
        rows = wh.engine_table("loads").to_pyarrow().to_pylist()
        assert wh.count("events") == 2 * N
        assert wh.engine_table("events").event_id.nunique().to_pyarrow().as_py() == 2 * N
    assert len(rows) == 3
    assert sorted((r["accepted"], r["duplicates"]) for r in rows) == [(0, N), (N, 0), (N, 0)]


def test_parquet_writers_wait_and_name_the_holder(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", "pyspark")
    with (
        holding(ws, "write") as writer,
        pytest.raises(WarehouseBusy, match=rf"in use by process {writer.pid}\b"),
    ):
        ParquetWarehouse(ws / "warehouse", read_only=True, wait_s=0.5)


# -- what a reader of the file sees ------------------------------------------------------


def test_a_table_the_file_lacks_reads_as_empty_until_the_first_write(tmp_path: Path) -> None:
    """A workspace made before ``sync_cursors`` existed: reading neither fails nor writes."""
    ws = new_workspace(tmp_path / "ws")
    db = ws / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE sync_cursors")
    stored = "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'sync_cursors'"

    wh = connect_warehouse("duckdb", ws, read_only=True)
    try:
        assert wh.count("sync_cursors") == 0
        with duckdb.connect(str(db), read_only=True) as con:  # readers share the file
            assert con.execute(stored).fetchone() == (0,)
        with wh.writing():
            pass
        assert wh.count("sync_cursors") == 0
    finally:
        wh.close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(stored).fetchone() == (1,)


def _grows(db: Path) -> Callable[[], bool]:
    start = db.stat().st_size
    return lambda: db.stat().st_size > start


@pytest.mark.parametrize("after_s", [0.0, 0.05, 0.2, 0.5])
def test_a_kill_during_a_load_leaves_nothing_a_plain_reader_sees(
    orders: Callable[..., Path], tmp_path: Path, after_s: float
) -> None:
    """SIGKILL once the load writes into the file (its bulk insert, then its commit).

    A load of 3 row groups is written "optimistically" into the file before it commits;
    plain DuckDB, opened read-only, must count all of it with its ``loads`` row or none.
    """
    n = 3 * 122_880
    ws = new_workspace(tmp_path / "ws")
    db = ws / "warehouse.duckdb"
    grows = _grows(db)
    load = subprocess.Popen(
        [LIUCUN, "-w", str(ws), "ingest", "events", str(orders(n))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while load.poll() is None and not grows():
            time.sleep(0.001)
        time.sleep(after_s)
        load.send_signal(signal.SIGKILL)
        _, err = load.communicate(timeout=300)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.returncode in (0, -signal.SIGKILL), err

    with duckdb.connect(str(db), read_only=True) as con:
        events, loads, orphans = con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM loads), "
            "(SELECT count(*) FROM events WHERE load_id NOT IN (SELECT load_id FROM loads))"
        ).fetchone()
    assert orphans == 0
    assert (events, loads) in ((0, 0), (n, 1))


def test_a_damaged_file_is_reported_as_damaged_not_as_in_use(tmp_path: Path) -> None:
    """Decision 0006: the old open called DuckDB's "… in block at location …" a lock
    ("in use by another process"), and waiting could never end it."""
    ws = new_workspace(tmp_path / "ws")
    db = ws / "warehouse.duckdb"
    data = bytearray(db.read_bytes())
    for block in range(3 * 4096, len(data), 256 * 1024):  # past the headers: every block
        data[block + 8 : block + 64] = b"\xff" * 56
    db.write_bytes(bytes(data))

    with pytest.raises(
        WarehouseError, match=r"cannot open the warehouse .*Corrupt database"
    ) as err:
        connect_warehouse("duckdb", ws, read_only=True)
    assert not isinstance(err.value, WarehouseBusy)
    assert "in use" not in str(err.value)
