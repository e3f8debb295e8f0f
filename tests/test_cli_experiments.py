"""`liucun experiment analyze|plan` and the simulated campaign's exposure log, in-process
through Typer's runner against real DuckDB files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats
from typer.testing import CliRunner

from liucun.cli import app
from liucun.experiments.stats import sample_size_proportions
from liucun.simulate import campaign_exposures

WIDE = {"COLUMNS": "200"}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env=WIDE)
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def test_analyze_a_file_of_outcomes_matches_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(2 * n)],
            "variant": ["control"] * n + ["treatment"] * n,
            "orders": np.r_[rng.poisson(1.0, n), rng.poisson(1.3, n)].astype(float),
            "bought": np.r_[rng.random(n) < 0.3, rng.random(n) < 0.4],
        }
    )
    path = tmp_path / "outcomes.csv"
    frame.to_csv(path, index=False)
    code, out = run(
        "experiment", "analyze", "--file", str(path), "--format", "csv", "--correction", "none"
    )
    assert code == 0, out
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"orders", "bought"}
    c, t = (frame[frame.variant == v].orders for v in ("control", "treatment"))
    welch = stats.ttest_ind(t, c, equal_var=False)
    assert float(rows["orders"]["estimate"]) == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert float(rows["orders"]["p_value"]) == pytest.approx(welch.pvalue, rel=1e-9)
    assert rows["bought"]["test"] == "two_proportion_z"


def test_analyze_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    code, out = run("experiment", "analyze")
    assert code == 1 and "name an EXPERIMENT" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_id,orders\nu1,1\n")
    code, out = run("experiment", "analyze", "--file", str(bad))
    assert code == 1 and "no `variant` column" in out
    code, out = run("experiment", "analyze", "--file", str(bad), "--weights", "control")
    assert code == 1 and "VARIANT=SHARE" in out


def test_plan_matches_the_closed_form() -> None:
    code, out = run("experiment", "plan", "--baseline-rate", "0.2", "--mde", "0.02")
    assert code == 0, out
    n = int(np.ceil(float(sample_size_proportions(0.02, baseline=0.2).n_control)))
    assert f"Control {n:,} + treatment {n:,} units" in out
    code, out = run("experiment", "plan", "--sd", "3", "--mde", "0.5", "--units", "10")
    assert code == 1 and "give --mde" in out


def test_simulated_campaign_is_logged_and_analyzed(tmp_path: Path) -> None:
    from liucun.simulate import simulate_shop

    sim = simulate_shop(tmp_path / "sim", preset="b2c", users=3_000, days=200, seed=2)
    log = campaign_exposures(pq.read_table(sim.truth_path))
    assert set(log["variant"].to_pylist()) == {"control", "treatment"}
    assert log.num_rows > 500
    ws = tmp_path / "ws"
    assert run("init", str(ws))[0] == 0
    code, out = run("-w", str(ws), "ingest", "simulated", str(tmp_path / "sim"))
    key = log["experiment"][0].as_py()
    assert code == 0 and f"Logged {log.num_rows:,} exposures" in out, out
    code, out = run("-w", str(ws), "ingest", "simulated", str(tmp_path / "sim"))
    assert (
        code == 0 and f"Logged 0 exposures of the simulated campaign {key} ({log.num_rows:,}" in out
    )
    code, out = run("-w", str(ws), "experiment", "analyze", key)
    assert code == 0, out
    assert "Sample ratio: ok" in out and "ROI of treatment" in out
    code, out = run("-w", str(ws), "experiment", "analyze", key, "--format", "csv")
    metrics = {r["metric"] for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and {"orders", "revenue", "retained_d30", "churned"} <= metrics
    code, out = run("-w", str(ws), "experiment", "analyze", "nope")
    assert code == 1 and f"logged experiments: {key}" in out.replace("\n", "")


@pytest.mark.slow
def test_uplift_train_evaluate_policy_and_the_report(tmp_path: Path) -> None:
    from liucun.simulate import simulate_shop

    sim = simulate_shop(tmp_path / "sim", preset="b2c", users=6_000, days=240, seed=5)
    ws = str(tmp_path / "ws")
    assert run("init", ws)[0] == 0
    assert run("-w", ws, "ingest", "simulated", str(tmp_path / "sim"))[0] == 0
    key = campaign_exposures(pq.read_table(sim.truth_path))["experiment"][0].as_py()
    code, out = run("-w", ws, "uplift", "evaluate")
    assert code == 1 and "train one first" in out.replace("\n", " ")
    code, out = run("-w", ws, "uplift", "train", key, "--threads", "1")
    assert code == 0 and "Saved uplift v1" in out, out
    code, out = run(
        "-w", ws, "uplift", "evaluate", "--truth", str(sim.truth_path), "--format", "csv"
    )
    assert code == 0, out
    table = pd.read_csv(io.StringIO(out))
    assert list(table.policy) == ["uplift", "everyone", "no_one"]  # no churn model yet
    assert table.true_value.notna().all() and (table.set_index("policy").loc["no_one"] == 0).value
    code, out = run("-w", ws, "uplift", "policy")
    assert code == 1 and "give a budget" in out
    target = tmp_path / "treat.csv"
    code, out = run("-w", ws, "uplift", "policy", "--max-customers", "100", "--list", str(target))
    assert code == 0 and "sleeping dogs" in out, out
    chosen = pd.read_csv(target)
    assert 0 < len(chosen) <= 100 and chosen.treat.all()
    assert chosen.expected_profit.is_monotonic_decreasing
    report = tmp_path / "r.html"
    code, out = run("-w", ws, "report", "--out", str(report))
    assert code == 0, out
    section = report.read_text(encoding="utf-8").split('id="experiments"')[1]
    assert 'class="empty"' not in section and section.count("Plotly.newPlot") == 3
    assert f"{key}: " in section and "sample ratio ok" in section
