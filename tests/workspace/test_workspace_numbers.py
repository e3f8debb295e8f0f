"""Moving the exposure log into state changed no number.

The golden values were computed by liucun at d4f66c6 (before state existed: exposures
were written straight into the warehouse) on the same seeded simulation; the analysis
and the uplift fit now read exposures that went state → sync → warehouse.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from liucun.experiments import AnalysisSettings, analyze_experiment, log_exposures
from liucun.ingest import IngestOptions, ingest_events, ingest_users
from liucun.models.uplift import train_uplift
from liucun.simulate import campaign_exposures, simulate_shop
from liucun.workspace import init_workspace

pytestmark = pytest.mark.slow

#: metric → (estimate, ci_low, ci_high, p_value) for treatment vs control at d4f66c6.
GOLDEN = {
    "orders": (
        -0.013881972628167795,
        -0.04636399726300298,
        0.018600052006667388,
        0.4020573779907795,
    ),
    "revenue": (-3.2062889063863516, -11.469241274862737, 5.056663462090034, 0.44675772461747904),
    "net_revenue": (
        -4.974223810040662,
        -12.432553549236635,
        2.4841059291553105,
        0.1910441075868343,
    ),
    "coupon_cost": (
        1.7275300796826523,
        0.5350773228034762,
        2.9199828365618283,
        0.004543317999411301,
    ),
    "retained_d7": (
        -0.0038009937871028854,
        -0.017454353795941093,
        0.009852366221735322,
        0.5861896978254983,
    ),
    "retained_d30": (
        -0.02015045024499132,
        -0.044144241750970335,
        0.003843341260987697,
        0.10112197927723837,
    ),
    "churned": (
        0.014364301066351559,
        -0.01881813768372243,
        0.04754673981642555,
        0.39671694456027917,
    ),
    "repurchase_rate": (
        0.05277161862527713,
        -0.05808042130288216,
        0.1636236585534364,
        0.35061400565728945,
    ),
    "days_to_next_order": (
        3.3105564449578395,
        -1.6783465558973027,
        8.299459445812982,
        0.19328140342862418,
    ),
}
COUNTS = {"control": 1112, "treatment": 1041}
SRM_P = 0.12597757526893508
UPLIFT = {
    "n": 1096,
    "ate": -3.4116973692973716,
    "ate_se": 6.51008524528352,
    "auuc": -2.768631041277269,
}


def test_the_campaign_analysis_and_uplift_fit_are_unchanged(tmp_path: Path) -> None:
    sim = simulate_shop(tmp_path / "sim", preset="b2c", users=3000, days=240, seed=5)
    with init_workspace(tmp_path / "ws") as ws:
        options = IngestOptions.from_settings(ws.settings, hash_key=ws.hash_key)
        ingest_users(ws.warehouse, [sim.users_path], options)
        ingest_events(ws.warehouse, [sim.events_dir], options)
        log = campaign_exposures(pq.read_table(sim.truth_path))
        key = log["experiment"][0].as_py()
        log_exposures(ws.state, log.drop(["ts"]), ts=log["ts"], clock=ws.clock)
        analysis = analyze_experiment(ws, key, AnalysisSettings(window_days=30))  # syncs first
        assert analysis.counts == COUNTS
        assert analysis.srm.p_value == pytest.approx(SRM_P, rel=1e-12)
        rows = {r["metric"]: r for r in analysis.results.to_pylist()}
        for metric, expected in GOLDEN.items():
            got = rows[metric]
            assert (got["estimate"], got["ci_low"], got["ci_high"], got["p_value"]) == (
                pytest.approx(expected, rel=1e-9)
            )
        _, ev = train_uplift(ws, key, random_state=0, num_threads=1)
    assert ev.n == UPLIFT["n"]
    assert (ev.ate, ev.ate_se, ev.auuc) == pytest.approx(
        (UPLIFT["ate"], UPLIFT["ate_se"], UPLIFT["auuc"]), rel=1e-9
    )
