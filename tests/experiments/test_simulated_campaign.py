"""End to end on the simulator's randomized past coupon campaign: exposures logged to a
real workspace, outcomes from the ingested events, and the estimated effect on orders
per unit against the simulated truth (tests/simulate/ documents the simulator)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from liucun.experiments import (
    RETENTION_METRICS,
    AnalysisSettings,
    ExperimentAnalysis,
    analyze_experiment,
    compare,
    log_exposures,
    peeking_path,
)
from liucun.experiments.stats import CupedStat
from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import campaign_exposures, simulate_shop
from liucun.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Campaign:
    workspace: Workspace
    key: str
    truth: pa.Table  # the campaign's units (no duplicate registrations)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    root: Path = tmp_path_factory.mktemp("campaign")
    sim = simulate_shop(
        root / "sim", preset="b2c", users=12_000, days=200, seed=11, chunk_size=12_000
    )
    ws = init_workspace(root / "ws")
    ingest_users(ws.warehouse, [sim.users_path])
    ingest_events(ws.warehouse, [sim.events_dir])
    truth = pq.read_table(sim.truth_path)
    log = campaign_exposures(truth)
    key = log["experiment"][0].as_py()
    # the campaign's units, as logged (a duplicate registration's rows are left out)
    truth = truth.filter(pc.is_in(truth["user_id"], log["unit_id"]))
    log_exposures(ws.state, log.drop(["ts"]), ts=log["ts"])
    ws.sync()  # peeking_path reads the warehouse's copy as it is
    yield Campaign(ws, key, truth)
    ws.close()


@pytest.fixture(scope="module")
def analysis(campaign: Campaign) -> ExperimentAnalysis:
    # the simulator's coupon is valid for 30 days: the truth's effect is over that window
    settings = AnalysisSettings(window_days=30, coupon_campaign=campaign.key)
    return analyze_experiment(campaign.workspace, campaign.key, settings)


def _row(analysis: ExperimentAnalysis, metric: str) -> dict[str, object]:
    rows = [r for r in analysis.results.to_pylist() if r["metric"] == metric]
    assert len(rows) == 1
    return rows[0]


def test_effect_on_orders_covers_the_true_mean_effect(
    campaign: Campaign, analysis: ExperimentAnalysis
) -> None:
    true_effect = float(pc.mean(campaign.truth["true_effect_orders"]).as_py())
    assert true_effect > 0  # the campaign works on average, modestly
    orders = _row(analysis, "orders")
    assert orders["test"] == "cuped_t" and orders["reason"] == "ok"
    assert orders["ci_low"] <= true_effect <= orders["ci_high"]  # type: ignore[operator]
    # CUPED with the pre-period orders narrows the interval of the plain Welch test
    c, t = analysis.arms["control"]["orders"], analysis.arms["treatment"]["orders"]
    assert isinstance(c, CupedStat) and isinstance(t, CupedStat)
    plain = compare(c, t, cuped=False)
    assert plain.ci_low <= true_effect <= plain.ci_high  # type: ignore[operator]
    assert orders["ci_high"] - orders["ci_low"] < plain.ci_high - plain.ci_low  # type: ignore[operator]


def test_each_arm_measures_the_truths_expected_orders(
    campaign: Campaign, analysis: ExperimentAnalysis
) -> None:
    """The outcome window is the campaign's: each arm's mean orders match the truth's
    expected orders in that arm to within three standard errors."""
    for variant, column, treated in (
        ("control", "campaign_orders_if_control", False),
        ("treatment", "campaign_orders_if_treated", True),
    ):
        arm = campaign.truth.filter(pc.equal(campaign.truth["treated"], treated))
        expected = float(pc.mean(arm[column]).as_py())
        stat = analysis.arms[variant]["orders"]
        assert isinstance(stat, CupedStat)
        mean = stat.total / stat.n  # type: ignore[operator]
        se = np.sqrt((stat.total_sq / stat.n - mean**2) / stat.n)  # type: ignore[operator]
        assert abs(mean - expected) < 3 * se, (variant, mean, expected, se)
        assert stat.n == arm.num_rows


def test_split_roi_and_every_metric_are_reported(analysis: ExperimentAnalysis) -> None:
    assert analysis.srm.reason == "ok" and not analysis.srm.mismatch
    assert analysis.expected_shares == pytest.approx({"control": 0.5, "treatment": 0.5})
    assert [r["metric"] for r in analysis.results.to_pylist()] == [
        m.name for m in RETENTION_METRICS
    ]
    assert all(r["reason"] == "ok" for r in analysis.results.to_pylist())
    # only treated customers get the campaign's coupon: the cost per treated unit is positive
    roi = analysis.roi["treatment"]
    cost = _row(analysis, "coupon_cost")
    assert cost["control_mean"] == 0.0 and cost["treatment_mean"] > 0  # type: ignore[operator]
    assert roi.incremental_cost == pytest.approx(cost["treatment_mean"])
    assert roi.roi is not None


def test_peeking_path_ends_where_the_analysis_does(campaign: Campaign) -> None:
    """Day d of the path is the analysis with a d-day window: the same estimate, the
    sequential interval of the sequential analysis and the fixed one of the plain one."""
    ws, key = campaign.workspace, campaign.key
    path = peeking_path(
        ws, key, RETENTION_METRICS[0], control="control", treatment="treatment", days=(7, 30)
    ).to_pylist()
    assert [r["day"] for r in path] == [7, 30]
    for row in path:
        plain = AnalysisSettings(window_days=row["day"], correction=None)
        seq = plain.with_options(sequential=True)
        plain = _row(analyze_experiment(campaign.workspace, key, plain), "orders")
        seq = _row(analyze_experiment(campaign.workspace, key, seq), "orders")
        assert row["estimate"] == pytest.approx(plain["estimate"], rel=1e-12)
        assert (row["fixed_ci_low"], row["fixed_ci_high"]) == pytest.approx(
            (plain["ci_low"], plain["ci_high"]), rel=1e-12
        )
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(
            (seq["ci_low"], seq["ci_high"]), rel=1e-12
        )
        # an always-valid interval is wider than the fixed-horizon one at the same look
        assert row["ci_high"] - row["ci_low"] > row["fixed_ci_high"] - row["fixed_ci_low"]
        assert row["n_control"] + row["n_treatment"] == campaign.truth.num_rows
