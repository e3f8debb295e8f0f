"""One call from the exposure log to a verdict: outcomes, statistics, SRM, corrections, ROI.

:func:`analyze_experiment` is what ``liucun experiment analyze`` runs, in the order of
docs/experiments.md:

1. bring the exposures logged in state over to the warehouse (``Workspace.sync``);
2. read each unit's first exposure and the split the log implies;
3. compute every unit's retention outcomes in the warehouse (:func:`unit_outcomes`);
4. reduce them to per-variant sufficient statistics there; only those reach the engine;
5. compare every treatment with the control on every metric, and correct the p-values;
6. check the sample ratio, and value each treatment's campaign ROI.

Steps 4–6 are :func:`analyze_outcomes`, which a file of per-unit outcomes enters
directly. Every option is a field of one :class:`AnalysisSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from liucun.core import ConfigError, Hint, InvalidInput
from liucun.experiments._assignment import HOLDOUT
from liucun.experiments._exposures import first_exposures
from liucun.experiments._outcomes import (
    RETENTION_METRICS,
    Metric,
    stats_from_table,
    unit_outcomes,
    variant_statistics,
)
from liucun.experiments._roi import RoiResult, campaign_roi
from liucun.experiments._settings import DEFAULT_SETTINGS, AnalysisSettings
from liucun.experiments.stats import (
    DEFAULT_TUNING,
    AnyStat,
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
from liucun.metrics import in_reporting_currency
from liucun.workspace import Workspace

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
        ("significant", pa.bool_()),
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class ExperimentAnalysis:
    """The analysis of one experiment.

    Attributes
    ----------
    results
        One row per (metric, treatment variant) with :data:`RESULT_SCHEMA`;
        ``significant`` is the decision: the corrected p-value (the plain one without a
        correction) is below the settings' ``alpha``.
    srm
        Sample-ratio check of the units per variant against the logged split.
    counts, expected_shares
        Units per variant, and the share each should have had.
    roi
        Campaign ROI of each treatment variant (revenue over coupon plus contact cost).
    arms
        The per-variant sufficient statistics the engine saw.
    settings
        The options the analysis ran with.
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
    settings: AnalysisSettings = DEFAULT_SETTINGS


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
                f"{', '.join(sorted(variants))}",
                hint=Hint("control", example=sorted(variants)[0]),
            )
        return control
    for name in ("control", HOLDOUT):
        if name in variants:
            return name
    return sorted(variants)[0]


class LoggedOutcomes(NamedTuple):
    """Per-unit outcomes of a logged experiment, with what the log says about its split."""

    outcomes: ir.Table  # one row per unit: its variant and outcomes (unit_outcomes)
    counts: dict[str, int]  # units per variant
    shares: dict[str, float]  # the logged assignment probabilities, summed per variant
    unit_type: str  # "user" or "account"


def analyze_experiment(
    workspace: Workspace,
    experiment: str,
    settings: AnalysisSettings = DEFAULT_SETTINGS,
    *,
    metrics: Sequence[Metric] = RETENTION_METRICS,
) -> ExperimentAnalysis:
    """Analyse ``experiment`` from the exposure log of ``workspace``.

    Exposures logged into state since the last sync are copied to the warehouse first.
    Every non-control variant is compared with the control (``settings.control``,
    default ``"control"``, else ``"holdout"``) on every metric; p-values are corrected
    across metrics and variants with ``settings.correction``. The SRM check uses
    ``settings.weights`` if given, else the split implied by the logged probabilities.
    Users are resolved through the identity map, so merged aliases count once.

    Raises
    ------
    InvalidInput
        No exposures are logged under ``experiment``.
    ConfigError
        ``settings.control`` names a variant without exposures, or ``settings.weights``
        leaves a variant out.
    """
    workspace.sync()  # exposures are written to state; analyses read the warehouse copy
    logged = experiment_outcomes(workspace, experiment, settings)
    return analyze_outcomes(
        logged.outcomes,
        settings,
        experiment=experiment,
        metrics=metrics,
        counts=logged.counts,
        shares=logged.shares,
        unit_type=logged.unit_type,
    )


def experiment_outcomes(
    workspace: Workspace, experiment: str, settings: AnalysisSettings = DEFAULT_SETTINGS
) -> LoggedOutcomes:
    """Per-unit outcomes of ``experiment`` (:func:`unit_outcomes` from each unit's first
    exposure, over the settings' window, horizon and pre-period), the units per variant,
    the logged split and the unit type. Reads the warehouse's copy of the exposure log
    as it is (see :func:`analyze_experiment` for the sync); users are counted under
    merged identities (``workspace.events()``), accounts as logged."""
    exposures = workspace.table("exposures")
    units = first_exposures(exposures, experiment)
    counts, shares, unit_type = _logged_split(units)
    if not counts:
        known = exposures.experiment.name("e").as_table().distinct()
        names = sorted(r["e"] for r in known.limit(20).to_pyarrow().to_pylist())
        listed = f" (logged experiments: {', '.join(names)})" if names else ""
        raise InvalidInput(
            f"no exposures are logged for experiment {experiment!r}{listed}; log them with "
            "liucun.experiments.log_exposures"
        )
    events = workspace.events() if unit_type == "user" else workspace.table("events")
    events = in_reporting_currency(events, workspace.table("fx_rates"), workspace.settings)
    outcomes = unit_outcomes(
        events,
        units,
        window_days=settings.window_days,
        horizon_days=settings.horizon_days,
        pre_days=settings.pre_days,
        unit_type=unit_type,  # type: ignore[arg-type]
        coupon_campaign=settings.coupon_campaign,
    )
    return LoggedOutcomes(outcomes, counts, shares, unit_type)


