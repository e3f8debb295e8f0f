"""The report's "Risk and value" section, from the ``scores`` table and the model card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from liucun.reports._analytics import ReportContext, _formatted
from liucun.reports._render import Section, interval_figure, number, pct
from liucun.segments import SEGMENTS, STAGES

TOP_AT_RISK = 15


def risk_and_value(ctx: ReportContext) -> Section:
    """Churn-risk distribution, the most value at risk with reasons, CLV by segment and
    stage, retention drivers and the model's quality card."""
    sec = Section("risk", "Risk and value")
    if ctx.scores is None or ctx.scores.empty:
        sec.empty = (
            "No scores yet: run `liucun train` and `liucun score` to add churn risk, CLV "
            "and their reasons to this report."
        )
        return sec
    s = ctx.scores
    card = ctx.card
    horizon = card.horizon_days if card is not None else 90
    version = f"{s.model.iloc[0]} {s.model_version.iloc[0]}"
    fig = go.Figure(go.Histogram(x=s.churn_risk, xbins={"start": 0, "end": 1, "size": 0.05}))
    fig.update_layout(
        title=f"Churn risk (no order in the next {horizon} days), {len(s):,} customers",
        xaxis={"title": "churn risk", "tickformat": ".0%", "range": [0, 1], "dtick": 0.1},
        yaxis={"title": "customers"},
        bargap=0.05,
        height=360,
    )
    sec.add_figure(fig)

    by = []
    for column, order in (("segment", SEGMENTS), ("stage", STAGES)):
        g = s.groupby(column, observed=True).agg(
            customers=("user_id", "size"),
            clv_365d=("clv_365d", "sum"),
            churn_risk=("churn_risk", "mean"),
        )
        g = g.reindex([x for x in order if x in g.index])
        by.append((column, g))
    fig = go.Figure()
    for column, g in by:
        fig.add_trace(
            go.Bar(
                x=g.index,
                y=g.clv_365d,
                name=f"by {column}",
                customdata=np.stack([g.customers, g.churn_risk], axis=1),
                hovertemplate="%{x}: %{y:,.0f} expected over 365 days<br>%{customdata[0]:,}"
                " customers, mean churn risk %{customdata[1]:.0%}<extra></extra>",
            )
        )
    fig.update_layout(title="Expected 365-day value (CLV) by RFM segment and by stage", height=400)
    sec.add_figure(fig)

    if card is not None:
        _quality_card(sec, card)
        _value_deciles(sec, card)
        _drivers(sec, card)

    at_risk = s.assign(value_at_risk=s.churn_risk * s.clv_365d).nlargest(
        TOP_AT_RISK, "value_at_risk"
    )
    top = pd.DataFrame(
        {
            "customer": at_risk.user_id,
            "churn_risk": at_risk.churn_risk,
            "clv_365d": at_risk.clv_365d,
            "p_alive": at_risk.p_alive,
            "stage": at_risk.stage,
            "segment": at_risk.segment,
            "why": ["; ".join(r) if len(r) else "—" for r in at_risk.reasons],
        }
    )
    sec.add_table(
        _formatted(top, rates=("churn_risk", "p_alive"), money=("clv_365d",)), text_last=True
    )
    risky = s.churn_risk >= 0.5
    value_at_risk = float((s.churn_risk * s.clv_365d).sum())
    unit = f" {card.money_unit}" if card is not None else ""
    sec.lead = (
        f"{pct(risky.mean())} of customers are more likely than not to churn within "
        f"{horizon} days; expected value at risk over a year: {number(value_at_risk)}{unit} "
        f"(scored by {version} as of {s.as_of.iloc[0]:%Y-%m-%d}). The table lists the "
        f"{TOP_AT_RISK} customers with the most value at risk and why."
    )
    return sec


def _quality_card(sec: Section, card: object) -> None:
    """Held-out metrics of the model next to the baselines, and its calibration curve."""
    metrics = card.metrics  # type: ignore[attr-defined]
    # e.g. "BG/NBD ranks worse than random here …": said next to the comparison table
    sec.warnings.extend(w.text for w in getattr(card, "warnings", []))
    table = pd.DataFrame(metrics.get("comparison", []))
    if not table.empty:
        cols = [
            c
            for c in ("scorer", "role", "auc", "pr_auc", "brier", "ece", "lift_10", "capture_10")
            if c in table.columns
        ]
        sec.add_table(_formatted(table[cols], digits={c: 3 for c in cols[2:]}))
    curve = pd.DataFrame(metrics.get("calibration_curve", []))
    if {"mean_predicted", "observed_rate"} <= set(curve.columns):
        fig = go.Figure()
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot"})
        )
        fig.add_trace(
            go.Scatter(
                x=curve.mean_predicted,
                y=curve.observed_rate,
                mode="lines+markers",
                name="model",
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": curve.observed_high - curve.observed_rate,
                    "arrayminus": curve.observed_rate - curve.observed_low,
                },
            )
        )
        fig.update_layout(
            title=f"Calibration on held-out time ({str(metrics.get('backtest_cutoff', ''))[:10]})",
            xaxis={"title": "predicted churn risk", "tickformat": ".0%"},
            yaxis={"title": "observed churn rate", "tickformat": ".0%"},
            height=380,
        )
        sec.add_figure(fig)


