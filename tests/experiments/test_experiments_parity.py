"""The experiment analysis gives the same numbers on DuckDB and on PySpark: exposures
logged through each store's writer, outcomes and statistics computed by each backend.

Runs in CI (the `spark` extra and Java 17); locally it skips without them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from liucun.experiments import (
    AnalysisSettings,
    Experiment,
    analyze_experiment,
    assign,
    log_exposures,
)
from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import simulate_shop
from liucun.workspace import init_workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_analysis_is_identical_on_duckdb_and_spark(tmp_path: Path, spark_available: bool) -> None:
    sim = simulate_shop(tmp_path / "sim", preset="b2c", users=300, days=90, seed=3)
    users = pq.read_table(sim.users_path).column("user_id")
    rows = assign(Experiment("parity", holdout=0.1), users)
    results = {}
    for url in ("duckdb", "pyspark"):
        with init_workspace(tmp_path / url, warehouse_url=url) as ws:
            ingest_users(ws.warehouse, [sim.users_path])
            ingest_events(ws.warehouse, [sim.events_dir])
            log_exposures(ws.state, rows, ts=datetime(2026, 8, 1, tzinfo=UTC))
            again = log_exposures(ws.state, rows, ts=datetime(2026, 8, 1, tzinfo=UTC))
            assert again.logged == 0
            a = analyze_experiment(ws, "parity", AnalysisSettings(window_days=30))  # syncs
            results[url] = (a.results.to_pandas(), a.counts, a.srm.p_value)
    duck, spark = results["duckdb"], results["pyspark"]
    assert len(duck[0]) == 2 * 9  # holdout and treatment against control, 9 metrics
    pd.testing.assert_frame_equal(duck[0], spark[0], check_exact=False, rtol=1e-9)
    assert duck[1:] == spark[1:]
