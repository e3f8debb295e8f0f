"""Journey trigger evaluation for N customers (default 1,000,000), against hand-written
DuckDB SQL for the same entry sets in the same run.

A fresh workspace gets N users and, per user, a visit and an order at random times in
the 60 days before ``now``, plus a delivery for 5 % of them (late by 0–4 days) in the
last day; the scores table gets two churn scores per user (30 days ago and yesterday).
The rows are written straight into the warehouse with Arrow (no simulator, no
validation). Then, each timed:

1. ``inactivity`` (7 days) over the whole history, evaluated for the last day
   (``(now − 1 d, now]``);
2. ``risk_crossed`` (0.6) over the latest two scores per user;
3. ``event`` ``service_failure`` late delivery (``late_days ≥ 1`` from properties);
4. the enrolment of the inactivity entries of the last 30 days (re-entry, hashed arm,
   exposures, bulk insert into the SQLite state database).

The baseline of 1–3 is one DuckDB SQL query each over the same warehouse file (read
only) that returns the same (user_id, at) set (checked equal). Then (``--deliveries N``,
default 2,000) deliveries per second with 1, 2 and 4 worker processes on PostgreSQL
(benchmarks/journeys_delivery.py). Prints tables, then one JSON line.

    python benchmarks/journeys.py --users 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from liucun.core import SimulatedClock
from liucun.journeys import JourneySpec
from liucun.journeys._engine import enrol
from liucun.journeys._triggers import Position, evaluate
from liucun.schema import arrow_schema
from liucun.workspace import init_workspace

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def _full(name: str, cols: dict[str, pa.Array], n: int) -> pa.Table:
    schema = arrow_schema(name)
    return pa.table(
        {
            f.name: cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type)
            for f in schema
        },
        schema=schema,
    )


def build(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ids = np.char.add("u", np.arange(n).astype(str)).astype(object)
    span = 60 * 86400
    now_us = int(NOW.timestamp() * 1e6)
    visit = now_us - (rng.uniform(0, span, n) * 1e6).astype(np.int64)
    order = now_us - (rng.uniform(0, span, n) * 1e6).astype(np.int64)
    late = rng.random(n) < 0.05
    m = int(late.sum())
    deliv = now_us - (rng.uniform(0, 86400, m) * 1e6).astype(np.int64)
    late_days = rng.integers(0, 5, m)
    user_ids = np.concatenate([ids, ids, ids[late]])
    types = np.array(["visit"] * n + ["order"] * n + ["delivery"] * m, dtype=object)
    ts = np.concatenate([visit, order, deliv])
    total = len(user_ids)
    props = np.full(total, None, dtype=object)
    props[2 * n :] = [f'{{"late_days": {d}}}' for d in late_days]
    revenue = np.full(total, np.nan)
    revenue[n : 2 * n] = rng.gamma(2, 30, n)
    order_id = np.full(total, None, dtype=object)
    order_id[n : 2 * n] = np.char.add("o", np.arange(n).astype(str))
    ing = pa.array(np.full(total, now_us - 3600 * 10**6), TS)
    events = _full(
        "events",
        {
            "event_id": pa.array(np.char.add("e", np.arange(total).astype(str)).astype(object)),
            "user_id": pa.array(user_ids),
            "event_type": pa.array(types),
            "ts": pa.array(ts, TS),
            "revenue": pa.array(revenue, from_pandas=True),
            "currency": pa.array(np.where(types == "order", "CNY", None)),
            "order_id": pa.array(order_id),
            "properties": pa.array(props),
            "ingested_at": ing,
            "load_id": pa.array(np.full(total, "bench", dtype=object)),
        },
        total,
    )
    users = _full(
        "users",
        {
            "user_id": pa.array(ids),
            "country": pa.array(rng.choice(np.array(["CN", "DE", "US"], dtype=object), n)),
            "ingested_at": pa.array(np.full(n, now_us - 3600 * 10**6), TS),
            "load_id": pa.array(np.full(n, "bench", dtype=object)),
        },
        n,
    )
    before = rng.beta(2, 4, n)
    after = np.clip(before + rng.normal(0.05, 0.15, n), 0, 1)
    as_of = np.concatenate(
        [np.full(n, now_us - 30 * 86400 * 10**6), np.full(n, now_us - 86400 * 10**6)]
    )
    scores = _full(
        "scores",
        {
            "user_id": pa.array(np.concatenate([ids, ids])),
            "as_of": pa.array(as_of, TS),
            "model": pa.array(np.full(2 * n, "churn", dtype=object)),
            "model_version": pa.array(np.full(2 * n, "1", dtype=object)),
            "churn_risk": pa.array(np.concatenate([before, after])),
            "scored_at": pa.array(as_of + 3600 * 10**6, TS),
        },
        2 * n,
    )
    with init_workspace(path, clock=SimulatedClock(NOW)) as ws, ws.writing() as wh:
        with wh.transaction() as tx:
            tx.append("events", wh.read_arrow(events, name="ev").drop("_line"))
        with wh.transaction() as tx:
            tx.append("users", wh.read_arrow(users, name="us").drop("_line"))
        with wh.transaction() as tx:
            tx.append("scores", wh.read_arrow(scores, name="sc").drop("_line"))


BASELINE = {
    "inactivity": """
        SELECT user_id, max(ts) + INTERVAL 7 DAY AS at FROM events
        WHERE user_id IS NOT NULL AND ts <= $now
          AND event_type NOT IN ('message_sent','message_opened','message_clicked',
              'coupon_issued','delivery','ticket_resolved')
        GROUP BY user_id
        HAVING max(ts) > $lo - INTERVAL 7 DAY AND max(ts) <= $now - INTERVAL 7 DAY""",
    "risk_crossed": """
        WITH r AS (SELECT user_id, as_of, churn_risk, row_number() OVER
                   (PARTITION BY user_id ORDER BY as_of DESC, scored_at DESC) AS n
                   FROM scores WHERE model = 'churn' AND as_of <= $now
                   AND churn_risk IS NOT NULL)
        SELECT a.user_id, a.as_of AS at FROM r a LEFT JOIN r b ON a.user_id = b.user_id
        AND b.n = 2 WHERE a.n = 1 AND a.churn_risk >= 0.6
        AND (b.churn_risk IS NULL OR b.churn_risk < 0.6)""",
    "late_delivery": """
        SELECT user_id, ts AS at FROM events WHERE event_type = 'delivery'
        AND user_id IS NOT NULL AND ts >= $since AND ts <= $now
        AND TRY_CAST(regexp_extract(properties, '"late_days"\\s*:\\s*"?(-?[0-9]+(\\.[0-9]+)?)', 1)
            AS DOUBLE) >= 1""",
}
TRIGGERS = {
    "inactivity": {"type": "inactivity", "days": 7},
    "risk_crossed": {"type": "risk_crossed", "threshold": 0.6},
    "late_delivery": {"type": "service_failure", "kind": "late_delivery", "min_late_days": 1},
}


def journey(name: str, trigger: dict) -> JourneySpec:
    return JourneySpec.model_validate(
        {
            "name": name,
            "trigger": trigger,
            "nodes": [{"id": "t", "type": "tag", "tag": "x", "next": None}],
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    ap.add_argument(
        "--deliveries",
        type=int,
        default=2000,
        help="webhook rows per delivery measurement with 1, 2 and 4 workers on PostgreSQL "
        "(benchmarks/journeys_delivery.py; 0 = skip)",
    )
    args = ap.parse_args()
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ws"
        t0 = time.perf_counter()
        build(path, args.users)
        build_s = time.perf_counter() - t0
        from liucun.workspace import open_workspace

        figures: dict[str, dict[str, float]] = {}
        lo = NOW - timedelta(days=1)
        positions = {
            "inactivity": Position(since=NOW - timedelta(days=30), evaluated_at=lo),
            "risk_crossed": Position(since=NOW - timedelta(days=30)),
            "late_delivery": Position(since=lo),
        }
        with open_workspace(path, clock=SimulatedClock(NOW)) as ws:
            for name, trig in TRIGGERS.items():
                best, entries = 1e99, None
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    found = evaluate(ws, journey(name, trig), positions[name], NOW)
                    best = min(best, time.perf_counter() - t)
                    entries = found.entries
                figures[name] = {"liucun_s": best, "entries": entries.num_rows}
                figures[name]["_set"] = {
                    (u, a.replace(tzinfo=None))
                    for u, a in zip(
                        entries.column("user_id").to_pylist(),
                        entries.column("at").to_pylist(),
                        strict=True,
                    )
                }
            ws._close_warehouse()
            con = duckdb.connect(str(path / "warehouse.duckdb"), read_only=True)
            con.execute("SET TimeZone = 'UTC'")
            params = {"now": NOW, "lo": lo, "since": lo}
            for name, sql in BASELINE.items():
                used = {k: v for k, v in params.items() if f"${k}" in sql}
                best = 1e99
                rows = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    rows = con.execute(sql, used).fetchall()
                    best = min(best, time.perf_counter() - t)
                got = {(u, a.replace(tzinfo=None)) for u, a in rows}
                assert got == figures[name].pop("_set"), f"{name}: entry sets differ"
                figures[name]["baseline_s"] = best
                figures[name]["ratio"] = figures[name]["liucun_s"] / best
            con.close()
            # enrolment: a month of inactivity entries into the SQLite state database
            spec = journey("bench_idle", TRIGGERS["inactivity"])
            month = evaluate(
                ws,
                spec,
                Position(since=NOW - timedelta(days=30), evaluated_at=NOW - timedelta(days=30)),
                NOW,
            ).entries
            t = time.perf_counter()
            result = enrol(ws, "bench_idle", 1, spec, month, now=NOW)
            enrol_s = time.perf_counter() - t
    print(f"{'trigger':<15}{'entries':>10}{'liucun s':>11}{'duckdb s':>11}{'ratio':>8}")
    for name, f in figures.items():
        print(
            f"{name:<15}{int(f['entries']):>10,}{f['liucun_s']:>11.3f}{f['baseline_s']:>11.3f}{f['ratio']:>8.2f}"
        )
    print(
        f"enrolment: {result.enrolled:,} enrolments (+ exposures) in {enrol_s:.1f} s "
        f"({result.enrolled / enrol_s:,.0f}/s); build {build_s:.1f} s"
    )
    delivery: dict[str, object] = {}
    if args.deliveries:
        from journeys_delivery import measure

        got = measure(args.deliveries, 50, "1,2,4")
        keep = ("deliveries_per_s_1w", "deliveries_per_s_2w", "deliveries_per_s_4w")
        delivery = {k: got[k] for k in keep if k in got}
        delivery["delivery_baseline"] = got["baseline"]
        delivery["delivery_baseline_per_s"] = got["baseline_per_s"]
        delivery["delivery_ratio"] = got["ratio"]
    total = sum(f["liucun_s"] for f in figures.values())
    base = sum(f["baseline_s"] for f in figures.values())
    print(
        json.dumps(
            {
                "benchmark": "journeys",
                "users": args.users,
                "trigger_eval_s_1m": total * 1_000_000 / args.users,
                "trigger_eval_s": total,
                **{f"{k}_s": round(v["liucun_s"], 4) for k, v in figures.items()},
                **{f"{k}_entries": int(v["entries"]) for k, v in figures.items()},
                **delivery,
                "baseline": "hand-written DuckDB SQL",
                "baseline_s": base,
                "ratio": total / base,
                "enrolled": result.enrolled,
                "enrol_s": enrol_s,
                "enrol_per_s": result.enrolled / enrol_s,
            }
        )
    )


if __name__ == "__main__":
    main()
