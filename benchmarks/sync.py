"""Operational rows into analytics: logging exposures into state and syncing them into
the warehouse, against a plain DuckDB insert of the same rows.

Measures, in one run on one machine: ``log_exposures`` into the state database (SQLite
in the workspace, or ``--state-url``), ``ws.sync()`` copying them into the DuckDB
warehouse, a second (no-op) sync, and the baseline: ``INSERT INTO … SELECT * FROM`` the
same Arrow table into a fresh DuckDB file. Prints a table, then one JSON line.

    python benchmarks/sync.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from liucun.experiments import Experiment, assign, log_exposures
from liucun.workspace import init_workspace

OUT = Path(__file__).with_name("out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="exposures to log")
    parser.add_argument("--state-url", default=None, help="state database (default SQLite)")
    args = parser.parse_args()

    root = OUT / f"sync-{args.rows}"
    shutil.rmtree(root, ignore_errors=True)
    units = pa.array([f"u{i:09d}" for i in range(args.rows)])
    rows = assign(Experiment("bench", coverage=1.0), units)
    ts = datetime(2026, 7, 2, 9, tzinfo=UTC)

    with init_workspace(root / "ws", state_url=args.state_url) as ws:
        t0 = time.perf_counter()
        logged = log_exposures(ws.state, rows, ts=ts).logged
        log_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        copied = ws.sync().total
        sync_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        noop = ws.sync().total
        noop_s = time.perf_counter() - t0
        copy = ws.table("exposures").to_pyarrow()
        backend = ws.state.backend

    base = duckdb.connect(str(root / "baseline.duckdb"))
    base.register("src", copy)
    t0 = time.perf_counter()
    base.execute("CREATE TABLE exposures AS SELECT * FROM src")
    base.execute("CHECKPOINT")
    base_s = time.perf_counter() - t0
    base.close()

    if not (logged == copied == args.rows and noop == 0):
        raise SystemExit(f"broken run: logged {logged}, copied {copied}, no-op copied {noop}")
    figures = {
        "benchmark": "sync",
        "rows": args.rows,
        "state_backend": backend,
        "log_exposures_rows_per_s": round(args.rows / log_s),
        "sync_s": round(sync_s, 3),
        "sync_rows_per_s": round(args.rows / sync_s),
        "noop_sync_s": round(noop_s, 4),
        "baseline": "duckdb CREATE TABLE AS SELECT from the same Arrow table",
        "baseline_s": round(base_s, 3),
        "ratio": round(sync_s / base_s, 2),
    }
    print(f"log_exposures into {backend}: {args.rows / log_s:,.0f} rows/s ({log_s:.2f} s)")
    print(f"sync into DuckDB: {sync_s:.2f} s; no-op sync: {noop_s * 1000:.1f} ms")
    print(f"plain DuckDB insert of the same rows: {base_s:.2f} s (sync = {sync_s / base_s:.1f}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
