"""Points ledger: awards and redemptions per second and their p50/p99 latency with
concurrent writer processes, against a plain INSERT of the same rows in the same run.

For each state backend (SQLite in a fresh workspace; PostgreSQL at 127.0.0.1:5432,
database ``test``, in a fresh schema dropped afterwards) ``--writers`` processes each
open the workspace and, started together by a barrier, run four phases of ``--ops``
calls in all (``--ops / --writers`` each):

1. the baseline: one ``INSERT`` per transaction of the row an award writes to
   ``loyalty_transactions`` into a table of the same shape (same columns, primary key
   and unique key index), through the workspace's own state engine (same connection
   settings: on SQLite ``BEGIN IMMEDIATE``, WAL, ``synchronous=NORMAL``);
2. ``loyalty.award`` of 10 points to one of ``--users`` members, a new key each call;
3. ``loyalty.redeem`` of 1 point from the same members;
4. ``loyalty.award_many`` of the same awards as phase 2 under new keys, ``--batch`` per
   call (one transaction and one commit per batch).

Rates are calls (phase 4: awards) over the wall time from the first start to the last
finish; latencies are per call (phase 4: per batch). The ratio is awards/s of single
``award`` calls over plain inserts/s; the batch rate is reported on its own
(``award_many_per_s_*``), never in place of it. Writer 0 also counts the SQL statements
each kind of call sends (phase 4: per award). With ``--diagnose``, PostgreSQL is measured a
second time with ``synchronous_commit=off`` (commits no longer wait for the WAL flush)
to show how much of the time is the per-commit fsync.

**Accrual** (``--accrual-orders N``, default 1,000,000; 0 skips it): a history of N
orders of N/10 customers over a year (90 % delivered two days later, 3 % refunded in
part or whole), built directly as an events frame, under the default program
(``examples/loyalty/program.yaml``: points pending until delivery, month-rounded
validity, the first-order bonus). Timed separately: the plan (``plan_accrual`` and the
ledger operations from it, orders/s) and, per backend, the write of every operation
into a fresh ledger through the batch path (orders/s and ledger writes/s); then
``loyalty.check`` must hold and every operation be in the ledger once.
``accrual_orders_per_s`` in the JSON line is orders over plan + write time on
PostgreSQL (SQLite when PostgreSQL is not measured). Prints a table, then one JSON line.

    python benchmarks/loyalty.py --ops 4000 --writers 8 [--diagnose] [--accrual-orders 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("out")
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PHASES = ("insert", "award", "redeem", "award_many")
PLAIN = "bench_plain_insert"


def _plain_table(metadata: Any) -> Any:
    """A table shaped like ``loyalty_transactions`` (columns, key and unique index), with
    no foreign keys: what one plain insert of an award's row costs."""
    from sqlalchemy import Column, Table

    from liucun.state import LoyaltyTransaction

    columns = [
        Column(
            c.name,
            c.type,
            primary_key=c.primary_key,
            autoincrement=c.autoincrement,
            unique=bool(c.unique),
            index=bool(c.index),
            nullable=c.nullable,
        )
        for c in LoyaltyTransaction.__table__.columns
    ]
    return Table(PLAIN, metadata, *columns)


