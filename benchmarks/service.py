"""The HTTP service under load: ``POST /v1/decide`` latency at a fixed request rate and
``POST /v1/events`` throughput in batches of 500, with the events counted in the
warehouse afterwards.

A simulated shop (``--users``, with its loyalty program and consents) is loaded into a
fresh workspace; ``liucun -w WS serve`` runs it on a free port of 127.0.0.1, pinned to
CPU 0 with ``taskset``; the load runs on CPU 1 (this process and its children).

- **decide**: Debian's ``hey`` sends ``POST /v1/decide`` for ``--seconds`` at
  ``--rate`` requests/s: ``-c C`` connections each limited to ``rate / C`` per second
  (``-q``), so the rate is fixed by the clock and not by the server's answers as long as
  an answer takes less than ``C / rate`` seconds. hey's connections tick in step, so
  requests arrive in bursts of ``C`` every ``C / rate`` seconds: the default ``C`` = 10
  (bursts of 10 every 10 ms at 1,000/s) keeps the arrivals close to even; ``--conns 50``
  measures bursts of 50 every 50 ms. The body names one known customer
  (hey sends one body). Per-request times come from ``hey -o csv``; p50 / p95 / p99,
  the achieved rate and the non-2xx count are reported.
- **baseline**: the same hey run against ``GET /healthz`` (no auth, no work): the HTTP
  stack's own latency at that rate on this machine. ``ratio`` is decide's p99 over it.
- **events**: an open-loop sender (asyncio + httpx) starts a batch of 500 events every
  ``500 / --events-rate`` seconds whatever the answers, for ``--seconds``; the events
  accepted (202 answers' ``accepted``) over the wall time from the first send to the
  last answer are ``events_per_s``. Then the server's loader drains the inbox (its time
  is ``loader_events_per_s``), the server stops, and the warehouse is counted:
  ``events_lost`` = accepted − events of this run found in the warehouse.

    python benchmarks/service.py [--users 2000] [--rate 1000] [--events-rate 20000] [--seconds 20]

Prints a table, then one JSON line (``decide_p99_ms``, ``decide_rps``,
``events_per_s``, ``events_lost`` and the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build(root: Path, users: int) -> tuple[Path, str, list[str]]:
    """A workspace with a simulated shop, its loyalty program and consents; the bench
    key (all scopes the run needs, a rate far above the load) and a known customer."""
    from liucun import loyalty
    from liucun.api import create_key
    from liucun.ingest import IngestOptions, ingest_events, ingest_users
    from liucun.journeys import import_consents_from_users
    from liucun.simulate import simulate_shop
    from liucun.workspace import init_workspace

    sim = simulate_shop(root / "sim", preset="b2c", users=users, days=180, seed=11)
    path = root / "ws"
    with init_workspace(path) as ws:
        opts = IngestOptions(hash_key=ws.hash_key)
        ingest_users(ws.warehouse, [sim.users_path], options=opts)
        ingest_events(ws.warehouse, [sim.events_dir], options=opts)
        loyalty.apply_program(ws, ROOT / "examples/loyalty/program.yaml")
        import_consents_from_users(ws)
        key = create_key(
            ws, name="bench", scopes=("ingest", "read", "decide"), rate_per_s=1e6, burst=100_000
        ).key
        ids = ws.customers().select("user_id").to_pyarrow().column(0).to_pylist()
    return path, key, sorted(ids)


def _serve(path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    liucun = shutil.which("liucun", path=os.path.dirname(sys.executable)) or "liucun"
    cmd = [liucun, "-w", str(path), "serve", "--port", str(port)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see its log")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer /readyz within {seconds:.0f} s")


def _hey(url: str, rate: int, seconds: int, conns: int, key: str | None, body: str | None) -> dict:
    """One fixed-rate hey run; latency quantiles from its per-request CSV."""
    per_conn = max(1, round(rate / conns))
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(conns), "-q", str(per_conn), "-o", "csv"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        cmd += ["-m", "POST", "-T", "application/json", "-d", body]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    times = sorted(float(r["response-time"]) * 1e3 for r in rows)
    errors = sum(1 for r in rows if not r["status-code"].startswith("2"))
    offsets = [float(r["offset"]) for r in rows]
    span = (max(offsets) - min(offsets)) if len(offsets) > 1 else float(seconds)

    def q(p: float) -> float:
        return round(times[min(len(times) - 1, int(p * len(times)))], 3) if times else float("nan")

    return {
        "requests": len(rows),
        "rps": round(len(rows) / max(span, 1e-9), 1),
        "p50_ms": q(0.50),
        "p95_ms": q(0.95),
        "p99_ms": q(0.99),
        "max_ms": round(times[-1], 3) if times else float("nan"),
        "errors": errors,
        "target_rps": per_conn * conns,
    }


def _batches(users: list[str], n: int, run: str) -> list[bytes]:
    import orjson

    ts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    out = []
    for b in range(n):
        events = []
        for i in range(BATCH):
            k = b * BATCH + i
            order = k % 10 == 0
            events.append(
                {
                    "event_id": f"{run}-{k}",
                    "user_id": users[k % len(users)],
                    "event_type": "order" if order else "view",
                    "ts": ts,
                    "channel": "app",
                    **({"revenue": 50.0 + k % 97, "currency": "CNY"} if order else {}),
                }
            )
        out.append(orjson.dumps({"events": events}))
    return out


async def _send_events(base: str, key: str, bodies: list[bytes], rate: float) -> dict:
    import httpx

    interval = BATCH / rate
    accepted = failed = 0
    lat: list[float] = []
    statuses: dict[int | str, int] = {}
    details: dict[int, str] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(body: bytes) -> None:
            nonlocal accepted, failed
            t = time.perf_counter()
            try:
                r = await client.post("/v1/events", content=body, headers=headers)
            except httpx.HTTPError as exc:
                failed += 1
                kind = type(exc).__name__
                statuses[kind] = statuses.get(kind, 0) + 1
                return
            lat.append(time.perf_counter() - t)
            if r.status_code == 202:
                accepted += int(r.json()["accepted"])
            else:
                failed += 1
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code not in details:
                    details[r.status_code] = r.text[:300]

        start = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    lat.sort()
    return {
        "batches": len(bodies),
        "accepted": accepted,
        "failed_batches": failed,
        "failed_statuses": {str(k): v for k, v in statuses.items()},
        "failed_details": {str(k): v for k, v in details.items()},
        "wall_s": round(wall, 2),
        "events_per_s": round(accepted / wall, 1),
        "target_events_per_s": rate,
        "batch_p50_ms": round(lat[len(lat) // 2] * 1e3, 1) if lat else None,
        "batch_p99_ms": round(lat[int(0.99 * len(lat))] * 1e3, 1) if lat else None,
    }


def _drain(path: Path, timeout: float) -> tuple[float, int]:
    """Seconds until the server's loader has emptied the inbox, and what is left."""
    from liucun.ingest import inbox_counts
    from liucun.workspace import open_workspace

    start = time.perf_counter()
    with open_workspace(path) as ws:
        while time.perf_counter() - start < timeout:
            pending = inbox_counts(ws)["pending"]
            if pending == 0:
                return time.perf_counter() - start, 0
            time.sleep(0.5)
        return time.perf_counter() - start, inbox_counts(ws)["pending"]


