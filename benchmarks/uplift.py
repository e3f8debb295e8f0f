"""Uplift: liucun's XLearner against causalml's BaseXRegressor, same data, same LightGBM.

A simulated shop (``--users`` customers, preset b2c) is ingested into a workspace and its
randomized past coupon campaign becomes a training frame (liucun's
``campaign_training_frame``: pre-campaign features, revenue in the 30 days after the
coupon, true individual effects from the simulator). One seeded 50/50 split; both
libraries fit an X-learner with the same LightGBM regressors (``--threads`` threads,
deterministic) and the known propensity, and predict the test half. Both predictions are
scored by the same function (``liucun.models.uplift.evaluate_uplift``) on the same test
split: the AUUC (area between the Qini curve and a random ranking, in revenue per
customer; random = 0), and against the simulated truth the correlation and the Qini
coefficient (1 = ranking by the true effects, 0 = random).

causalml is never a project dependency: it is installed into a throwaway virtual
environment under ``benchmarks/out/`` and run there as a subprocess; if that fails, the
comparison is skipped with a message. Times are the best of ``--repeat`` runs, the two
libraries alternating so that both meet the same load (LightGBM timings on a shared
machine are noisy; the JSON carries the load average before and after). Prints a table,
then one JSON line (ARCHITECTURE §6): ``ratio`` = causalml's fit+predict time ÷
liucun's (> 1: liucun is faster); ``qini_*`` and ``*_auuc`` are the same observed Qini
AUUC.

    python benchmarks/uplift.py --users 100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from liucun.ingest import ingest_events, ingest_users
from liucun.models.uplift import (
    CATEGORICAL_FEATURES,
    FEATURES,
    XLearner,
    assignments_from_truth,
    campaign_training_frame,
    evaluate_uplift,
)
from liucun.simulate import simulate_shop
from liucun.workspace import init_workspace, open_workspace

CAUSALML = "causalml==0.18.0"

CAUSALML_RUN = r"""
import json, sys, time
import numpy as np, pandas as pd, lightgbm as lgb
from causalml.inference.meta import BaseXRegressor
data, feats, repeat, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
params = json.loads(sys.argv[4])
d = pd.read_parquet(data)
train, test = d[~d["_test"]], d[d["_test"]]
X, w = train[feats], train["treated"].astype(int).to_numpy()
y, p = train["_y"].to_numpy(), train["propensity"].to_numpy()
Xt, pt = test[feats], test["propensity"].to_numpy()
fit_s = total_s = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    m = BaseXRegressor(learner=lgb.LGBMRegressor(**params)).fit(X, treatment=w, y=y, p=p)
    t1 = time.perf_counter()
    pred = np.ravel(m.predict(Xt, p=pt))
    t2 = time.perf_counter()
    fit_s, total_s = min(fit_s, t1 - t0), min(total_s, t2 - t0)
np.save(out, pred)
print(json.dumps({"fit_s": fit_s, "total_s": total_s}))
"""

CAUSALML_SCORE = r"""
import json, sys
import numpy as np, pandas as pd
from causalml.metrics import auuc_score, qini_score
d = pd.read_parquet(sys.argv[1])  # columns y, w and one column per model; no "tau" column
a = auuc_score(d, outcome_col="y", treatment_col="w", normalize=True)
q = qini_score(d, outcome_col="y", treatment_col="w", normalize=True)
print(json.dumps({"auuc_score": a.to_dict(), "qini_score": q.to_dict()}))
"""


def causalml_python(out: Path) -> Path | None:
    """The throwaway environment's python, installing causalml on first use."""
    env = out / "causalml-venv"
    py = env / "bin" / "python"
    if not py.exists():
        venv.create(env, with_pip=True)
    check = [str(py), "-c", "import causalml, pyarrow"]
    if subprocess.run(check, capture_output=True).returncode != 0:
        print(
            "installing causalml into a throwaway environment (about a minute) …", file=sys.stderr
        )
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", CAUSALML, "lightgbm==4.7.0", "pyarrow"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(
                f"causalml could not be installed; skipping the comparison:\n{done.stderr[-800:]}",
                file=sys.stderr,
            )
            return None
    return py


