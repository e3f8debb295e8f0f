"""One call from the exposure log to a verdict: outcomes, statistics, SRM, corrections, ROI.

:func:`analyze_experiment` is what ``liucun experiment analyze`` runs: it reads each
unit's first exposure, computes the retention outcomes in the warehouse, reduces them to
per-variant sufficient statistics there, and hands only those to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from liucun.core import ConfigError, InvalidInput
from liucun.experiments._assignment import HOLDOUT
from liucun.experiments._exposures import first_exposures
from liucun.experiments._outcomes import (
    RETENTION_METRICS,
    Metric,
    stats_from_table,
    unit_outcomes,
    variant_statistics,
)
from liucun.experiments._roi import ROI_THRESHOLD, RoiResult, campaign_roi
from liucun.experiments.stats import (
    DEFAULT_TUNING,
    AnyStat,
    Correction,
    CupedStat,
    FrequentistResult,
    MeanStat,
    ProportionStat,
    RatioStat,
    SRMResult,
    adjust_p_values,
    cuped_ttest,
    proportion_test,
    ratio_test,
    sequential_test,
    srm_test,
    welch_ttest,
)
from liucun.warehouse import Warehouse, resolved_events

_ROI = "__roi__"

RESULT_SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("variant", pa.string()),
        ("test", pa.string()),
        ("n_control", pa.int64()),
        ("n_treatment", pa.int64()),
        ("control_mean", pa.float64()),
        ("treatment_mean", pa.float64()),
        ("estimate", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("p_value", pa.float64()),
        ("p_adjusted", pa.float64()),
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class ExperimentAnalysis:
    """The analysis of one experiment.

    Attributes
    ----------
    results
        One row per (metric, treatment variant) with :data:`RESULT_SCHEMA`.
    srm
        Sample-ratio check of the units per variant against the logged split.
    counts, expected_shares
        Units per variant, and the share each should have had.
    roi
        Campaign ROI of each treatment variant (revenue over coupon plus contact cost).
    arms
        The per-variant sufficient statistics the engine saw.
    """

    experiment: str
    control: str
    unit_type: str
    results: pa.Table
    srm: SRMResult
    counts: dict[str, int]
    expected_shares: dict[str, float]
    roi: dict[str, RoiResult]
    arms: dict[str, dict[str, AnyStat]]


def compare(
    control: AnyStat,
    treatment: AnyStat,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    cuped: bool = True,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
) -> FrequentistResult:
    """The matching test for a pair of statistics (Welch, proportion, ratio or CUPED),
    or the always-valid sequential version of it."""
    if isinstance(control, CupedStat) and isinstance(treatment, CupedStat) and not cuped:
        control, treatment = control.as_mean_stat(), treatment.as_mean_stat()
    if sequential:
        return sequential_test(control, treatment, relative=relative, alpha=alpha, tuning=tuning)
    if isinstance(control, ProportionStat) and isinstance(treatment, ProportionStat):
        return proportion_test(control, treatment, relative=relative, alpha=alpha)
    if isinstance(control, RatioStat) and isinstance(treatment, RatioStat):
        return ratio_test(control, treatment, relative=relative, alpha=alpha)
    if isinstance(control, CupedStat) and isinstance(treatment, CupedStat):
        return cuped_ttest(control, treatment, relative=relative, alpha=alpha)
    if isinstance(control, MeanStat) and isinstance(treatment, MeanStat):
        return welch_ttest(control, treatment, relative=relative, alpha=alpha)
    raise InvalidInput(
        f"cannot compare a {type(control).__name__} with a {type(treatment).__name__}"
    )


def _logged_split(units: ir.Table) -> tuple[dict[str, int], dict[str, float], str]:
    """Units per variant, the logged probabilities' shares, and the unit type."""
    per = units.group_by(["unit_type", "variant", "probability"]).aggregate(n=units.count())
    rows = per.to_pyarrow().to_pylist()
    if not rows:
        return {}, {}, "user"
    types = {r["unit_type"] for r in rows}
    if len(types) > 1:
        raise InvalidInput(f"the experiment logged several unit types {sorted(types)}")
    counts: dict[str, int] = {}
    shares: dict[str, float] = {}
    for r in rows:
        counts[r["variant"]] = counts.get(r["variant"], 0) + int(r["n"])
        shares[r["variant"]] = shares.get(r["variant"], 0.0) + float(r["probability"])
    return counts, shares, types.pop()


