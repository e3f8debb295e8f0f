"""In-process cost of ``Decider.decide`` with a large snapshot (no HTTP).

Builds a small simulated shop with a loyalty program, consents and a journey, refreshes a
Decider on it, then widens the snapshot to ``--users`` customers by copying the real
customers' in-memory entries under new ids (decide's cost depends on one customer's
entry and a dict lookup, not on how the snapshot was built), and times ``decide`` one
call at a time. Baseline: a bare dict lookup of the customer in the same snapshot.

With ``--asgi`` it also times ``POST /v1/decide`` through the whole ASGI app (body
limit middleware, routing, key check and rate limit, body validation, the decision,
orjson) by calling the app directly, one request at a time, against ``GET /healthz``
through the same app (no key, no body) as the baseline of the stack itself.

    PYTHONPATH=src python benchmarks/decide_inprocess.py --users 100000 [--asgi]
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
    parser.add_argument("--asgi", action="store_true", help="also time the HTTP route")
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
        asgi = _asgi(ws, snap.customers, picks[: args.calls // 5]) if args.asgi else {}
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
        **asgi,
    }
    print(json.dumps(out))


def _asgi(ws: object, customers: dict[str, object], picks: list[str]) -> dict[str, float]:
    """Median and p99 (ms) of POST /v1/decide and GET /healthz through the ASGI app."""
    import asyncio

    from liucun.api import create_app, create_key

    key = create_key(ws, name="bench", scopes=["decide"], rate_per_s=1e9, burst=10**9).key
    app = create_app(ws, run_loader=False)

    async def call(method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
            "scheme": "http", "root_path": "", "app": app,
        }  # fmt: skip
        sent = False
        status = 0

        async def receive() -> dict[str, object]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]

        await app(scope, receive, send)
        return status

    async def run() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            service = app.state.service
            service.decider._snap.customers.update(customers)  # the widened snapshot
            auth = [(b"authorization", f"Bearer {key}".encode())]
            json_h = [(b"content-type", b"application/json"), *auth]
            bodies = [
                json.dumps({"user_id": u, "placement": "checkout", "cart_value": 120.0}).encode()
                for u in picks
            ]
            timed: dict[str, list[float]] = {"decide": [], "healthz": []}
            for b in bodies[:200]:  # warm up
                await call("POST", "/v1/decide", b, [*json_h, (b"content-length", b"%d" % len(b))])
            for b in bodies:
                h = [*json_h, (b"content-length", b"%d" % len(b))]
                a = time.perf_counter()
                status = await call("POST", "/v1/decide", b, h)
                timed["decide"].append(time.perf_counter() - a)
                assert status == 200, status
                a = time.perf_counter()
                await call("GET", "/healthz", b"", [])
                timed["healthz"].append(time.perf_counter() - a)
        out = {}
        for name, values in timed.items():
            values.sort()
            out[f"asgi_{name}_median_ms"] = round(statistics.median(values) * 1e3, 4)
            out[f"asgi_{name}_p99_ms"] = round(values[int(0.99 * len(values))] * 1e3, 4)
        out["asgi_calls"] = len(bodies)
        return out

    return asyncio.run(run())


if __name__ == "__main__":
    main()