def campaign_frame(users: int, seed: int, out: Path) -> pd.DataFrame:
    """The simulated campaign's training frame (cached under ``out``)."""
    root = out / f"uplift-shop-{users}-{seed}"
    cached = root / "frame.parquet"
    if cached.exists():
        return pd.read_parquet(cached)
    print(f"simulating and ingesting {users:,} users …", file=sys.stderr)
    sim = simulate_shop(root / "sim", preset="b2c", users=users, seed=seed)
    ws_path = root / "ws"
    ws = open_workspace(ws_path) if ws_path.exists() else init_workspace(ws_path)
    with ws:
        if ws.warehouse.count("events") == 0:
            ingest_users(ws.warehouse, [sim.users_path])
            ingest_events(ws.warehouse, [sim.events_dir])
        wh = ws.warehouse
        truth = wh.read_arrow(pq.read_table(sim.truth_path), name="truth")
        frame = campaign_training_frame(
            wh.table("events"), assignments_from_truth(truth), users=wh.table("users")
        ).to_pandas()
    frame.to_parquet(cached)
    return frame


def lightgbm_settings(model: XLearner) -> dict[str, Any]:
    """The LGBMRegressor arguments equal to liucun's LightGBM parameters."""
    p = model.lightgbm_params()
    return {
        "n_estimators": model.n_estimators,
        "learning_rate": p["learning_rate"],
        "num_leaves": p["num_leaves"],
        "min_child_samples": p["min_data_in_leaf"],
        "random_state": p["seed"],
        "n_jobs": p["num_threads"],
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    }