def _pick_control(control: str | None, variants: Sequence[str]) -> str:
    if control is not None:
        if control not in variants:
            raise ConfigError(
                f"control variant {control!r} has no exposures; the variants are "
                f"{', '.join(sorted(variants))}"
            )
        return control
    for name in ("control", HOLDOUT):
        if name in variants:
            return name
    return sorted(variants)[0]


def analyze_experiment(
    warehouse: Warehouse,
    experiment: str,
    *,
    control: str | None = None,
    metrics: Sequence[Metric] = RETENTION_METRICS,
    window_days: int = 30,
    horizon_days: int = 90,
    pre_days: int = 90,
    coupon_campaign: str | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    cuped: bool = True,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
    correction: Correction | None = "bh",
    weights: Mapping[str, float] | None = None,
    contact_cost: float = 0.0,
    margin: float = 1.0,
    roi_threshold: float = ROI_THRESHOLD,
) -> ExperimentAnalysis:
    """Analyse ``experiment`` from its exposure log in ``warehouse``.

    Every non-control variant is compared with ``control`` (default: ``"control"``,
    else ``"holdout"``) on every metric; p-values are corrected across metrics and
    variants with ``correction`` (``"bh"``, ``"holm"`` or ``None``). The SRM check uses
    ``weights`` if given, else the split implied by the logged probabilities. Users are
    resolved through the identity map, so merged aliases count once.

    Raises
    ------
    InvalidInput
        No exposures are logged under ``experiment``.
    """
    outcomes, counts, shares, unit_type = experiment_outcomes(
        warehouse,
        experiment,
        window_days=window_days,
        horizon_days=horizon_days,
        pre_days=pre_days,
        coupon_campaign=coupon_campaign,
    )
    return analyze_outcomes(
        outcomes,
        experiment=experiment,
        metrics=metrics,
        control=control,
        counts=counts,
        weights=weights if weights is not None else shares,
        unit_type=unit_type,
        relative=relative,
        alpha=alpha,
        cuped=cuped,
        sequential=sequential,
        tuning=tuning,
        correction=correction,
        contact_cost=contact_cost,
        margin=margin,
        roi_threshold=roi_threshold,
    )


def experiment_outcomes(
    warehouse: Warehouse,
    experiment: str,
    *,
    window_days: int = 30,
    horizon_days: int = 90,
    pre_days: int = 90,
    coupon_campaign: str | None = None,
) -> tuple[ir.Table, dict[str, int], dict[str, float], str]:
    """Per-unit outcomes of ``experiment`` (:func:`unit_outcomes` from each unit's first
    exposure), the units per variant, the logged split and the unit type."""
    units = first_exposures(warehouse.table("exposures"), experiment)
    counts, shares, unit_type = _logged_split(units)
    if not counts:
        known = warehouse.table("exposures").experiment.name("e").as_table().distinct()
        names = sorted(r["e"] for r in known.limit(20).to_pyarrow().to_pylist())
        hint = f" (logged experiments: {', '.join(names)})" if names else ""
        raise InvalidInput(
            f"no exposures are logged for experiment {experiment!r}{hint}; log them with "
            "liucun.experiments.log_exposures"
        )
    events = warehouse.table("events")
    if unit_type == "user":
        events = resolved_events(events, warehouse.table("identities"))
    outcomes = unit_outcomes(
        events,
        units,
        window_days=window_days,
        horizon_days=horizon_days,
        pre_days=pre_days,
        unit_type=unit_type,  # type: ignore[arg-type]
        coupon_campaign=coupon_campaign,
    )
    return outcomes, counts, shares, unit_type


