"""Deliveries per second with 1, 2 and 4 worker processes on PostgreSQL, against a local
Standard Webhooks receiver, and two baselines measured in the same run.

A fresh workspace on PostgreSQL (127.0.0.1:5432, database ``test``, a schema of its own
dropped afterwards) has ``[channels.webhook]`` pointing at a receiver in this process
(``http.server`` threads answering 200). For each worker count, ``--rows`` webhook rows
are enqueued, then that many worker processes (started together by a barrier) call
``deliver_due`` in a loop until nothing is pending or sending; the rate is rows over
the wall time from the barrier to the last worker's end. Each delivery is one claim
share (a batch of ``--batch`` rows per claiming transaction, guards included), one
signed POST and one finishing transaction (the row, a delivery event, a journey step).

Baselines, one process each, on the same rows:

- ``post_only``: the same signed POSTs with one httpx client and no state (the
  receiver's and the HTTP stack's capacity; the named baseline: ``ratio`` is the
  1-worker rate over it);
- ``state_only``: per row the claim UPDATE and the finishing UPDATE + INSERT in their
  own transactions, without sending (the state database's share of the work).

    python benchmarks/journeys_delivery.py --rows 2000 [--batch 50]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class _Receiver(BaseHTTPRequestHandler):
    hits = 0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with _Receiver.lock:
            _Receiver.hits += 1
        body = b'{"id": "ok"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _worker(path: str, worker_id: str, batch: int, barrier: Any, done: Any) -> None:
    from liucun.journeys import count_outbox, deliver_due
    from liucun.workspace import open_workspace

    ws = open_workspace(path)
    ws.hash_key  # noqa: B018 - checked once, before the clock starts
    barrier.wait()
    while True:
        run = deliver_due(ws, worker_id=worker_id, limit=batch)
        if run.touched == 0:
            counts = count_outbox(ws)
            if not counts.get("pending") and not counts.get("sending"):
                break
            time.sleep(0.01)
    done.put(time.perf_counter())
    ws.close()


def _enqueue(ws: Any, n: int, tag: str) -> None:
    from liucun.journeys._outbox import Outgoing, enqueue

    items = [
        Outgoing(
            key=f"bench:{tag}:{i}",
            user_id=f"u{i}",
            channel="webhook",
            payload={"body": {"offer": "comeback10", "n": i}},
            journey="bench",
            version=1,
            node="hook",
            enrolment_id=i + 1,
        )
        for i in range(n)
    ]
    with ws.state.write() as s:
        for start in range(0, n, 1000):
            enqueue(s, items[start : start + 1000], now=ws.clock.now())


def _clear(ws: Any) -> None:
    from sqlalchemy import delete

    from liucun.state import DeliveryEvent, JourneyStep, OutboxMessage

    with ws.state.write() as s:
        for model in (OutboxMessage, DeliveryEvent, JourneyStep):
            s.execute(delete(model))


def _workers(path: str, ws: Any, n: int, workers: int, batch: int) -> float:
    _clear(ws)
    _enqueue(ws, n, f"w{workers}")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    done = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(path, f"w{i}", batch, barrier, done))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    ends = [done.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    from liucun.journeys import count_outbox

    counts = count_outbox(ws)
    if counts != {"sent": n}:
        raise SystemExit(f"{workers} workers left the outbox at {counts}")
    return n / (max(ends) - start)


def _post_only(url: str, n: int) -> float:
    import httpx
    from standardwebhooks import Webhook

    signer = Webhook(SECRET)
    client = httpx.Client(timeout=10)
    now = datetime.now(UTC)
    start = time.perf_counter()
    for i in range(n):
        key = f"plain:{i}"
        body = json.dumps({"type": "liucun.journey.webhook", "data": {"offer": "x", "n": i}})
        headers = {
            "content-type": "application/json",
            "webhook-id": key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(key, now, body),
        }
        client.post(url, content=body.encode(), headers=headers).raise_for_status()
    elapsed = time.perf_counter() - start
    client.close()
    return n / elapsed


def _state_only(ws: Any, n: int) -> float:
    from sqlalchemy import insert, select, update

    from liucun.state import DeliveryEvent, OutboxMessage

    _clear(ws)
    _enqueue(ws, n, "state")
    with ws.state.read() as s:
        ids = list(s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
    now = ws.clock.now()
    start = time.perf_counter()
    for i in ids:
        with ws.state.write() as s:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == i)
                .values(status="sending", claimed_by="plain", claimed_at=now)
            )
        with ws.state.write() as s:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == i)
                .values(status="sent", sent_at=now)
            )
            s.execute(
                insert(DeliveryEvent).values(
                    event_id=f"plain:{i}",
                    outbox_id=i,
                    user_id="u",
                    channel="webhook",
                    kind="sent",
                    at=now,
                    published=False,
                )
            )
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="Rows per measurement.")
    parser.add_argument("--batch", type=int, default=50, help="Rows a worker claims at once.")
    parser.add_argument("--workers", default="1,2,4", help="Worker counts, e.g. 1,2,4.")
    args = parser.parse_args()
    print(json.dumps(measure(args.rows, args.batch, args.workers)))


def measure(rows: int, batch: int, workers: str) -> dict[str, Any]:
    """Run the measurements, print their table and return the figures (the JSON line)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import psycopg

    from liucun.workspace import init_workspace

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    state_url = (
        f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    )
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ws"
            init_workspace(path, state_url=state_url).close()
            with (path / "liucun.toml").open("a", encoding="utf-8") as fh:
                fh.write(f'\n[channels.webhook]\nurl = "{url}"\nsecret = "{SECRET}"\n')
            from liucun.workspace import open_workspace

            with open_workspace(path) as ws:
                results["post_only_per_s"] = _post_only(url, rows)
                results["state_only_per_s"] = _state_only(ws, rows)
                for w in (int(x) for x in workers.split(",")):
                    results[f"deliveries_per_s_{w}w"] = _workers(str(path), ws, rows, w, batch)
    finally:
        server.shutdown()
        with psycopg.connect(PG_DSN, autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"{'measurement':<26}{'per second':>12}")
    for name, value in results.items():
        print(f"{name:<26}{value:>12,.0f}")
    base = results["post_only_per_s"]
    one = results.get("deliveries_per_s_1w")
    return {
        "benchmark": "journeys_delivery",
        "rows": rows,
        "batch": batch,
        "backend": "postgresql",
        **{k: round(v, 1) for k, v in results.items()},
        "baseline": "signed httpx POSTs to the same receiver, 1 process, no state",
        "baseline_per_s": round(base, 1),
        "ratio": None if one is None else round(one / base, 3),
        "ratio_vs_state_only": None if one is None else round(one / results["state_only_per_s"], 3),
        "ratio_4w": (
            None
            if "deliveries_per_s_4w" not in results
            else round(results["deliveries_per_s_4w"] / base, 3)
        ),
    }


if __name__ == "__main__":
    main()