def _writer(
    path: str, w: int, writers: int, n: int, users: int, batch: int, barrier: Any, out: Any
) -> None:
    from sqlalchemy import MetaData, event, insert

    from liucun import loyalty
    from liucun.workspace import open_workspace

    with open_workspace(path) as ws:
        plain = _plain_table(MetaData())
        statements = [0]
        if w == 0:

            def count(*args: Any) -> None:
                # an executemany counts each of its parameter sets (psycopg pipelines
                # them: they cost the server a statement each, not a round trip each)
                parameters, executemany = args[3], args[5]
                statements[0] += len(parameters) if executemany else 1

            event.listen(ws.state.engine, "before_cursor_execute", count)
        now = datetime(2026, 12, 1, tzinfo=UTC)

        def plain_insert(i: int) -> None:
            with ws.state.write() as s:
                s.execute(
                    insert(plain).values(
                        key=f"p-{w}-{i}",
                        kind="addition",
                        program="default",
                        user_id=f"m{(i * writers + w) % users}",
                        account_id=1 + (i * writers + w) % users,
                        points=10,
                        growth=0,
                        reason=None,
                        request=json.dumps({"op": "award", "points": 10, "key": f"p-{w}-{i}"}),
                        reverses_id=None,
                        balance_after=10,
                        created_at=now,
                    )
                )

        calls = {
            "insert": plain_insert,
            "award": lambda i: loyalty.award(
                ws, f"m{(i * writers + w) % users}", 10, key=f"b-a-{w}-{i}"
            ),
            "redeem": lambda i: loyalty.redeem(
                ws, f"m{(i * writers + w) % users}", 1, key=f"b-r-{w}-{i}"
            ),
            "award_many": lambda i: loyalty.award_many(
                ws,
                [
                    {
                        "user_id": f"m{(j * writers + w) % users}",
                        "points": 10,
                        "key": f"b-m-{w}-{j}",
                    }
                    for j in range(i * batch, min(n, (i + 1) * batch))
                ],
            ),
        }
        rounds = {phase: n for phase in PHASES} | {"award_many": -(-n // batch)}
        # warm up: connection, mappers, statement caches
        plain_insert(-1)
        loyalty.award(ws, f"warm-{w}", 2, key=f"warm-a-{w}")
        loyalty.redeem(ws, f"warm-{w}", 1, key=f"warm-r-{w}")
        loyalty.award_many(ws, [{"user_id": f"warm-{w}", "points": 1, "key": f"warm-m-{w}"}])
        for phase in PHASES:
            barrier.wait()
            statements[0] = 0
            latencies = []
            start = time.perf_counter()
            for i in range(rounds[phase]):
                t0 = time.perf_counter()
                calls[phase](i)
                latencies.append(time.perf_counter() - t0)
            end = time.perf_counter()
            out.put((phase, w, start, end, latencies, statements[0]))


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def bench(
    label: str, url: str, root: Path, *, ops: int, writers: int, users: int, batch: int
) -> dict:
    from sqlalchemy import MetaData, func, select

    from liucun import loyalty
    from liucun.state import LoyaltyTransaction
    from liucun.workspace import init_workspace

    shutil.rmtree(root, ignore_errors=True)
    with init_workspace(root / "ws", state_url=url) as ws:
        metadata = MetaData()
        _plain_table(metadata)
        metadata.create_all(ws.state.engine)
    n = max(1, ops // writers)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(writers)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer, args=(str(root / "ws"), w, writers, n, users, batch, barrier, out)
        )
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in range(writers * len(PHASES))]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"{label}: a writer failed (exit code {p.exitcode})")
    figures: dict[str, Any] = {}
    for phase in PHASES:
        rows = [r for r in results if r[0] == phase]
        wall = max(r[3] for r in rows) - min(r[2] for r in rows)
        lat = sorted(x for r in rows for x in r[4])
        figures[phase] = {
            "per_s": round(n * writers / wall),
            "p50_ms": round(_quantile(lat, 0.50) * 1000, 2),
            "p99_ms": round(_quantile(lat, 0.99) * 1000, 2),
            "statements": round(next(r[5] for r in rows if r[1] == 0) / n, 1),
            "wall_s": round(wall, 2),
        }
    # a broken run proves nothing: every call in the ledger once, every invariant holds
    from liucun.workspace import open_workspace

    with open_workspace(root / "ws") as ws:
        report = loyalty.check(ws)
        with ws.state.read() as s:
            stored = s.scalar(select(func.count()).select_from(LoyaltyTransaction))
        backend = ws.state.backend
    expected = 3 * n * writers + 3 * writers
    if not report.ok or stored != expected:
        raise SystemExit(
            f"{label}: broken run: {stored} transactions (expected {expected}), "
            f"violations {report.violations[:5]}"
        )
    figures["backend"] = backend
    return figures


