"""Ingest throughput: liucun (validation on) vs a plain DuckDB insert of the same file.

Baseline ("the limit"): ``INSERT INTO t SELECT * FROM read_parquet(file)`` (and
``read_csv``) into a fresh DuckDB file, no validation, measured in the same run on the
same file. Prints a table, then one JSON line (ARCHITECTURE §6).

    python benchmarks/ingest.py --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from liucun.ingest import IngestOptions, ingest_events
from liucun.workspace import init_workspace

TYPES = np.array(["visit", "view", "add_to_cart", "order", "search", "message_opened"])
CHANNELS = np.array(["app", "web", "mini_program", "offline_store"])
COUNTRIES = np.array(["CN", "US", "DE", "JP", "GB"])


def make_events(rows: int, seed: int = 0) -> pa.Table:
    """A realistic order/behaviour export: no event_id (liucun derives it), ISO timestamps."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    ts = start + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")
    kind = TYPES[rng.integers(0, len(TYPES), rows)]
    revenue = np.where(kind == "order", np.round(rng.gamma(2.0, 40.0, rows), 2), np.nan)
    return pa.table(
        {
            "user_id": pa.array(
                np.char.add("u", rng.integers(0, rows // 20 + 1, rows).astype(str))
            ),
            "event_type": pa.array(kind),
            "ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "revenue": pa.array(revenue, from_pandas=True),
            "currency": pa.array(np.where(kind == "order", "CNY", None)),
            "channel": pa.array(CHANNELS[rng.integers(0, len(CHANNELS), rows)]),
            "country": pa.array(COUNTRIES[rng.integers(0, len(COUNTRIES), rows)]),
            "order_id": pa.array(np.char.add("o", np.arange(rows).astype(str))),
        }
    )


def baseline(path: Path, fmt: str, work: Path) -> float:
    db = work / f"baseline-{fmt}.duckdb"
    con = duckdb.connect(str(db))
    reader = "read_parquet(?)" if fmt == "parquet" else "read_csv(?, header = true)"
    t0 = time.perf_counter()
    con.execute("CREATE TABLE events AS SELECT * FROM " + reader + " LIMIT 0", [str(path)])
    con.execute("INSERT INTO events SELECT * FROM " + reader, [str(path)])
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def liucun(path: Path, fmt: str, work: Path, rows: int) -> float:
    ws = init_workspace(work / f"ws-{fmt}")
    t0 = time.perf_counter()
    result = ingest_events(ws.warehouse, [path], IngestOptions(now=datetime.now(UTC)))
    seconds = time.perf_counter() - t0
    assert result.accepted == rows, result
    ws.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="Best of N runs.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = make_events(args.rows)
    files = {
        "parquet": args.out / f"events-{args.rows}.parquet",
        "csv": args.out / f"events-{args.rows}.csv",
    }
    if not files["parquet"].exists():
        pq.write_table(data, files["parquet"], compression="zstd")
    if not files["csv"].exists():
        pacsv.write_csv(data, files["csv"])
    figures: dict[str, dict[str, float]] = {}
    for fmt, path in files.items():
        best_base, best_ours = float("inf"), float("inf")
        for _ in range(args.repeat):
            work = Path(tempfile.mkdtemp(prefix="liucun-bench-", dir=args.out))
            try:
                best_base = min(best_base, baseline(path, fmt, work))
                best_ours = min(best_ours, liucun(path, fmt, work, args.rows))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        figures[fmt] = {
            "liucun_rows_per_s": args.rows / best_ours,
            "baseline_rows_per_s": args.rows / best_base,
            "ratio": best_base / best_ours,
        }
        print(
            f"{fmt:8s} liucun {args.rows / best_ours:>12,.0f} rows/s   "
            f"duckdb {args.rows / best_base:>12,.0f} rows/s   ratio {best_base / best_ours:.2f}"
        )
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "rows": args.rows,
                "liucun_rows_per_s": round(figures["parquet"]["liucun_rows_per_s"]),
                "baseline": "duckdb read_parquet insert",
                "baseline_rows_per_s": round(figures["parquet"]["baseline_rows_per_s"]),
                "ratio": round(figures["parquet"]["ratio"], 3),
                "csv_liucun_rows_per_s": round(figures["csv"]["liucun_rows_per_s"]),
                "csv_baseline": "duckdb read_csv insert",
                "csv_baseline_rows_per_s": round(figures["csv"]["baseline_rows_per_s"]),
                "csv_ratio": round(figures["csv"]["ratio"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
