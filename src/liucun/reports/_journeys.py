"""The report's "Journeys" section: per journey, a table of its nodes (entered, sent,
suppressed, converted by arm) and a chart of the incremental margin per node with its
interval — and, when the data come from the simulated responding world, the true
incremental margin as a marker — from :func:`liucun.journeys._report.journey_report`.

The section is there only when some customer has entered a journey (``journey_enrolments``
in state); otherwise the builder returns None and the report has no Journeys section.
Journeys are read as they stood at :attr:`ReportContext.state_as_of` (the report's
``as_of`` when one was given, else the workspace clock's now); goal windows end at the
data end.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import select

from liucun.journeys._report import SELECTED, Effect, JourneyReport, journey_report
from liucun.reports._analytics import ReportContext
from liucun.reports._render import Kpi, Section, number, pct, wrap
from liucun.state import JourneyEnrolment
from liucun.workspace import Workspace

_ESTIMATE = "#2b6cb0"
_TRUTH = "#c05621"


def journey_names(ws: Workspace) -> list[str]:
    """The journeys some customer has entered, by name."""
    with ws.state.read() as s:
        return sorted(s.scalars(select(JourneyEnrolment.journey).distinct()))


def journeys_section(ctx: ReportContext) -> Section | None:
    """The Journeys section, or None when no customer has entered a journey."""
    ws = ctx.workspace
    if ws is None:
        return None
    names = journey_names(ws)
    if not names:
        return None
    at = ctx.state_as_of or ctx.as_of
    reports = [journey_report(ws, name, truth="auto", as_of=at) for name in names]
    sec = Section("journeys", "Journeys")
    sec.kpis = _kpis(reports)
    level = f"{1 - reports[0].alpha:.0%}"
    sec.lead = (
        f"{len(reports)} journey(s). At each node the treatment enrolments that reached it "
        "are compared with the control enrolments that reached it (the control arm walks "
        "the same nodes with every action withheld) on the goal within its window: "
        f"incremental totals for the treatment arm with {level} intervals (CUPED on the 90 "
        "days before entry); margin = margin share × revenue − cost per send."
        + (
            " The diamonds mark the true incremental margin of the simulated world."
            if any(r.truth_source for r in reports)
            else ""
        )
    )
    for r in reports:
        sec.warnings.extend(_warnings(r))
        figure = journey_margin_figure(r)
        if figure is not None:
            sec.add_figure(figure, wide=True)
        sec.add_table(journey_node_table(r))
    return sec


def _kpis(reports: list[JourneyReport]) -> list[Kpi]:
    enrolled = sum(sum(r.units.values()) for r in reports)
    control = sum(r.units["control"] for r in reports)
    first = [r.nodes[0] for r in reports if r.nodes]
    known = [n.effects["margin"] for n in first if n.effects["margin"].ci_low is not None]
    note = f"estimated, {len(known)} of {len(reports)} journeys measurable"
    if known:
        low, high = summed_interval(known)
        note = f"{pct(1 - reports[0].alpha, 0)} interval {number(low)} … {number(high)}; {note}"
    out = [
        Kpi("Journeys", number(len(reports))),
        Kpi("Enrolments", number(enrolled), f"{pct(control / enrolled)} control"),
        Kpi(
            "Incremental margin",
            number(sum(float(e.estimate or 0.0) for e in known)) if known else "—",
            note,
        ),
    ]
    truths = [n.true_incremental_margin for n in first if n.true_incremental_margin is not None]
    if truths:
        out.append(Kpi("True incremental margin", number(sum(truths)), "the simulated world"))
    return out


def summed_interval(effects: list[Effect]) -> tuple[float, float]:
    """The interval of a sum of independent effects (journeys randomise on their own:
    the variances add), each effect's standard error read back from its interval's half
    width (normal intervals of one level)."""
    from math import sqrt

    total = sum(float(e.estimate or 0.0) for e in effects)
    half = sqrt(sum(((float(e.ci_high) - float(e.ci_low)) / 2) ** 2 for e in effects))
    return total - half, total + half


def _warnings(r: JourneyReport) -> list[str]:
    out = []
    if r.nodes and r.nodes[0].note:
        out.append(f"{r.journey}: {r.nodes[0].note}")
    selected = [n.node for n in r.nodes if n.roi.reason == SELECTED]
    if selected:
        out.append(
            f"{r.journey}: no comparison of the arms at {', '.join(selected)} — who reaches "
            "them depends on what customers did after entry (a wait for an event, or an "
            "action and a wait); the journey as a whole is measured at its first node."
        )
    flagged = [n.node for n in r.nodes if n.roi.below_threshold]
    if flagged:
        out.append(
            f"{r.journey}: the ROI's lower bound is below {r.nodes[0].roi.threshold:g} at "
            f"{', '.join(flagged)} — the journey may not pay for itself."
        )
    return out


def journey_margin_figure(r: JourneyReport) -> go.Figure | None:
    """Incremental margin with its interval per node (a forest plot), truth as diamonds."""
    rows = [n for n in r.nodes if n.effects["margin"].ci_low is not None]
    if not rows:
        return None
    labels = [wrap(n.node, 18) for n in rows]
    est = [n.effects["margin"].estimate for n in rows]
    lo = [n.effects["margin"].ci_low for n in rows]
    hi = [n.effects["margin"].ci_high for n in rows]
    fig = go.Figure(
        go.Scatter(
            x=est,
            y=labels,
            mode="markers",
            name="estimate",
            marker={"color": _ESTIMATE, "size": 9},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [h - e for h, e in zip(hi, est, strict=True)],
                "arrayminus": [e - low for e, low in zip(est, lo, strict=True)],
                "color": _ESTIMATE,
            },
            hovertemplate="%{y}: %{x:,.0f}<extra>estimate</extra>",
        )
    )
    truth = [(label, n.true_incremental_margin) for label, n in zip(labels, rows, strict=True)]
    truth = [(label, t) for label, t in truth if t is not None]
    if truth:
        fig.add_trace(
            go.Scatter(
                x=[t for _, t in truth],
                y=[label for label, _ in truth],
                mode="markers",
                name="truth",
                marker={"color": _TRUTH, "symbol": "diamond", "size": 11},
                hovertemplate="%{y}: %{x:,.0f}<extra>true</extra>",
            )
        )
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(
        title=f"{r.journey}: incremental margin per node",
        xaxis={"title": "incremental margin (treatment arm total)", "zeroline": False},
        yaxis={"type": "category", "autorange": "reversed"},
        height=150 + 48 * len(rows),
        showlegend=bool(truth),
    )
    return fig


def _interval(e: object) -> str:
    est, low, high = (getattr(e, k) for k in ("estimate", "ci_low", "ci_high"))
    if est is None:
        return "—"
    return number(est) if low is None else f"{number(est)} [{number(low)}, {number(high)}]"


def journey_node_table(r: JourneyReport) -> pd.DataFrame:
    """One row per node of the journey: entered, sent, suppressed, conversion per arm and
    the incremental conversions, margin, ROI and payback (the report's node table)."""
    rows = []
    for n in r.nodes:
        t, c = n.entered_by_arm["treatment"], n.entered_by_arm["control"]
        row = {
            "journey": r.journey,
            "node": n.node,
            "entered (t / c)": f"{number(t)} / {number(c)}",
            "sent": number(n.sent),
            "suppressed": ", ".join(f"{k} {number(v)}" for k, v in n.suppressed.items()) or "0",
            "converted (t / c)": (
                f"{pct(n.conversion_rate['treatment'])} / {pct(n.conversion_rate['control'])}"
            ),
            "incr. conversions": _interval(n.effects["conversions"]),
            "incr. margin": _interval(n.effects["margin"]),
            "ROI": "—" if n.roi.estimate is None else f"{n.roi.estimate:.2f}",
            "payback": "—" if n.payback_days is None else f"{n.payback_days} d",
        }
        if r.truth_source:
            row["true margin"] = number(n.true_incremental_margin)
        rows.append(row)
    return pd.DataFrame(rows)