def accrual_history(orders: int, seed: int = 5) -> Any:
    """``orders`` orders of ``orders // 10`` customers over 2025, with deliveries and
    refunds, as an events frame (the columns ``plan_accrual`` reads)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01", tz="UTC")
    ts = start + pd.to_timedelta(rng.integers(0, 365 * 86_400, orders), unit="s")
    users = np.char.add("c", rng.integers(0, max(1, orders // 10), orders).astype(str))
    ids = np.char.add("o", np.arange(orders).astype(str))
    revenue = np.round(rng.gamma(2.0, 60.0, orders), 2)
    revenue[rng.random(orders) < 0.01] = 0.0  # free orders
    parts = [
        pd.DataFrame(
            {"event_id": ids, "user_id": users, "event_type": "order", "ts": ts,
             "revenue": revenue, "currency": "CNY", "order_id": ids}
        )
    ]  # fmt: skip
    shipped = rng.random(orders) < 0.9
    parts.append(
        pd.DataFrame(
            {"event_id": np.char.add("d", ids[shipped]), "user_id": users[shipped],
             "event_type": "delivery", "ts": ts[shipped] + pd.Timedelta(days=2),
             "revenue": np.nan, "currency": None, "order_id": ids[shipped]}
        )
    )  # fmt: skip
    back = rng.random(orders) < 0.03
    share = rng.choice([0.25, 0.5, 1.0], int(back.sum()))
    parts.append(
        pd.DataFrame(
            {"event_id": np.char.add("r", ids[back]), "user_id": users[back],
             "event_type": "refund",
             "ts": ts[back] + pd.to_timedelta(rng.integers(1, 10, int(back.sum())), unit="D"),
             "revenue": np.round(revenue[back] * share, 2), "currency": "CNY",
             "order_id": ids[back]}
        )
    )  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    for name in ("channel", "category", "properties"):
        frame[name] = None
    return frame


def bench_accrual(orders: int, targets: list[tuple[str, Any]]) -> dict[str, Any]:
    """Plan ``orders`` orders once, then write the plan into a fresh ledger per target."""
    from sqlalchemy import func, select

    from liucun import loyalty
    from liucun.loyalty._accrue import accrual_ops
    from liucun.loyalty._batch import apply_batch
    from liucun.state import LoyaltyTransaction
    from liucun.workspace import init_workspace

    program = loyalty.load_program(Path(__file__).parents[1] / "examples/loyalty/program.yaml")
    events = accrual_history(orders)
    t0 = time.perf_counter()
    plan = loyalty.plan_accrual(events, program)
    ops = accrual_ops(plan, since=None, policy=program.points.return_policy)
    plan_s = time.perf_counter() - t0
    figures: dict[str, Any] = {
        "accrual_orders": orders,
        "accrual_events": len(events),
        "accrual_operations": len(ops),
        "accrual_plan_s": round(plan_s, 2),
        "accrual_plan_orders_per_s": round(orders / plan_s),
    }
    print(f"accrual: {orders:,} orders, {len(events):,} events → {len(ops):,} ledger "
          f"operations planned in {plan_s:.1f} s ({orders / plan_s:,.0f} orders/s)")  # fmt: skip
    for label, make_url in targets:
        root = OUT / f"accrual-{label}"
        shutil.rmtree(root, ignore_errors=True)
        with make_url(root) as url, init_workspace(root / "ws", state_url=url) as ws:
            t0 = time.perf_counter()
            out = apply_batch(ws, ops, program="default", batch_size=2000)
            write_s = time.perf_counter() - t0
            written = sum(o.status == "written" for o in out)
            report = loyalty.check(ws)
            with ws.state.read() as s:
                stored = s.scalar(select(func.count()).select_from(LoyaltyTransaction))
            if not report.ok or stored != written or written != len(ops):
                raise SystemExit(
                    f"accrual on {label}: broken run: {stored} transactions, {written} "
                    f"written of {len(ops)}; violations {report.violations[:5]}"
                )
        shutil.rmtree(root, ignore_errors=True)
        print(f"  write on {label}: {write_s:.1f} s, {orders / write_s:,.0f} orders/s, "
              f"{written / write_s:,.0f} ledger writes/s; check holds")  # fmt: skip
        figures[f"accrual_write_s_{label}"] = round(write_s, 2)
        figures[f"accrual_write_orders_per_s_{label}"] = round(orders / write_s)
        figures[f"accrual_writes_per_s_{label}"] = round(written / write_s)
        figures[f"accrual_orders_per_s_{label}"] = round(orders / (plan_s + write_s))
    best = "postgres" if "accrual_orders_per_s_postgres" in figures else targets[0][0]
    figures["accrual_orders_per_s"] = figures.get(f"accrual_orders_per_s_{best}")
    return figures


class _SqliteUrl:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.root / 'state.sqlite').resolve()}"

    def __exit__(self, *_: Any) -> None:
        return None


class _PgSchema:
    """A fresh schema in the ``test`` database, dropped on exit."""

    def __init__(self, options: str = "") -> None:
        self.schema = f"bench_loyalty_{uuid.uuid4().hex[:10]}"
        self.options = options

    def __enter__(self) -> str:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as con:
            con.execute(f'CREATE SCHEMA "{self.schema}"')
        opts = f"-csearch_path%3D{self.schema}" + self.options
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options={opts}"

    def __exit__(self, *_: Any) -> None:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as con:
            con.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000, help="calls per phase and backend")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer processes")
    parser.add_argument("--users", type=int, default=500, help="members the calls spread over")
    parser.add_argument("--batch", type=int, default=100, help="awards per award_many call")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="measure PostgreSQL a second time with synchronous_commit=off (fsync's share)",
    )
    parser.add_argument(
        "--accrual-orders",
        type=int,
        default=1_000_000,
        help="orders in the accrual history (0: skip the accrual measurement)",
    )
    parser.add_argument(
        "--skip-ledger",
        action="store_true",
        help="measure only the accrual (no award/redeem phases)",
    )
    args = parser.parse_args()
    runs: list[tuple[str, Any]] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            runs.append(("sqlite", None))
        elif backend == "postgresql":
            runs.append(("postgres", ""))
            if args.diagnose:
                runs.append(("postgres_async_commit", "%20-csynchronous_commit%3Doff"))
        else:
            raise SystemExit(f"--backends: unknown backend {backend!r}; use sqlite,postgresql")

    summary: dict[str, Any] = {
        "benchmark": "loyalty",
        "ops": args.ops,
        "writers": args.writers,
        "users": args.users,
        "batch": args.batch,
        "cpus": os.cpu_count(),
        "load_avg_at_start": round(os.getloadavg()[0], 2),
        "baseline": "one INSERT per transaction of an award's loyalty_transactions row into a "
        "table of the same shape, same engine, same writers",
    }
    sizes = {"ops": args.ops, "writers": args.writers, "users": args.users, "batch": args.batch}
    for label, options in [] if args.skip_ledger else runs:
        root = OUT / f"loyalty-{label}"
        if options is None:
            url = f"sqlite:///{(root / 'state.sqlite').resolve()}"
            figures = bench(label, url, root, **sizes)
        else:
            with _PgSchema(options) as url:
                figures = bench(label, url, root, **sizes)
        shutil.rmtree(root, ignore_errors=True)
        ins, aw, rd, many = (figures[p] for p in PHASES)
        ratio = aw["per_s"] / ins["per_s"]
        print(f"{label} ({args.writers} writers, {args.ops} calls per phase):")
        for phase, f in (("plain insert", ins), ("award", aw), ("redeem", rd)):
            print(
                f"  {phase:>12}: {f['per_s']:>6,}/s  p50 {f['p50_ms']:>7.2f} ms  "
                f"p99 {f['p99_ms']:>7.2f} ms  ({f['statements']} SQL statements per call)"
            )
        print(
            f"  {'award_many':>12}: {many['per_s']:>6,} awards/s  batches of {args.batch}: "
            f"p50 {many['p50_ms']:.2f} ms  p99 {many['p99_ms']:.2f} ms  "
            f"({many['statements']} SQL statements per award)"
        )
        print(f"  award / plain insert = {ratio:.2f}")
        summary.update(
            {
                f"awards_per_s_{label}": aw["per_s"],
                f"award_p50_ms_{label}": aw["p50_ms"],
                f"award_p99_ms_{label}": aw["p99_ms"],
                f"redeems_per_s_{label}": rd["per_s"],
                f"redeem_p50_ms_{label}": rd["p50_ms"],
                f"redeem_p99_ms_{label}": rd["p99_ms"],
                f"inserts_per_s_{label}": ins["per_s"],
                f"insert_p50_ms_{label}": ins["p50_ms"],
                f"insert_p99_ms_{label}": ins["p99_ms"],
                f"ratio_vs_insert_{label}": round(ratio, 3),
                f"statements_per_award_{label}": aw["statements"],
                f"statements_per_redeem_{label}": rd["statements"],
                f"award_many_per_s_{label}": many["per_s"],
                f"award_many_batch_p50_ms_{label}": many["p50_ms"],
                f"award_many_batch_p99_ms_{label}": many["p99_ms"],
                f"statements_per_award_in_batch_{label}": many["statements"],
            }
        )
    if args.accrual_orders > 0:
        targets: list[tuple[str, Any]] = []
        for label, options in runs:
            if options is None:
                targets.append((label, _SqliteUrl))
            elif options == "":
                targets.append((label, lambda _root: _PgSchema()))
        summary.update(bench_accrual(args.accrual_orders, targets))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
