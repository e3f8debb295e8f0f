"""The report's "Experiments and uplift" section: what each logged campaign earned, with
its statistics, and how its uplift model targets."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from liucun.experiments import (
    RETENTION_METRICS,
    ExperimentAnalysis,
    analyze_outcomes,
    compare,
    experiment_outcomes,
    peeking_path,
)
from liucun.reports._analytics import ReportContext, _formatted
from liucun.reports._render import Section, interval_figure
from liucun.warehouse import Warehouse
from liucun.workspace import Workspace

#: At most this many experiments (the most recently exposed) get a part of the section.
MAX_EXPERIMENTS = 3
#: The economics the report values targeting with (the CLI takes others).
REPORT_MARGIN, REPORT_CONTACT_COST = 0.3, 0.5
#: The days after launch the monitoring chart looks on.
PEEK_DAYS = (1, 2, 3, 4, 5, 6, 7, 9, 11, 14, 17, 21, 25, 30)


def experiments_section(ctx: ReportContext) -> Section:
    """Effects with intervals per metric, SRM, the sequential monitoring chart and ROI of
    each recent experiment; the Qini curve and targeting comparison of the uplift model."""
    sec = Section("experiments", "Experiments and uplift")
    if ctx.workspace is None:
        sec.empty = "No workspace to read the exposure log from."
        return sec
    ctx.workspace.sync()  # exposures are logged into state; the warehouse gets a copy
    recent = _recent_experiments(ctx.workspace.warehouse)
    if not recent:
        sec.empty = (
            "No experiment or campaign is logged yet: log exposures with "
            "liucun.experiments.log_exposures (a simulated shop's campaign is logged by "
            "`liucun ingest simulated`)."
        )
        return sec
    leads = [_experiment(sec, ctx, key) for key in recent]
    _uplift(sec, ctx)
    sec.lead = " ".join(leads)
    return sec


def _recent_experiments(wh: Warehouse) -> list[str]:
    """The :data:`MAX_EXPERIMENTS` experiments exposed most recently, latest first."""
    exposures = wh.table("exposures")
    recent = (
        exposures.group_by("experiment")
        .aggregate(last=exposures.ts.max())
        .order_by(ibis.desc("last"))
        .limit(MAX_EXPERIMENTS)
        .to_pandas()
    )
    return [str(key) for key in recent.experiment]


def _experiment(sec: Section, ctx: ReportContext, key: str) -> str:
    """One experiment's part of the section: its analysis on the units exposed before
    the report's day, as a lift chart, a monitoring chart, an effects table and a
    sentence (returned) with its split and ROI."""
    ws = ctx.workspace
    logged = experiment_outcomes(ws, key)  # type: ignore[arg-type]
    outcomes = logged.outcomes.filter(logged.outcomes.exposed_at < ctx.as_of)
    analysis = analyze_outcomes(
        outcomes,
        experiment=key,
        metrics=RETENTION_METRICS,
        counts=logged.counts,
        shares=logged.shares,
        unit_type=logged.unit_type,
    )
    variants = [v for v in analysis.counts if v != analysis.control]  # sorted by name
    sec.add_figure(_lift_figure(key, analysis, variants))
    if variants:
        sec.add_figure(_peeking_figure(ws, key, analysis.control, variants[0]))  # type: ignore[arg-type]
    sec.add_table(_effects_table(analysis))
    return _summary(key, analysis)


def _lift_figure(key: str, analysis: ExperimentAnalysis, variants: list[str]) -> go.Figure:
    """Relative lift of each treatment on each metric with its 95 % interval, from the
    analysis's per-variant statistics (no second pass over the data)."""
    arms = analysis.arms
    lifts = [
        (
            f"{m.name.replace('_', ' ')} ({v})",
            compare(arms[analysis.control][m.name], arms[v][m.name], relative=True),
        )
        for m in RETENTION_METRICS
        for v in variants
    ]
    lifts = [(label, r) for label, r in lifts if r.estimate is not None]
    fig = interval_figure(
        [_number(r.estimate) for _, r in lifts],
        [_number(r.ci_low) for _, r in lifts],
        [_number(r.ci_high) for _, r in lifts],
        [label for label, _ in lifts],
        reference=0,
    )
    fig.update_layout(
        title=f"{key}: relative lift vs {analysis.control} (95 % interval)",
        xaxis={"tickformat": ".0%", "title": "treatment ÷ control − 1"},
    )
    return fig


#: The bands of the monitoring chart: columns, legend, colour.
_BANDS = (
    ("fixed_ci_low", "fixed_ci_high", "fixed-horizon 95 % (invalid if you peek)", "#cbd5e0"),
    ("ci_low", "ci_high", "always-valid 95 %", "#90cdf4"),
)


