"""The experiment analysis as a library call: one AnalysisSettings value, per-unit outcomes
from memory or a file, the significance decision, SRM, ROI, and the workspace entry point
that syncs the exposure log first. Every number is worked out by hand or by SciPy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from liucun.core import ConfigError, InvalidInput
from liucun.experiments import (
    ASSIGNMENT_SCHEMA,
    RESULT_SCHEMA,
    AnalysisSettings,
    Metric,
    analyze_experiment,
    analyze_outcome_file,
    analyze_outcome_frame,
    analyze_outcomes,
    campaign_roi,
    experiment_outcomes,
    log_exposures,
    read_outcomes,
)
from liucun.experiments.stats import RatioStat
from liucun.ingest import ingest_events
from liucun.workspace import init_workspace


def _arms(control: list[object], treatment: list[object]) -> list[object]:
    """A column: six control units, then six treated units."""
    return [*control, *treatment]


#: Six units per arm, small enough to check by hand.
OUTCOMES = pd.DataFrame(
    {
        "unit_id": _arms([f"c{i}" for i in range(6)], [f"t{i}" for i in range(6)]),
        "variant": _arms(["control"] * 6, ["treatment"] * 6),
        "orders": _arms([0.0, 1, 1, 2, 3, 1], [1.0, 2, 2, 3, 4, 2]),
        "bought": _arms([False, True, True, True, True, False], [True] * 5 + [False]),
        "revenue": _arms([0.0, 10, 12, 25, 30, 8], [11.0, 21, 19, 33, 45, 20]),
        "coupon_cost": _arms([0.0] * 6, [2.0, 2, 2, 3, 3, 2]),
    }
)
ARMS = {v: OUTCOMES[OUTCOMES.variant == v] for v in ("control", "treatment")}


def _rows(analysis: object) -> dict[str, dict[str, object]]:
    return {r["metric"]: r for r in analysis.results.to_pylist()}  # type: ignore[attr-defined]


# -- settings -----------------------------------------------------------------------------


def test_settings_are_one_checked_frozen_value() -> None:
    s = AnalysisSettings(sequential=True, weights={"control": 1, "treatment": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.weights["control"] = 2  # type: ignore[index]
    week = s.with_options(window_days=7)
    assert (week.window_days, week.sequential, s.window_days) == (7, True, 30)
    assert AnalysisSettings() == AnalysisSettings()
    for bad, option in (
        ({"window_days": 0}, "window_days"),
        ({"horizon_days": -1}, "horizon_days"),
        ({"pre_days": -1}, "pre_days"),
        ({"alpha": 1.0}, "alpha"),
        ({"correction": "bonferroni"}, "correction"),
        ({"contact_cost": -0.5}, "contact_cost"),
        ({"margin": 0.0}, "margin"),
        ({"weights": {"control": 0.0}}, "weights"),
    ):
        with pytest.raises(ConfigError) as err:
            AnalysisSettings(**bad)  # type: ignore[arg-type]
        assert err.value.hint is not None and err.value.hint.option == option
        assert "--" not in str(err.value)  # a library message names no CLI flag


# -- the statistics half ------------------------------------------------------------------


def test_analysis_of_outcomes_in_memory_matches_scipy() -> None:
    settings = AnalysisSettings(alpha=0.05, correction="bh", contact_cost=0.5, margin=0.3)
    a = analyze_outcome_frame(OUTCOMES, settings, experiment="hand")
    assert (a.experiment, a.control) == ("hand", "control")
    assert a.counts == {"control": 6, "treatment": 6}
    assert a.results.schema == RESULT_SCHEMA and a.settings is settings
    rows = _rows(a)
    assert list(rows) == ["orders", "bought", "revenue", "coupon_cost"]
    c, t = ARMS["control"], ARMS["treatment"]
    for metric in ("orders", "revenue", "coupon_cost"):
        welch = stats.ttest_ind(t[metric], c[metric], equal_var=False)
        assert rows[metric]["test"] == "welch_t"
        assert rows[metric]["estimate"] == pytest.approx(t[metric].mean() - c[metric].mean())
        assert rows[metric]["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert rows["orders"]["estimate"] == pytest.approx(1.0)  # 14/6 − 8/6
    assert rows["bought"]["test"] == "two_proportion_z"
    assert rows["bought"]["estimate"] == pytest.approx(5 / 6 - 4 / 6)
    # Benjamini–Hochberg across the four rows, and the decision on the corrected p-value
    p = [rows[m]["p_value"] for m in rows]
    q = stats.false_discovery_control(p, method="bh")
    assert [rows[m]["p_adjusted"] for m in rows] == pytest.approx(q, rel=1e-12)
    assert [rows[m]["significant"] for m in rows] == [bool(x < 0.05) for x in q]
    assert [rows[m]["significant"] for m in rows] == [False, False, False, True]
    # equal shares for a file's split: 6 v 6 is no mismatch
    assert a.srm.p_value == pytest.approx(1.0) and not a.srm.mismatch
    # ROI = margin·Δrevenue / (Δcoupon cost + contact cost) = 0.3·(64/6) / (14/6 + 0.5)
    roi = a.roi["treatment"]
    assert roi.roi == pytest.approx(3.2 / (17 / 6), rel=1e-12)
    direct = campaign_roi(
        RatioStat.from_values(c.revenue.to_numpy(), c.coupon_cost.to_numpy()),
        RatioStat.from_values(t.revenue.to_numpy(), t.coupon_cost.to_numpy()),
        contact_cost=0.5,
        margin=0.3,
    )
    assert (roi.ci_low, roi.ci_high, roi.flagged) == (direct.ci_low, direct.ci_high, True)


def test_alpha_decides_significance_and_no_correction_keeps_p() -> None:
    loose = AnalysisSettings(alpha=0.5, correction=None)
    rows = _rows(analyze_outcome_frame(OUTCOMES, loose, experiment="hand"))
    for r in rows.values():
        assert r["p_adjusted"] == r["p_value"]
        assert r["significant"] is bool(r["p_value"] < 0.5)  # type: ignore[operator]
    assert rows["bought"]["significant"] is False  # p ≈ 0.52 even at α = 0.5


def test_weights_make_the_sample_ratio_check() -> None:
    """6 v 6 against a 1:3 split: χ² = 3²/3 + 3²/9 = 4 on one degree of freedom."""
    settings = AnalysisSettings(weights={"control": 1, "treatment": 3})
    a = analyze_outcome_frame(OUTCOMES, settings, experiment="hand")
    assert a.expected_shares == {"control": 0.25, "treatment": 0.75}
    assert a.srm.statistic == pytest.approx(4.0)
    assert a.srm.p_value == pytest.approx(stats.chi2.sf(4.0, 1), rel=1e-12)
    # logged shares are used unless the settings give weights
    logged = analyze_outcomes(
        ibis.memtable(OUTCOMES),
        experiment="hand",
        metrics=[Metric("orders", "orders")],
        shares={"control": 0.5, "treatment": 0.5},
    )
    assert logged.srm.p_value == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="no share for variant") as err:
        analyze_outcome_frame(OUTCOMES, AnalysisSettings(weights={"control": 1}), experiment="x")
    assert err.value.hint is not None and err.value.hint.option == "weights"


def test_control_and_cuped_are_settings() -> None:
    frame = OUTCOMES.assign(pre_orders=_arms([0.0, 1, 0, 2, 2, 1], [1.0, 1, 2, 2, 3, 1]))
    a = analyze_outcome_frame(frame, AnalysisSettings(control="treatment"), experiment="x")
    orders = _rows(a)["orders"]
    assert (a.control, orders["variant"], orders["test"]) == ("treatment", "control", "cuped_t")
    plain = _rows(analyze_outcome_frame(frame, AnalysisSettings(cuped=False), experiment="x"))
    assert plain["orders"]["test"] == "welch_t"
    assert plain["orders"]["estimate"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="control variant 'zzz' has no exposures") as err:
        analyze_outcome_frame(frame, AnalysisSettings(control="zzz"), experiment="x")
    assert err.value.hint is not None
    assert (err.value.hint.option, err.value.hint.example) == ("control", "control")


# -- files --------------------------------------------------------------------------------


def test_a_file_of_outcomes_is_read_and_analysed_alike(tmp_path: Path) -> None:
    csv, parquet = tmp_path / "coupon.csv", tmp_path / "coupon.parquet"
    OUTCOMES.to_csv(csv, index=False)
    OUTCOMES.to_parquet(parquet)
    pd.testing.assert_frame_equal(read_outcomes(parquet), OUTCOMES)
    settings = AnalysisSettings(correction="holm")
    from_csv, from_parquet = analyze_outcome_file(csv, settings), analyze_outcome_file(parquet)
    assert from_csv.experiment == "coupon"
    assert from_csv.results.equals(
        analyze_outcome_frame(OUTCOMES, settings, experiment="coupon").results
    )
    assert from_parquet.results.column("estimate").equals(from_csv.results.column("estimate"))


def test_unusable_files_say_why(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        read_outcomes(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_id,orders\nu1,1\n")
    with pytest.raises(InvalidInput, match=r"no `variant` column.*it has: unit_id, orders"):
        analyze_outcome_file(bad)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_outcomes(broken)
    text = tmp_path / "text.csv"
    text.write_text("variant,note\ncontrol,a\ntreatment,b\n")
    with pytest.raises(InvalidInput, match="no numeric column"):
        analyze_outcome_file(text)


# -- the workspace entry point ------------------------------------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EVENTS = """user_id,event_type,ts,revenue,currency
u1,order,2026-03-03T10:00:00Z,10,USD
u1,order,2026-03-10T10:00:00Z,20,USD
u3,order,2026-03-05T10:00:00Z,30,USD
u4,order,2026-03-02T10:00:00Z,5,USD
u4,order,2026-03-04T10:00:00Z,5,USD
u4,order,2026-03-06T10:00:00Z,5,USD
u4,order,2026-05-20T10:00:00Z,5,USD
"""


def _assignments() -> pa.Table:
    rows = [("u1", "control"), ("u2", "control"), ("u3", "treatment"), ("u4", "treatment")]
    return pa.Table.from_pylist(
        [
            {
                "experiment": "exp",
                "layer": None,
                "unit_type": "user",
                "unit_id": u,
                "variant": v,
                "probability": 0.5,
                "holdout": False,
            }
            for u, v in rows
        ],
        schema=ASSIGNMENT_SCHEMA,
    )


def test_analyze_experiment_syncs_the_log_first(tmp_path: Path, state_url: str) -> None:
    """Orders in the 30 days after exposure: control u1 2, u2 0; treatment u3 1, u4 3
    (its fourth order is after the window)."""
    source = tmp_path / "events.csv"
    source.write_text(EVENTS)
    with init_workspace(tmp_path / "ws", state_url=state_url) as ws:
        ingest_events(ws.warehouse, [source])
        log_exposures(ws.state, _assignments(), ts=T0)
        assert ws.warehouse.count("exposures") == 0  # in state only, until a sync
        settings = AnalysisSettings(cuped=False, correction=None)
        a = analyze_experiment(ws, "exp", settings)
        assert ws.warehouse.count("exposures") == 4
        assert a.counts == {"control": 2, "treatment": 2}
        assert a.expected_shares == {"control": 0.5, "treatment": 0.5}
        orders = _rows(a)["orders"]
        assert (orders["control_mean"], orders["treatment_mean"]) == (1.0, 2.0)
        welch = stats.ttest_ind([1.0, 3.0], [2.0, 0.0], equal_var=False)
        assert orders["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
        assert _rows(a)["churned"]["control_mean"] == 0.5  # u2 never orders
        # the warehouse half and the statistics half give the same analysis
        logged = experiment_outcomes(ws, "exp", settings)
        assert logged.unit_type == "user" and logged.shares == {"control": 0.5, "treatment": 0.5}
        again = analyze_outcomes(
            logged.outcomes,
            settings,
            experiment="exp",
            metrics=_metrics(),
            counts=logged.counts,
            shares=logged.shares,
        )
        assert again.results.equals(a.results)
        # a shorter window is a setting: within 4 days u4 has 2 orders, u1 1, u3 none
        week = _rows(analyze_experiment(ws, "exp", settings.with_options(window_days=4)))
        assert (week["orders"]["control_mean"], week["orders"]["treatment_mean"]) == (0.5, 1.0)
        with pytest.raises(InvalidInput, match=r"logged experiments: exp"):
            analyze_experiment(ws, "nope")


def _metrics() -> list[Metric]:
    from liucun.experiments import RETENTION_METRICS

    return list(RETENTION_METRICS)


def test_results_schema_has_the_decision() -> None:
    assert RESULT_SCHEMA.field("significant").type == pa.bool_()
    assert np.array(RESULT_SCHEMA.names).tolist().index("significant") == (
        RESULT_SCHEMA.names.index("p_adjusted") + 1
    )
