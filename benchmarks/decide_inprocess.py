"""In-process cost of ``Decider.decide`` with a large snapshot (no HTTP).

Builds a small simulated shop with a loyalty program, consents and a journey, refreshes a
Decider on it, then widens the snapshot to ``--users`` customers by copying the real
customers' in-memory entries under new ids (decide's cost depends on one customer's
entry and a dict lookup, not on how the snapshot was built), and times ``decide`` one
call at a time. Baseline: a bare dict lookup of the customer in the same snapshot.

    PYTHONPATH=src python benchmarks/decide_inprocess.py --users 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--shop-users", type=int, default=1_000)
    args = parser.parse_args()

    from liucun import loyalty
    from liucun.core import SimulatedClock
    from liucun.ingest import IngestOptions, ingest_events, ingest_users
    from liucun.journeys import Decider, import_consents_from_users
    from liucun.simulate import simulate_shop
    from liucun.workspace import init_workspace

    root = Path(tempfile.mkdtemp(prefix="liucun-decide-"))
    sim = simulate_shop(root / "sim", preset="b2c", users=args.shop_users, days=180, seed=3)
    with init_workspace(root / "ws") as ws:
        opts = IngestOptions(hash_key=ws.hash_key)
        ingest_users(ws.warehouse, [sim.users_path], options=opts)
        ingest_events(ws.warehouse, [sim.events_dir], options=opts)
        end = ws.data_end()
        assert end is not None
        ws.clock = SimulatedClock(end + timedelta(hours=2))
        loyalty.apply_program(ws, Path(__file__).parent.parent / "examples/loyalty/program.yaml")
        import_consents_from_users(ws)
        d = Decider(ws, holdout=0.1)
        t0 = time.perf_counter()
        d.refresh()
        refresh_s = time.perf_counter() - t0
        snap = d._snap
        real = list(snap.customers.values())
        for i in range(args.users - len(real)):
            snap.customers[f"synthetic-{i}"] = real[i % len(real)]
        ids = list(snap.customers)
        step = max(1, len(ids) // args.calls)
        picks = [ids[(i * step * 7919) % len(ids)] for i in range(args.calls)]
        times, base = [], []
        for u in picks:
            a = time.perf_counter()
            d.decide(u, "checkout", channel="email", cart_value=120.0)
            times.append(time.perf_counter() - a)
        for u in picks:
            a = time.perf_counter()
            snap.customers.get(u)
            base.append(time.perf_counter() - a)
        t0 = time.perf_counter()
        written = d.flush()
        flush_s = time.perf_counter() - t0
    times.sort()
    out = {
        "benchmark": "decide_inprocess",
        "users": len(ids),
        "calls": len(times),
        "decide_median_ms": round(statistics.median(times) * 1e3, 4),
        "decide_p99_ms": round(times[int(0.99 * len(times))] * 1e3, 4),
        "baseline": "dict lookup of the customer",
        "baseline_median_ms": round(statistics.median(base) * 1e3, 5),
        "ratio": round(statistics.median(times) / max(statistics.median(base), 1e-9), 1),
        "refresh_s_shop": round(refresh_s, 3),
        "flush_exposures": written,
        "flush_s": round(flush_s, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