def analyze_outcomes(
    outcomes: ir.Table,
    settings: AnalysisSettings = DEFAULT_SETTINGS,
    *,
    experiment: str,
    metrics: Sequence[Metric],
    counts: Mapping[str, int] | None = None,
    shares: Mapping[str, float] | None = None,
    unit_type: str = "user",
) -> ExperimentAnalysis:
    """The statistics half of :func:`analyze_experiment`, on per-unit outcomes.

    ``outcomes`` has one row per unit with a ``variant`` column and the metrics'
    columns (from :func:`unit_outcomes`, or read from a file). ``counts`` are the units
    per variant (default: counted in ``outcomes``); ``shares`` the split the assignment
    logged, used for the SRM check unless ``settings.weights`` is given (default: equal
    shares). With ``revenue`` and ``coupon_cost`` columns, each treatment also gets its
    campaign ROI.
    """
    counts = dict(counts) if counts is not None else unit_counts(outcomes)
    if not counts:
        raise InvalidInput(f"experiment {experiment!r} has no units with a variant")
    control = _pick_control(settings.control, list(counts))
    arms = arm_statistics(outcomes, metrics)
    variants = sorted(v for v in arms if v != control)
    order = sorted(counts)
    expected = _expected_split(order, settings.weights if settings.weights is not None else shares)
    total = sum(expected.values())
    return ExperimentAnalysis(
        experiment=experiment,
        control=control,
        unit_type=unit_type,
        results=effects_table(arms, control, variants, metrics, counts, settings),
        srm=srm_test([counts[v] for v in order], [expected[v] for v in order]),
        counts={v: counts[v] for v in order},
        expected_shares={v: expected[v] / total for v in order},
        roi=_campaign_rois(arms, control, variants, settings),
        arms={v: {k: s for k, s in a.items() if k != _ROI} for v, a in arms.items()},
        settings=settings,
    )


def unit_counts(outcomes: ir.Table) -> dict[str, int]:
    """Units per variant in per-unit ``outcomes`` (units without a variant left out)."""
    per = outcomes.group_by("variant").aggregate(n=outcomes.count()).to_pyarrow()
    return {r["variant"]: int(r["n"]) for r in per.to_pylist() if r["variant"] is not None}


def arm_statistics(outcomes: ir.Table, metrics: Sequence[Metric]) -> dict[str, dict[str, AnyStat]]:
    """``{variant: {metric: statistic}}``, aggregated in the backend; with ``revenue``
    and ``coupon_cost`` columns also the campaign's revenue/cost ratio for the ROI."""
    extra = [Metric(_ROI, "revenue", "ratio", denominator="coupon_cost")]
    has_cost = {"revenue", "coupon_cost"} <= set(outcomes.columns)
    wanted = [*metrics, *(extra if has_cost else [])]
    return stats_from_table(variant_statistics(outcomes, wanted).to_pyarrow(), wanted)


_RESULT_FIELDS = ("control_mean", "treatment_mean", "estimate", "ci_low", "ci_high", "p_value")


def effects_table(
    arms: Mapping[str, Mapping[str, AnyStat]],
    control: str,
    variants: Sequence[str],
    metrics: Sequence[Metric],
    counts: Mapping[str, int],
    settings: AnalysisSettings = DEFAULT_SETTINGS,
) -> pa.Table:
    """Every treatment against ``control`` on every metric (:func:`compare`), with the
    p-values corrected across all rows and the significance decision: one row per
    (metric, variant) with :data:`RESULT_SCHEMA`."""
    rows: list[dict[str, Any]] = []
    for m in metrics:
        for v in variants:
            r = compare(
                arms[control][m.name],
                arms[v][m.name],
                relative=settings.relative,
                alpha=settings.alpha,
                cuped=settings.cuped,
                sequential=settings.sequential,
                tuning=settings.tuning,
            )
            rows.append(
                {
                    "metric": m.name,
                    "variant": v,
                    "test": r.test,
                    "n_control": counts.get(control, 0),
                    "n_treatment": counts.get(v, 0),
                    **{k: getattr(r, k) for k in _RESULT_FIELDS},
                    "reason": r.reason,
                }
            )
    p = np.array([np.nan if row["p_value"] is None else row["p_value"] for row in rows])
    correction = settings.correction
    adjusted = (
        p if correction is None or not rows else adjust_p_values(p, method=correction).p_adjusted
    )
    for row, q in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = None if np.isnan(q) else float(q)
        decisive = row["p_adjusted"] if row["p_adjusted"] is not None else row["p_value"]
        row["significant"] = decisive is not None and bool(decisive < settings.alpha)
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)


def _expected_split(
    variants: Sequence[str], weights: Mapping[str, float] | None
) -> dict[str, float]:
    """The share each variant should have had (``weights``, default equal)."""
    expected = dict(weights) if weights is not None else dict.fromkeys(variants, 1.0)
    missing = [v for v in variants if v not in expected]
    if missing:
        raise ConfigError(
            f"weights give no share for variant(s) {', '.join(missing)}",
            hint=Hint("weights", example=",".join(f"{v}=1" for v in variants)),
        )
    return {v: expected[v] for v in variants}


def _campaign_rois(
    arms: Mapping[str, Mapping[str, AnyStat]],
    control: str,
    variants: Sequence[str],
    settings: AnalysisSettings,
) -> dict[str, RoiResult]:
    """Each treatment's campaign ROI against ``control`` (none without cost columns)."""
    if _ROI not in arms[control]:
        return {}
    return {
        v: campaign_roi(
            arms[control][_ROI],  # type: ignore[arg-type]
            arms[v][_ROI],  # type: ignore[arg-type]
            contact_cost=settings.contact_cost,
            margin=settings.margin,
            alpha=settings.alpha,
            threshold=settings.roi_threshold,
        )
        for v in variants
    }
