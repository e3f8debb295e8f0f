"""Scoring speed: every customer of a simulated shop, BTYD + churn + reasons, end to end.

Simulates a b2c shop (reused from ``benchmarks/out`` when present), ingests it into a
DuckDB workspace, trains once (a short schedule: the model's quality is not what is
measured here), then times ``liucun.models.score_customers`` — features as of the date,
calibrated churn risk, SHAP reasons as sentences, P(alive), expected orders and CLV,
stage and segment, and the write to the ``scores`` table — and, as the baseline measured
in the same run, the bare LightGBM prediction on the same feature matrix (the floor any
scorer pays). Prints each step's time, then one JSON line (ARCHITECTURE §6).

    python benchmarks/scoring.py --users 2200000   # about 1,000,000 buyers
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_200_000, help="Simulated users.")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()

    from liucun.ingest import ingest_events, ingest_users
    from liucun.models import score_customers, train_models
    from liucun.models.churn import build_features
    from liucun.simulate import simulate_shop
    from liucun.warehouse import resolved_events
    from liucun.workspace import init_workspace, open_workspace

    root = args.out / f"scoring-{args.users}"
    sim_dir, ws_dir = root / "sim", root / "ws"
    if not (sim_dir / "truth.parquet").exists():
        t0 = time.perf_counter()
        simulate_shop(sim_dir, preset="b2c", users=args.users, days=args.days, seed=3)
        print(f"simulated {args.users:,} users in {time.perf_counter() - t0:.1f} s")
    if not ws_dir.exists():
        t0 = time.perf_counter()
        with init_workspace(ws_dir) as ws:
            ingest_users(ws.warehouse, [sim_dir / "users.parquet"])
            ingest_events(ws.warehouse, [sim_dir / "events"])
        print(f"ingested in {time.perf_counter() - t0:.1f} s")

    def step(name: str) -> None:
        print(f"  {time.perf_counter() - started:7.1f} s  {name}", flush=True)

    with open_workspace(ws_dir) as ws:
        started = time.perf_counter()
        print("training (short schedule)")
        train_models(ws, n_cutoffs=1, refit=False, on_step=step)
        print("scoring")
        started = time.perf_counter()
        card, rows = score_customers(ws, on_step=step)
        score_s = time.perf_counter() - started
        print(f"scored {len(rows):,} customers in {score_s:.1f} s")

        # the floor: the uncalibrated LightGBM prediction on the same features, without
        # reasons, BTYD, profiles or writes
        from liucun.models import load_model

        bundle, _ = load_model(ws.models_dir, card.name, card.version)
        wh = ws.warehouse
        events = resolved_events(wh.table("events"), wh.table("identities"))
        as_of = rows.as_of.iloc[0].to_pydatetime().replace(tzinfo=None)
        feats = build_features(events, wh.table("users"), as_of=as_of)
        churn = bundle["churn"]
        t0 = time.perf_counter()
        churn.predict_raw(feats)
        bare_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bare LightGBM predict on the same {len(feats):,} rows: {bare_s:.1f} s")
    print(
        json.dumps(
            {
                "benchmark": "scoring",
                "users": args.users,
                "customers": len(rows),
                "liucun_score_s": round(score_s, 2),
                "customers_per_s": round(len(rows) / score_s),
                "baseline": "bare LightGBM predict on the feature matrix",
                "baseline_s": round(bare_s, 2),
                "ratio": round(score_s / bare_s, 1),
                "peak_rss_mb": round(peak),
            }
        )
    )


if __name__ == "__main__":
    main()
