"""Weekly first-order retention matrix: liucun vs the pandas idiom vs hand-written SQL.

Same events (a Parquet file of N orders), same definition (first-order week cohorts,
N-period retention of orders in weeks 0..12), same machine, same run; each approach runs
in its own process so its peak memory is its own. The results are checked to be equal.
Prints a table, then one JSON line (ARCHITECTURE §6).

    python benchmarks/retention.py --events 20000000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MAX_WEEK = 12
AS_OF = datetime(2026, 1, 1)

HAND_SQL = """
WITH o AS (SELECT user_id, CAST(ts AS TIMESTAMP) AS ts FROM read_parquet(?)),
first AS (SELECT user_id, min(ts) AS first_ts FROM o GROUP BY user_id),
c AS (SELECT user_id, first_ts, date_trunc('week', first_ts) AS cohort FROM first),
sizes AS (SELECT cohort, count(*) AS cohort_size FROM c GROUP BY cohort),
hits AS (
  SELECT c.cohort, date_diff('day', c.cohort, date_trunc('week', o.ts)) // 7 AS k,
         count(DISTINCT o.user_id) AS retained
  FROM o JOIN c USING (user_id)
  WHERE o.ts > c.first_ts
  GROUP BY ALL
)
SELECT s.cohort, k.k AS period, s.cohort_size,
       CASE WHEN k.k = 0 THEN s.cohort_size ELSE coalesce(h.retained, 0) END AS retained
FROM sizes s CROSS JOIN range(0, 13) AS k(k)
LEFT JOIN hits h ON h.cohort = s.cohort AND h.k = k.k
WHERE s.cohort + to_days(CAST(7 * k.k AS INTEGER)) < ?
ORDER BY 1, 2
"""


def make_orders(n: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    users = max(n // 20, 1)
    user = rng.integers(0, users, n)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    offset = (rng.beta(1.2, 2.0, n) * 365 * 86400).astype("timedelta64[s]")
    table = pa.table(
        {
            "user_id": pa.array(np.char.add("u", user.astype(str))),
            "event_type": pa.array(np.full(n, "order")),
            "ts": pa.array((start + offset).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=1_000_000)


def run_liucun(path: str) -> pd.DataFrame:
    import ibis

    from liucun.metrics import retention

    con = ibis.duckdb.connect()
    events = con.read_parquet(path)
    out = retention(events, period="week", max_period=MAX_WEEK, as_of=AS_OF).to_pandas()
    return out[["cohort", "period", "cohort_size", "retained"]]


def run_hand_sql(path: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(HAND_SQL, [path, AS_OF]).df()


def run_pandas(path: str) -> pd.DataFrame:
    df = pd.read_parquet(path, columns=["user_id", "ts"])
    df["ts"] = df.ts.dt.tz_convert(None)
    df["first_ts"] = df.groupby("user_id").ts.transform("min")
    df["cohort"] = df.first_ts.dt.to_period("W-SUN").dt.start_time
    sizes = df.groupby("cohort").user_id.nunique().rename("cohort_size")
    later = df[df.ts > df.first_ts]
    k = (later.ts.dt.to_period("W-SUN").dt.start_time - later.cohort).dt.days // 7
    hits = later.assign(period=k).groupby(["cohort", "period"]).user_id.nunique()
    grid = pd.MultiIndex.from_product(
        [sizes.index, range(MAX_WEEK + 1)], names=["cohort", "period"]
    )
    out = hits.reindex(grid, fill_value=0).rename("retained").reset_index()
    out = out.join(sizes, on="cohort")
    out.loc[out.period == 0, "retained"] = out.cohort_size
    starts = out.cohort + pd.to_timedelta(7 * out.period, unit="D")
    return out[starts < pd.Timestamp(AS_OF)][["cohort", "period", "cohort_size", "retained"]]


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over from the forking parent across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(name: str, path: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    fn = {"liucun": run_liucun, "hand_sql": run_hand_sql, "pandas": run_pandas}[name]
    import duckdb  # noqa: F401  - imports are not what is measured
    import ibis  # noqa: F401

    import liucun.metrics  # noqa: F401

    t0 = time.perf_counter()
    frame = fn(path)
    seconds = time.perf_counter() - t0
    frame = frame.assign(cohort=pd.to_datetime(frame.cohort).dt.strftime("%Y-%m-%d"))
    frame = frame.astype({"period": int, "cohort_size": int, "retained": int})
    frame = frame.sort_values(["cohort", "period"]).reset_index(drop=True)
    peak_mb = _peak_rss_mb()
    queue.put((seconds, peak_mb, frame))


def measure(name: str, path: Path) -> tuple[float, float, pd.DataFrame]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_child, args=(name, str(path), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"orders-{args.events}.parquet"
    if not path.exists():
        make_orders(args.events, path)
    results = {name: measure(name, path) for name in ("liucun", "hand_sql", "pandas")}
    reference = results["hand_sql"][2]
    for name, (_, _, frame) in results.items():
        pd.testing.assert_frame_equal(frame, reference, obj=name, check_dtype=False)
    for name, (seconds, peak, _) in results.items():
        print(f"{name:9s} {seconds:8.2f} s   peak RSS {peak:8.0f} MB")
    liucun_s, hand_s, pandas_s = (results[n][0] for n in ("liucun", "hand_sql", "pandas"))
    print(
        json.dumps(
            {
                "benchmark": "retention",
                "events": args.events,
                "liucun_s": round(liucun_s, 3),
                "pandas_s": round(pandas_s, 3),
                "hand_sql_s": round(hand_s, 3),
                "speedup_vs_pandas": round(pandas_s / liucun_s, 2),
                "ratio_vs_hand_sql": round(liucun_s / hand_s, 3),
                "peak_rss_mb": round(results["liucun"][1]),
                "pandas_peak_rss_mb": round(results["pandas"][1]),
                "hand_sql_peak_rss_mb": round(results["hand_sql"][1]),
            }
        )
    )


if __name__ == "__main__":
    main()