def run_liucun(
    model: XLearner, train: pd.DataFrame, test: pd.DataFrame, repeat: int
) -> tuple[float, float, np.ndarray]:
    fit_s = total_s = math.inf
    pred = np.empty(0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.fit(train[list(FEATURES)], train.treated, train._y, propensity=train.propensity)
        t1 = time.perf_counter()
        pred = model.predict(test[list(FEATURES)], propensity=test.propensity)
        t2 = time.perf_counter()
        fit_s, total_s = min(fit_s, t1 - t0), min(total_s, t2 - t0)
    return fit_s, total_s, pred


def _best(old: tuple[float, float] | None, new: tuple[float, float]) -> tuple[float, float]:
    return new if old is None else (min(old[0], new[0]), min(old[1], new[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="Simulated users.")
    parser.add_argument("--seed", type=int, default=7, help="Simulation seed.")
    parser.add_argument("--repeat", type=int, default=5, help="Best of N alternating fits.")
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads.")
    parser.add_argument("--outcome", choices=("revenue", "orders"), default="revenue")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    frame = campaign_frame(args.users, args.seed, args.out)
    frame["_y"] = frame[f"outcome_{args.outcome}"].astype(float)
    for col in CATEGORICAL_FEATURES:  # one set of levels for both libraries
        frame[col] = pd.Categorical(frame[col], sorted(frame[col].dropna().unique()))
    frame["_test"] = np.random.default_rng(0).random(len(frame)) < 0.5
    train, test = frame[~frame._test], frame[frame._test]
    tau = test[f"true_effect_{args.outcome}"].to_numpy()

    model = XLearner(num_threads=args.threads)
    py = causalml_python(args.out)
    data = args.out / f"uplift-{args.users}.parquet"
    frame[[*FEATURES, "treated", "propensity", "_y", "_test"]].to_parquet(data)
    pred_path = args.out / f"uplift-{args.users}-causalml.npy"
    params = json.dumps(lightgbm_settings(model))
    run_theirs = [str(py), "-c", CAUSALML_RUN, str(data), json.dumps(list(FEATURES)), "1"]
    run_theirs += [params, str(pred_path)]
    load_before = os.getloadavg()[0]
    # alternate the two libraries so both meet the same load on a shared machine
    times: dict[str, tuple[float, float]] = {}
    preds: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        fit_s, total_s, preds["liucun"] = run_liucun(model, train, test, 1)
        times["liucun"] = _best(times.get("liucun"), (fit_s, total_s))
        if py is None:
            continue
        done = subprocess.run(run_theirs, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"causalml failed: {done.stderr[-800:]}", file=sys.stderr)
            py = None
            continue
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
        times["causalml"] = _best(times.get("causalml"), (theirs["fit_s"], theirs["total_s"]))
        preds["causalml"] = np.load(pred_path)
    load_after = os.getloadavg()[0]
    fit_l, total_l = times["liucun"]
    scores = {
        name: evaluate_uplift(test._y, test.treated, pred, true_effect=tau)
        for name, pred in preds.items()
    }
    cross: dict[str, Any] = {}
    if "causalml" in preds:
        # causalml's own scorer as a cross-check (random ≈ 0.5 there, see PITFALLS)
        both = pd.DataFrame(
            {"y": test._y.to_numpy(), "w": test.treated.astype(int).to_numpy(), **preds}
        )
        score_path = args.out / f"uplift-{args.users}-scores.parquet"
        both.to_parquet(score_path)
        check = subprocess.run(
            [str(py), "-c", CAUSALML_SCORE, str(score_path)], capture_output=True, text=True
        )
        if check.returncode == 0:
            cross = json.loads(check.stdout.strip().splitlines()[-1])

    print(
        f"campaign units {len(frame):,} (train {len(train):,}, test {len(test):,}), "
        f"outcome {args.outcome}, LightGBM threads {args.threads}, best of {args.repeat}"
    )
    print(
        f"{'':10s} {'fit s':>8s} {'fit+pred s':>11s} {'AUUC':>10s} {'Qini coef':>10s} "
        f"{'pearson':>8s} {'spearman':>9s}"
    )
    for name, ev in scores.items():
        fit_s, total_s = times[name]
        print(
            f"{name:10s} {fit_s:8.3f} {total_s:11.3f} {ev.auuc:10.5f} "
            f"{ev.qini_coefficient or float('nan'):10.4f} {ev.pearson or float('nan'):8.4f} "
            f"{ev.spearman or float('nan'):9.4f}"
        )
    if "causalml" not in scores:
        print("causalml: skipped (see the message above)")
    else:
        diff = float(np.max(np.abs(preds["liucun"] - preds["causalml"])))
        print(f"largest difference between the two predictions: {diff:.3g}")
        if cross:
            print(f"causalml's own normalized auuc_score (random ≈ 0.5): {cross['auuc_score']}")

    ours, theirs_ev = scores["liucun"], scores.get("causalml")
    nan = float("nan")
    result = {
        "benchmark": "uplift",
        "users": args.users,
        "units": len(frame),
        "rows": len(frame),
        "train_units": len(train),
        "test_units": len(test),
        "outcome": args.outcome,
        "threads": args.threads,
        "liucun_s": round(total_l, 4),
        "causalml_s": round(times.get("causalml", (nan, nan))[1], 4),
        "ratio": round(times.get("causalml", (nan, nan))[1] / total_l, 3),
        "fit_s_liucun": round(fit_l, 4),
        "fit_s_causalml": round(times.get("causalml", (nan, nan))[0], 4),
        "liucun_auuc": ours.auuc,
        "causalml_auuc": theirs_ev.auuc if theirs_ev else nan,
        "qini_liucun": ours.auuc,
        "qini_causalml": theirs_ev.auuc if theirs_ev else nan,
        "qini_coefficient_liucun": ours.qini_coefficient,
        "qini_coefficient_causalml": theirs_ev.qini_coefficient if theirs_ev else nan,
        "corr_liucun": ours.pearson,
        "corr_causalml": theirs_ev.pearson if theirs_ev else nan,
        "max_abs_prediction_diff": (
            float(np.max(np.abs(preds["liucun"] - preds["causalml"]))) if theirs_ev else nan
        ),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "baseline": f"{CAUSALML} BaseXRegressor(LGBMRegressor)",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