def _peeking_figure(ws: Workspace, key: str, control: str, treatment: str) -> go.Figure:
    """The effect on orders per unit as seen on each day after launch, with the
    always-valid and the fixed-horizon interval (:func:`peeking_path`)."""
    path = peeking_path(
        ws, key, RETENTION_METRICS[0], control=control, treatment=treatment, days=PEEK_DAYS
    ).to_pandas()
    path = path[np.isfinite(path.estimate)].rename(columns={"day": "look"})
    fig = go.Figure()
    for low, high, name, color in _BANDS:
        fig.add_trace(
            go.Scatter(
                x=list(path.look) + list(path.look[::-1]),
                y=list(path[high].clip(upper=1e6)) + list(path[low].clip(lower=-1e6)[::-1]),
                fill="toself",
                name=name,
                line={"width": 0},
                fillcolor=color,
                opacity=0.6,
            )
        )
    fig.add_trace(go.Scatter(x=path.look, y=path.estimate, name="estimate", mode="lines"))
    fig.add_hline(y=0, line_dash="dot")
    fig.update_layout(
        title=f"{key}: effect on orders per unit, as seen on each day after launch",
        xaxis={"title": "days since exposure"},
        yaxis={"title": "treatment − control"},
        height=380,
    )
    return fig


#: The effects table's numeric columns, shown to four digits.
_EFFECT_NUMBERS = ("control_mean", "treatment_mean", "estimate", "ci_low", "ci_high", "p_adjusted")


def _effects_table(analysis: ExperimentAnalysis) -> pd.DataFrame:
    """Absolute effects per metric and variant, as the report shows them."""
    absolute = analysis.results.to_pandas()
    columns = ["metric", "variant", *_EFFECT_NUMBERS, "test"]
    return _formatted(absolute[columns], digits=dict.fromkeys(_EFFECT_NUMBERS, 4))


def _summary(key: str, analysis: ExperimentAnalysis) -> str:
    """One sentence: the split, the sample-ratio check and each treatment's ROI."""
    srm = analysis.srm
    split = ", ".join(f"{v} {n:,}" for v, n in analysis.counts.items())
    status = "MISMATCH" if srm.mismatch else "ok"
    text = f"{key}: {split}; sample ratio {status} (p = {_g(srm.p_value)})."
    for variant, roi in analysis.roi.items():
        verdict = f"below {roi.threshold:g}: review before repeating" if roi.flagged else "ok"
        text += (
            f" ROI of {variant}: {_g(roi.roi)} [{_g(roi.ci_low)}, {_g(roi.ci_high)}], {verdict}."
        )
    return text


def _uplift(sec: Section, ctx: ReportContext) -> None:
    from liucun.models import list_models
    from liucun.models.uplift import UPLIFT_MODEL, CampaignEconomics, compare_targeting

    ws = ctx.workspace
    if ws is None or not list_models(ws.models_dir, UPLIFT_MODEL):
        return
    econ = CampaignEconomics(margin=REPORT_MARGIN, contact_cost=REPORT_CONTACT_COST)
    result = compare_targeting(ws, econ)
    fig = go.Figure()
    card = result.card
    fig.add_trace(
        go.Scatter(
            x=card.metrics["qini_fraction"], y=card.metrics["qini_gain"], name="uplift model"
        )
    )
    fractions = card.metrics["qini_fraction"]
    end = card.metrics["qini_gain"][-1]
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, end], name="random", line={"dash": "dot"}, mode="lines")
    )
    fig.update_layout(
        title=f"Qini curve of {card.name} {card.version} on {card.metrics['held_out']:,} "
        f"held-out units ({card.metrics['outcome']})",
        xaxis={"title": "share targeted", "tickformat": ".0%", "range": [0, max(fractions)]},
        yaxis={"title": "incremental outcome per unit"},
        height=380,
    )
    sec.add_figure(fig)
    table = result.policies[["policy", "n_targeted", "value", "ci_low", "ci_high", "total"]]
    sec.add_table(_formatted(table, digits={"value": 3, "ci_low": 3, "ci_high": 3, "total": 0}))
    plan = result.plan
    roi = "" if plan.roi is None else f", expected ROI {plan.roi:.2f}"
    sec.add_table(
        pd.DataFrame(
            {
                "uplift policy": [
                    f"treat {plan.n_targeted:,} of {plan.n_customers:,} held-out customers"
                    f"{roi}; {plan.n_sleeping_dogs:,} sleeping dogs left out (margin "
                    f"{REPORT_MARGIN:g}, contact cost {REPORT_CONTACT_COST:g})"
                ]
            }
        ),
        text_last=True,
    )


def _number(value: object) -> float:
    """A scalar statistic as a float (NaN when undefined)."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _g(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.3g}"  # type: ignore[arg-type]