def _value_deciles(sec: Section, card: object) -> None:
    """CLV accuracy on held-out time: predicted vs actual spend per decile of prediction."""
    metrics = card.metrics  # type: ignore[attr-defined]
    deciles = pd.DataFrame(metrics.get("value_deciles", []))
    if deciles.empty or not {"group", "mean_predicted", "mean_actual"} <= set(deciles.columns):
        return
    fig = go.Figure()
    fig.add_trace(go.Bar(x=deciles.group, y=deciles.mean_predicted, name="predicted"))
    fig.add_trace(go.Bar(x=deciles.group, y=deciles.mean_actual, name="actual"))
    spend = metrics.get("value_accuracy", {}).get("spend", {})
    detail = ""
    if spend.get("pearson") is not None and spend.get("aggregate_error_pct") is not None:
        detail = (
            f" — correlation {spend['pearson']:.2f}, total error "
            f"{spend['aggregate_error_pct']:+.1f} %"
        )
    fig.update_layout(
        barmode="group",
        title=f"CLV on held-out time: spend per customer by decile of prediction{detail}",
        xaxis={"title": "decile of predicted value (1 = highest)", "dtick": 1},
        yaxis={"title": f"spend in the next {card.horizon_days} days"},  # type: ignore[attr-defined]
        height=380,
    )
    sec.add_figure(fig)


def _drivers(sec: Section, card: object) -> None:
    """Hazard ratios of the retention drivers, with their confidence intervals."""
    drivers = pd.DataFrame(card.metrics.get("drivers", []))  # type: ignore[attr-defined]
    if drivers.empty or not {"covariate", "hazard_ratio", "ci_low", "ci_high"} <= set(
        drivers.columns
    ):
        return
    d = drivers.dropna(subset=["hazard_ratio", "ci_low", "ci_high"]).sort_values("hazard_ratio")
    fig = interval_figure(d.hazard_ratio, d.ci_low, d.ci_high, covariate_labels(d), reference=1)
    fig.update_layout(
        title="Retention drivers: churn hazard ratio (Cox model, 95 % interval)",
        xaxis={"title": "hazard ratio (> 1 raises churn)", "type": "log"},
    )
    sec.add_figure(fig, wide=True)
    if "sentence" in drivers.columns:
        shown = (
            drivers[drivers.get("significant", True).astype(bool)]
            if "significant" in drivers
            else drivers
        )
        sec.add_table(pd.DataFrame({"what moves retention": shown.sentence}), text_last=True)


#: Name endings of derived covariates and what they mean, for labels.
_SUFFIXES = (("_log2_rel", " (2× median)"),)


def covariate_labels(drivers: pd.DataFrame) -> list[str]:
    """A short readable label per row of a hazard-ratio table: its ``label`` column when
    the drivers model gives one, else one made from ``covariate`` and ``level`` (and
    ``reference``): ``first_order_value_log2_rel`` → "first order value (2× median)",
    ``region`` level ``north`` against ``east`` → "region: north vs east"."""
    labels: list[str] = []
    for row in drivers.to_dict("records"):
        given = row.get("label")
        if isinstance(given, str) and given.strip():
            labels.append(given.strip())
            continue
        labels.append(_derived_label(row))
    return labels


def _derived_label(row: dict[str, object]) -> str:
    covariate = str(row.get("covariate") or row.get("term") or "")
    level, reference = row.get("level"), row.get("reference")
    if _missing(level) and "[" in covariate and covariate.endswith("]"):
        covariate, _, rest = covariate.partition("[")  # a term name such as region[north]
        level = rest[:-1]
    name, note = covariate, ""
    for suffix, meaning in _SUFFIXES:
        if name.endswith(suffix):
            name, note = name[: -len(suffix)], meaning
            break
    text = name.replace("_", " ").strip() + note
    if not _missing(level):
        text += f": {str(level).replace('_', ' ')}"
        if not _missing(reference):
            text += f" vs {str(reference).replace('_', ' ')}"
    return text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""
