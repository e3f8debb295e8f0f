"""BG/NBD fitting speed: liucun's BetaGeoModel against lifetimes' BetaGeoFitter.

Both fit the same data in the same run: the CDNOW sample (39-week calibration) and N
customers simulated from a BG/NBD process. lifetimes is unmaintained and is never a
project dependency: it is installed into a throwaway virtual environment under
``benchmarks/out/`` and run there as a subprocess; if that fails, the comparison is
skipped with a message. Prints a table, then one JSON line (ARCHITECTURE §6).

    python benchmarks/btyd.py --users 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np

from liucun.datasets import cdnow_rft, load_cdnow
from liucun.models.btyd import BetaGeoModel

LIFETIMES_FIT = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
from lifetimes import BetaGeoFitter
d = np.load(sys.argv[1])
best = None
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    m = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"])
    best = min(best or 1e99, time.perf_counter() - t0)
p = m.params_
print(json.dumps({"seconds": best, "r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"]}))
"""


def simulate_bgnbd(n: int, *, seed: int = 0, r=0.25, alpha=4.0, a=0.8, b=2.5) -> dict:
    """frequency, recency, T (weeks, whole days) of ``n`` customers from a BG/NBD process."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    big_t = rng.uniform(10, 52, n)
    t = np.zeros(n)
    freq = np.zeros(n, dtype=np.int64)
    rec = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        bought = t[idx] < big_t[idx]
        hit = idx[bought]
        freq[hit] += 1
        rec[hit] = t[hit]
        alive[idx[~bought]] = False
        alive[hit[rng.random(hit.size) < p[hit]]] = False  # drop out after a purchase
    # Day granularity, like summaries from the warehouse (liucun.models.customer_summary).
    day = 1 / 7
    return {
        "frequency": freq.astype(float),
        "recency": np.floor(rec / day) * day,
        "T": np.floor(big_t / day) * day,
    }


def lifetimes_python(out: Path) -> Path | None:
    env = out / "lifetimes-venv"
    py = env / "bin" / "python"
    if not py.exists():
        print("installing lifetimes into a throwaway environment …", file=sys.stderr)
        venv.create(env, with_pip=True)
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "lifetimes==0.11.3", "setuptools<81"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(
                f"lifetimes could not be installed; skipping it:\n{done.stderr[-800:]}",
                file=sys.stderr,
            )
            return None
    return py


def fit_liucun(d: dict, repeat: int) -> tuple[float, BetaGeoModel]:
    best, model = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        model = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"])
        best = min(best, time.perf_counter() - t0)
    return best, model  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="Best of N fits.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rft = cdnow_rft(load_cdnow())
    datasets = {
        "cdnow": {c: rft[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")},
        f"simulated-{args.users}": simulate_bgnbd(args.users),
    }
    py = lifetimes_python(args.out)
    rows = []
    for name, d in datasets.items():
        ours_s, model = fit_liucun(d, args.repeat)
        row = {
            "data": name,
            "customers": len(d["T"]),
            "liucun_fit_s": ours_s,
            "liucun_ll": model.log_likelihood_,
            "params": model.params_,
        }
        if py is not None:
            path = args.out / f"{name}.npz"
            np.savez(path, **d)
            done = subprocess.run(
                [str(py), "-c", LIFETIMES_FIT, str(path), str(args.repeat)],
                capture_output=True,
                text=True,
            )
            if done.returncode == 0:
                theirs = json.loads(done.stdout.strip().splitlines()[-1])
                their_params = {k: theirs[k] for k in ("r", "alpha", "a", "b")}
                their_ll = BetaGeoModel.from_params(their_params).log_likelihood(
                    d["frequency"], d["recency"], d["T"]
                )
                row |= {
                    "lifetimes_fit_s": theirs["seconds"],
                    "lifetimes_ll": their_ll,
                    "speedup_vs_lifetimes": theirs["seconds"] / ours_s,
                    "ll_rel_diff": abs(their_ll - model.log_likelihood_)
                    / abs(model.log_likelihood_),
                }
            else:
                print(f"lifetimes failed on {name}: {done.stderr[-500:]}", file=sys.stderr)
        rows.append(row)
        print(
            f"{name:22s} liucun {ours_s:8.3f} s  LL {model.log_likelihood_:14.2f}   "
            + (
                f"lifetimes {row['lifetimes_fit_s']:8.3f} s  LL {row['lifetimes_ll']:14.2f}"
                f"   speed-up {row['speedup_vs_lifetimes']:6.1f}×"
                if "lifetimes_fit_s" in row
                else "lifetimes: skipped"
            )
        )
    big = rows[-1]
    print(
        json.dumps(
            {
                "benchmark": "btyd",
                "customers": big["customers"],
                "liucun_fit_s": round(big["liucun_fit_s"], 4),
                "lifetimes_fit_s": round(big.get("lifetimes_fit_s", float("nan")), 4),
                "speedup_vs_lifetimes": round(big.get("speedup_vs_lifetimes", float("nan")), 2),
                "ll_rel_diff": big.get("ll_rel_diff"),
                "baseline": "lifetimes 0.11.3 BetaGeoFitter",
                "cdnow_speedup_vs_lifetimes": round(
                    rows[0].get("speedup_vs_lifetimes", float("nan")), 2
                ),
                "cdnow_ll_rel_diff": rows[0].get("ll_rel_diff"),
            }
        )
    )


if __name__ == "__main__":
    main()