def analyze_outcomes(
    outcomes: ir.Table,
    *,
    experiment: str,
    metrics: Sequence[Metric],
    control: str | None = None,
    counts: Mapping[str, int] | None = None,
    weights: Mapping[str, float] | None = None,
    unit_type: str = "user",
    relative: bool = False,
    alpha: float = 0.05,
    cuped: bool = True,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
    correction: Correction | None = "bh",
    contact_cost: float = 0.0,
    margin: float = 1.0,
    roi_threshold: float = ROI_THRESHOLD,
) -> ExperimentAnalysis:
    """The statistics half of :func:`analyze_experiment`, on per-unit outcomes.

    ``outcomes`` has one row per unit with a ``variant`` column and the metrics'
    columns (from :func:`unit_outcomes`, or read from a file). ``counts`` are the units
    per variant (default: counted in ``outcomes``); ``weights`` the configured split for
    the SRM check (default: equal shares). With ``revenue`` and ``coupon_cost`` columns,
    each treatment also gets its campaign ROI.
    """
    if counts is None:
        per = outcomes.group_by("variant").aggregate(n=outcomes.count()).to_pyarrow()
        counts = {r["variant"]: int(r["n"]) for r in per.to_pylist() if r["variant"] is not None}
    if not counts:
        raise InvalidInput(f"experiment {experiment!r} has no units with a variant")
    ctrl = _pick_control(control, list(counts))
    columns = set(outcomes.columns)
    extra = [Metric(_ROI, "revenue", "ratio", denominator="coupon_cost")]
    wanted = [*metrics, *(extra if {"revenue", "coupon_cost"} <= columns else [])]
    arms = stats_from_table(variant_statistics(outcomes, wanted).to_pyarrow(), wanted)
    variants = sorted(v for v in arms if v != ctrl)
    rows: list[dict[str, Any]] = []
    for m in metrics:
        for v in variants:
            r = compare(
                arms[ctrl][m.name],
                arms[v][m.name],
                relative=relative,
                alpha=alpha,
                cuped=cuped,
                sequential=sequential,
                tuning=tuning,
            )
            rows.append(
                {
                    "metric": m.name,
                    "variant": v,
                    "test": r.test,
                    "n_control": counts.get(ctrl, 0),
                    "n_treatment": counts.get(v, 0),
                    **{
                        k: getattr(r, k)
                        for k in (
                            "control_mean",
                            "treatment_mean",
                            "estimate",
                            "ci_low",
                            "ci_high",
                            "p_value",
                        )
                    },
                    "reason": r.reason,
                }
            )
    p = np.array([np.nan if row["p_value"] is None else row["p_value"] for row in rows])
    adjusted = (
        p if correction is None or not rows else adjust_p_values(p, method=correction).p_adjusted
    )
    for row, q in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = None if np.isnan(q) else float(q)
    order = sorted(counts)
    expected = dict(weights) if weights is not None else dict.fromkeys(order, 1.0)
    missing = [v for v in order if v not in expected]
    if missing:
        raise ConfigError(f"weights give no share for variant(s) {', '.join(missing)}")
    srm = srm_test([counts[v] for v in order], [expected[v] for v in order])
    roi = {}
    if _ROI in arms[ctrl]:
        for v in variants:
            roi[v] = campaign_roi(
                arms[ctrl][_ROI],  # type: ignore[arg-type]
                arms[v][_ROI],  # type: ignore[arg-type]
                contact_cost=contact_cost,
                margin=margin,
                alpha=alpha,
                threshold=roi_threshold,
            )
    total = sum(expected[v] for v in order)
    return ExperimentAnalysis(
        experiment=experiment,
        control=ctrl,
        unit_type=unit_type,
        results=pa.Table.from_pylist(rows, schema=RESULT_SCHEMA),
        srm=srm,
        counts={v: counts[v] for v in order},
        expected_shares={v: expected[v] / total for v in order},
        roi=roi,
        arms={v: {k: s for k, s in a.items() if k != _ROI} for v, a in arms.items()},
    )