def _count(path: Path, run: str) -> int:
    from liucun.ingest import load_inbox
    from liucun.workspace import open_workspace

    with open_workspace(path) as ws:
        while load_inbox(ws).rows:  # whatever the server left (none when it drained)
            pass
        t = ws.table("events")
        return int(t.filter(t.event_id.startswith(f"{run}-")).count().to_pyarrow().as_py())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000, help="Simulated shop size.")
    parser.add_argument("--rate", type=int, default=1000, help="decide requests per second.")
    parser.add_argument("--conns", type=int, default=10, help="hey connections.")
    parser.add_argument("--events-rate", type=float, default=20_000, help="Events per second.")
    parser.add_argument("--seconds", type=int, default=20, help="Length of each load phase.")
    parser.add_argument("--keep", action="store_true", help="Keep the workspace.")
    args = parser.parse_args()
    if not shutil.which("hey"):
        raise SystemExit("benchmarks/service.py needs Debian's hey: apt-get install hey")

    root = Path(tempfile.mkdtemp(prefix="liucun-service-"))
    t0 = time.perf_counter()
    path, key, customers = _build(root, args.users)
    build_s = time.perf_counter() - t0
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(path, port, root / "serve.log")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load (hey, the event sender) on CPU 1
    try:
        _wait_ready(base, server)
        body = json.dumps({"user_id": customers[0], "placement": "checkout", "cart_value": 120.0})
        _hey(f"{base}/v1/decide", 200, 3, 10, key, body)  # warm-up
        decide = _hey(f"{base}/v1/decide", args.rate, args.seconds, args.conns, key, body)
        health = _hey(f"{base}/healthz", args.rate, args.seconds, args.conns, None, None)

        run = f"bench{uuid.uuid4().hex[:8]}"
        n = max(1, int(args.events_rate * args.seconds / BATCH))
        bodies = _batches(customers, n, run)
        events = asyncio.run(_send_events(base, key, bodies, args.events_rate))
        drain_s, left = _drain(path, timeout=600)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    counted = _count(path, run)
    loader_rate = events["accepted"] / max(events["wall_s"] + drain_s, 1e-9)

    print(f"{'phase':<10} {'rps':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (("decide", decide), ("healthz", health)):
        print(
            f"{name:<10} {r['rps']:>9} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8}"
            f" {r['errors']:>7}"
        )
    print(
        f"events: {events['accepted']:,} accepted in {events['wall_s']} s "
        f"({events['events_per_s']:,.0f}/s, target {args.events_rate:,.0f}/s), "
        f"{events['failed_batches']} failed batches; inbox drained {drain_s:.1f} s later "
        f"({left} left); warehouse counted {counted:,}"
    )
    out: dict[str, Any] = {
        "benchmark": "service",
        "users": args.users,
        "build_s": round(build_s, 1),
        "decide_p50_ms": decide["p50_ms"],
        "decide_p95_ms": decide["p95_ms"],
        "decide_p99_ms": decide["p99_ms"],
        "decide_rps": decide["rps"],
        "decide_target_rps": decide["target_rps"],
        "decide_requests": decide["requests"],
        "decide_errors": decide["errors"],
        "baseline": "GET /healthz at the same rate",
        "healthz_p99_ms": health["p99_ms"],
        "healthz_rps": health["rps"],
        "ratio": round(decide["p99_ms"] / max(health["p99_ms"], 1e-9), 2),
        "events_per_s": events["events_per_s"],
        "events_accepted": events["accepted"],
        "events_failed_batches": events["failed_batches"],
        "events_batch_p99_ms": events["batch_p99_ms"],
        "drain_s": round(drain_s, 1),
        "loader_events_per_s": round(loader_rate, 1),
        "events_counted": counted,
        "events_lost": events["accepted"] - counted,
    }
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        out["workspace"] = str(path)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
