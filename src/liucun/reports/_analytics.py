"""The report's analytics sections: cohorts, curves, lifecycle, RFM, stages, funnel,
LTV/CAC and the regional spread of 30-day repeat purchase.

Each builder takes a :class:`ReportContext`, runs Ibis expressions from
``liucun.metrics`` / ``liucun.segments`` on the workspace's backend, and returns a
:class:`Section` with Plotly figures and small tables. Numbers are never computed here
that a metric function already defines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from liucun.core import DEFAULT_FUNNEL, ConfigError, as_utc
from liucun.metrics import (
    check_event_types,
    funnel,
    lifecycle,
    ltv_cac,
    repeat_within,
    retention,
    weighted_mean,
    window_start,
)
from liucun.models import ModelCard
from liucun.reports._render import Section, number, pct
from liucun.segments import SEGMENTS, STAGES, lifecycle_stages, rfm, stage_transitions
from liucun.workspace import Workspace

#: Event types that show a customer chose to be active (messages sent *to* them do not).
ACTIVITY_EVENTS = ("visit", "search", "view", "add_to_cart", "order", "review", "share")
#: The report's default funnel (``[reporting] funnel`` in liucun.toml sets another).
FUNNEL_STEPS: tuple[str, ...] = tuple(DEFAULT_FUNNEL)
#: Regions with fewer complete D30 cohort customers than this are left out of the spread.
MIN_REGION_CUSTOMERS = 30


@dataclass(frozen=True)
class ReportContext:
    """What every section reads: resolved events before ``as_of``, users, and options.

    ``as_of`` is an instant, aware UTC (:func:`build_report` makes it so).
    """

    events: ir.Table
    users: ir.Table
    as_of: datetime
    timezone: str = "UTC"
    breakdown: str = "acquisition_channel"
    #: Months since the first order shown per cohort (M1 … M``cohort_months``).
    cohort_months: int = 12
    #: The heatmap shows this many most recent cohorts that have data (``[reporting]
    #: heatmap_cohorts``), however long ago the history ended.
    heatmap_cohorts: int = 12
    #: The funnel's event types, in order (``[reporting] funnel``; see :func:`check_funnel`).
    funnel_steps: tuple[str, ...] = FUNNEL_STEPS
    transition_days: int = 90
    funnel_days: int = 30
    #: The latest scores before ``as_of`` (one model version), and that version's card.
    scores: pd.DataFrame | None = None
    card: ModelCard | None = None
    #: The workspace, for sections that read more than events and users.
    workspace: Workspace | None = None
    #: The instant the state database (ledger, coupons, memberships) is read at: the
    #: report's ``as_of`` when one was given, else the workspace clock's now (operational
    #: rows are booked at the clock's time, often after the warehouse's data end).
    state_as_of: datetime | None = None

    @property
    def as_of_local(self) -> pd.Timestamp:
        """``as_of`` as wall-clock time in the reporting time zone (naive)."""
        return pd.Timestamp(as_utc(self.as_of)).tz_convert(self.timezone).tz_localize(None)


#: A section builder; one that returns None leaves its section out of the report.
SectionBuilder = Callable[[ReportContext], Section | None]


def cohort_heatmap(ctx: ReportContext) -> Section:
    """The ``heatmap_cohorts`` most recent monthly first-order cohorts that have data,
    whatever the as-of date; the sentence above is computed on those cohorts only."""
    sec = Section("cohorts", "Cohort retention")
    table = retention(
        ctx.events,
        period="month",
        max_period=ctx.cohort_months,
        users=ctx.users,
        as_of=ctx.as_of,
        timezone=ctx.timezone,
    )
    recent = (
        table.filter(table.cohort_size > 0)
        .select("cohort")
        .distinct()
        .order_by(ibis.desc("cohort"))
        .limit(ctx.heatmap_cohorts)
        .to_pandas()
        .cohort
    )
    if recent.empty:
        sec.empty = "No customer has ordered yet: there are no cohorts to show."
        return sec
    shown = table.filter(table.cohort.isin([c.to_pydatetime() for c in pd.to_datetime(recent)]))
    frame = shown.to_pandas()
    frame["label"] = pd.to_datetime(frame.cohort).dt.strftime("%Y-%m")
    frame["shown"] = frame.rate.where(frame.complete)
    # M0 is the first order itself (100 % by definition): left out to give M1… the room
    grid = frame.pivot(index="label", columns="period", values="shown").sort_index()
    grid = grid.drop(columns=[0], errors="ignore")
    sizes = frame.groupby("label").cohort_size.first().reindex(grid.index)
    labels = [f"{c} (n={s:,})" for c, s in zip(grid.index, sizes, strict=True)]
    cells = grid.to_numpy(dtype=float)
    top = float(np.nanmax(cells)) if np.isfinite(cells).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=cells,
            x=[f"M{p}" for p in grid.columns],
            y=labels,
            colorscale="Greens",
            zmin=0,
            zmax=top if top > 0 else 1.0,
            text=[[pct(v, 0) if not np.isnan(v) else "" for v in row] for row in cells],
            customdata=[
                [pct(v) if not np.isnan(v) else "not over yet" for v in row] for row in cells
            ],
            texttemplate="%{text}",
            hovertemplate="cohort %{y}<br>month %{x}: %{customdata}<extra></extra>",
            showscale=False,
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        title="Share of each first-order cohort ordering again, by month since the first order",
        xaxis={"dtick": 1, "side": "top"},
        yaxis={"autorange": "reversed", "dtick": 1},
        height=80 + 28 * len(labels),
    )
    sec.add_figure(fig)
    first, last = frame.label.min(), frame.label.max()
    span = (
        f"The {len(labels)} most recent cohorts ({first} … {last})"
        if len(labels) > 1
        else f"The only cohort ({first})"
    )
    mean = weighted_mean(shown).to_pandas()
    m1 = mean[mean.period == 1].rate
    if len(m1):
        sec.lead = (
            f"{span}: {pct(m1.iloc[0])} of their customers order again in the month after "
            "their first order (complete cohorts). Blank cells are months not over yet."
        )
    else:
        sec.lead = f"{span}: none has completed its first month yet, so cells are blank."
    return sec


def retention_curves(ctx: ReportContext) -> Section:
    """Monthly retention curves (weighted over complete cohorts) by ``ctx.breakdown``."""
    sec = Section("curves", f"Retention curves by {ctx.breakdown.replace('_', ' ')}")
    table = retention(
        ctx.events,
        period="month",
        max_period=6,
        breakdown=ctx.breakdown,
        users=ctx.users,
        as_of=ctx.as_of,
        timezone=ctx.timezone,
    )
    curves = weighted_mean(table).to_pandas()
    curves["breakdown"] = curves.breakdown.fillna("unknown").astype(str)
    curves = curves[curves.period >= 1]
    if curves.empty:
        sec.empty = "No cohort is old enough to have completed its first month."
        return sec
    biggest = (
        table.filter(table.period == 0).group_by("breakdown").aggregate(n=table.cohort_size.sum())
    ).to_pandas()
    keep = biggest.sort_values("n", ascending=False).breakdown.fillna("unknown").astype(str)[:8]
    fig = go.Figure()
    for value in keep:
        line = curves[curves.breakdown == value].sort_values("period")
        fig.add_trace(go.Scatter(x=line.period, y=line.rate, mode="lines+markers", name=str(value)))
    fig.update_layout(
        title="Share of first-order cohorts ordering in month k",
        xaxis={"title": "months since first order", "dtick": 1},
        yaxis={"title": "retained", "tickformat": ".0%"},
        height=420,
    )
    sec.add_figure(fig)
    m = curves[curves.period == curves.period.min()].sort_values("rate")
    if len(m) >= 2:
        lo, hi = m.iloc[0], m.iloc[-1]
        sec.lead = (
            f"Month-{int(lo.period)} retention ranges from {pct(lo.rate)} ({lo.breakdown}) "
            f"to {pct(hi.rate)} ({hi.breakdown})."
        )
    return sec


def lifecycle_bars(ctx: ReportContext) -> Section:
    """Weekly new / returning / resurrecting / dormant customers, last 26 complete weeks."""
    sec = Section("lifecycle", "Lifecycle insight")
    table = lifecycle(
        ctx.events, period="week", event_types=ACTIVITY_EVENTS, timezone=ctx.timezone
    ).to_pandas()
    table["period_start"] = pd.to_datetime(table.period_start)
    complete = table.period_start + pd.Timedelta(days=7) <= ctx.as_of_local
    table = table[complete].tail(26)
    if table.empty:
        sec.empty = "No complete week of activity yet."
        return sec
    fig = go.Figure()
    colors = {"new": "#2f855a", "returning": "#68d391", "resurrecting": "#3182ce"}
    for name, color in colors.items():
        fig.add_trace(go.Bar(x=table.period_start, y=table[name], name=name, marker_color=color))
    fig.add_trace(
        go.Bar(x=table.period_start, y=-table.dormant, name="dormant", marker_color="#e53e3e")
    )
    fig.update_layout(
        barmode="relative",
        title="Active customers per week: where they came from, and who went quiet",
        yaxis={"title": "customers"},
        height=420,
    )
    sec.add_figure(fig)
    last = table.iloc[-1]
    gained = int(last.new + last.resurrecting)
    sec.lead = (
        f"Week of {last.period_start:%Y-%m-%d}: {number(last.returning)} returning, "
        f"{number(gained)} new or resurrected, {number(last.dormant)} went dormant "
        f"(activity = {', '.join(ACTIVITY_EVENTS)})."
    )
    return sec


def rfm_grid(ctx: ReportContext) -> Section:
    """The 11 RFM segments by size (area) and mean value (colour), and the 8-class model."""
    sec = Section("rfm", "RFM segments")
    scored = rfm(ctx.events, as_of=ctx.as_of)
    seg = (
        scored.group_by("rfm_segment")
        .aggregate(
            customers=scored.count(),
            revenue=scored.monetary.sum(),
            mean_value=scored.monetary.mean(),
            mean_recency_days=scored.recency_days.mean(),
        )
        .to_pandas()
    )
    if seg.empty:
        sec.empty = "No customer has ordered yet."
        return sec
    seg["order"] = seg.rfm_segment.map({s: i for i, s in enumerate(SEGMENTS)})
    seg = seg.sort_values("order").drop(columns="order")
    seg["share"] = seg.customers / seg.customers.sum()
    fig = go.Figure(
        go.Treemap(
            labels=seg.rfm_segment,
            parents=[""] * len(seg),
            values=seg.customers,
            marker={"colors": seg.mean_value, "colorscale": "Blues", "showscale": True},
            customdata=np.stack([seg.share, seg.mean_value, seg.revenue], axis=1),
            texttemplate="%{label}<br>%{value:,} customers",
            hovertemplate="%{label}<br>%{value:,} customers (%{customdata[0]:.1%})"
            "<br>mean value %{customdata[1]:,.0f}<br>revenue %{customdata[2]:,.0f}<extra></extra>",
        )
    )
    fig.update_layout(title="RFM segments: area = customers, colour = mean value", height=460)
    sec.add_figure(fig)
    classes = (
        scored.group_by(["rfm_class", "rfm_class_zh"])
        .aggregate(customers=scored.count(), mean_value=scored.monetary.mean())
        .order_by(ibis.desc("customers"))
        .to_pandas()
    )
    sec.add_table(
        _formatted(
            seg.rename(columns={"rfm_segment": "segment"}),
            rates=("share",),
            money=("revenue", "mean_value"),
            counts=("customers",),
            digits={"mean_recency_days": 0},
        )
    )
    sec.add_table(
        _formatted(
            classes.rename(columns={"rfm_class": "8-class model", "rfm_class_zh": "类别"}),
            money=("mean_value",),
            counts=("customers",),
        )
    )
    top = seg.sort_values("revenue", ascending=False).iloc[0]
    sec.lead = (
        f"{top.rfm_segment} ({pct(top.share)} of buyers) bring the most revenue; "
        "value is orders before the report date, in order currency."
    )
    return sec


def stages_flow(ctx: ReportContext) -> Section:
    """Customers per lifecycle stage now, and how they moved over ``transition_days``."""
    sec = Section("stages", "Lifecycle stages")
    stages = lifecycle_stages(ctx.events, as_of=ctx.as_of, users=ctx.users)
    counts = stages.group_by("stage").aggregate(customers=stages.count()).to_pandas()
    if counts.empty:
        sec.empty = "No customers yet."
        return sec
    counts = counts.set_index("stage").reindex(list(STAGES)).fillna(0).reset_index()
    fig = go.Figure(go.Bar(x=counts.stage, y=counts.customers, marker_color="#2b6cb0"))
    fig.update_layout(title=f"Customers by stage on {ctx.as_of:%Y-%m-%d}", height=380)
    sec.add_figure(fig)
    start = ctx.as_of - timedelta(days=ctx.transition_days)
    flows = stage_transitions(ctx.events, start=start, end=ctx.as_of, users=ctx.users).to_pandas()
    names = ["absent", *STAGES]
    left = {s: i for i, s in enumerate(names)}
    right = {s: len(names) + i for i, s in enumerate(STAGES)}
    flows = flows[flows.users > 0]
    fig = go.Figure(
        go.Sankey(
            node={
                "label": [f"{s} ({start:%m-%d})" for s in names]
                + [f"{s} ({ctx.as_of:%m-%d})" for s in STAGES],
                "pad": 12,
            },
            link={
                "source": flows.from_stage.map(left).tolist(),
                "target": flows.to_stage.map(right).tolist(),
                "value": flows.users.tolist(),
            },
        )
    )
    fig.update_layout(
        title=f"Stage transitions over the last {ctx.transition_days} days", height=460
    )
    sec.add_figure(fig)
    moved = flows[(flows.from_stage != flows.to_stage) & (flows.from_stage != "absent")]
    worse = moved[moved.to_stage.isin(["decline", "churned"])].users.sum()
    sec.lead = (
        f"{number(worse)} customers moved into decline or churned in the last "
        f"{ctx.transition_days} days; stages follow each customer's own purchase cadence."
    )
    return sec


def check_funnel(
    steps: Sequence[str],
    custom_event_types: Sequence[str] = (),
    events: ir.Table | None = None,
) -> tuple[str, ...]:
    """``steps`` as a tuple if every one is a known event type — standard, declared
    (``custom_event_types``) or in ``events`` (:func:`liucun.metrics.check_event_types`)
    — else :class:`ConfigError` naming the setting, the step, the known types and the
    fix."""
    try:
        check_event_types(
            events,
            [("reporting.funnel: step", "", step) for step in steps],
            custom_event_types=custom_event_types,
        )
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}. Set [reporting] funnel in liucun.toml to event types in order, e.g. "
            'funnel = ["visit", "view", "add_to_cart", "order"]'
        ) from None
    if len(steps) < 2:
        raise ConfigError(
            'reporting.funnel needs at least two event types, e.g. ["visit", "order"]'
        )
    return tuple(steps)


def funnel_section(ctx: ReportContext) -> Section:
    """The ``funnel_steps`` funnel (7-day window) for users who started it in the last
    ``funnel_days``."""
    sec = Section("funnel", "Purchase funnel")
    names = ctx.funnel_steps
    start = names[0]
    # the last funnel_days whole days of the reporting time zone
    recent = ctx.events.filter(
        ctx.events.ts >= window_start(ctx.as_of, ctx.funnel_days, ctx.timezone)
    )
    # steps were checked against the whole history (check_funnel): a type without
    # events in the window is an empty step, not an error
    steps = funnel(recent, names, window=timedelta(days=7), custom_event_types=names).to_pandas()
    if steps.empty or steps.users.iloc[0] == 0:
        sec.empty = f"No '{start}' events in the last {ctx.funnel_days} days."
        return sec
    fig = go.Figure(go.Funnel(y=steps.name, x=steps.users, textinfo="value+percent initial"))
    fig.update_layout(
        title=f"{' → '.join(names)}: ordered funnel, 7-day window, users with a '{start}' "
        f"in the last {ctx.funnel_days} days",
        yaxis={"type": "category"},
        height=140 + 60 * len(names),
    )
    sec.add_figure(fig)
    sec.add_table(_formatted(steps, rates=("conversion", "drop_off"), counts=("users", "step")))
    worst = steps.iloc[1:].sort_values("drop_off").iloc[-1]
    sec.lead = (
        f"{pct(steps.conversion.iloc[-1])} of users with a '{start}' went on to "
        f"'{names[-1]}' within 7 days; the largest drop-off is into '{worst['name']}' "
        f"({pct(worst.drop_off)})."
    )
    return sec


def ltv_cac_section(ctx: ReportContext) -> Section:
    """Realized LTV to date against acquisition cost, by acquisition channel."""
    sec = Section("ltv_cac", "LTV and CAC by acquisition channel")
    channels = ltv_cac(ctx.events, ctx.users, as_of=ctx.as_of).to_pandas()
    if channels.empty:
        sec.empty = "No users with an acquisition channel."
        return sec
    fig = go.Figure(
        go.Bar(
            x=channels.channel,
            y=channels.ltv_cac.fillna(0),
            text=["no CAC" if pd.isna(v) else f"{v:.2f}×" for v in channels.ltv_cac],
            textposition="outside",
            cliponaxis=False,
            marker_color=np.where(channels.ltv_cac.fillna(0) >= 1, "#2f855a", "#c53030"),
        )
    )
    fig.add_hline(y=1, line_dash="dot", annotation_text="break-even")
    fig.update_layout(
        title="Realized LTV ÷ CAC (revenue to date per acquired customer)", height=380
    )
    sec.add_figure(fig)
    sec.add_table(
        _formatted(
            channels,
            money=("revenue", "ltv", "cac"),
            counts=("customers", "buyers"),
            digits={"ltv_cac": 2},
        )
    )
    known = channels.dropna(subset=["ltv_cac"]).sort_values("ltv_cac")
    if len(known):
        sec.lead = (
            f"Best: {known.iloc[-1].channel} at {known.iloc[-1].ltv_cac:.2f}×; weakest: "
            f"{known.iloc[0].channel} at {known.iloc[0].ltv_cac:.2f}× (realized revenue to "
            "date, so young channels look worse than they will)."
        )
    return sec


def region_spread(ctx: ReportContext) -> Section:
    """Repeat purchase within 30 days of the first order per region (the headline's
    definition), its spread (max − min) and coefficient of variation."""
    sec = Section("regions", "30-day repeat purchase across regions")
    table = repeat_within(
        ctx.events,
        days=(30,),
        breakdown="region",
        users=ctx.users,
        as_of=ctx.as_of,
        timezone=ctx.timezone,
    ).to_pandas()
    table["breakdown"] = table.breakdown.fillna("unknown").astype(str)
    table = table[table.cohort_size >= MIN_REGION_CUSTOMERS].sort_values("rate")
    if len(table) < 2:
        sec.empty = (
            f"Fewer than two regions with {MIN_REGION_CUSTOMERS} or more customers whose first "
            "order is at least 30 days old."
        )
        return sec
    spread = region_dispersion(table.rate.to_numpy())
    fig = go.Figure(
        go.Bar(
            x=table.breakdown,
            y=table.rate,
            text=[pct(v) for v in table.rate],
            textposition="outside",
            cliponaxis=False,
            customdata=table.cohort_size,
            hovertemplate="%{x}: %{text} of %{customdata:,} customers<extra></extra>",
            marker_color="#805ad5",
        )
    )
    # bars run from the lowest rate on the left: the label sits above the line there,
    # clear of the bars' value labels (at the right it covered them on a phone)
    fig.add_hline(
        y=float(table.rate.mean()),
        line_dash="dot",
        annotation_text="mean of regions",
        annotation_position="top left",
    )
    fig.update_layout(
        title="Repeat purchase within 30 days of the first order, by region",
        yaxis={"tickformat": ".1%"},
        height=380,
    )
    sec.add_figure(fig)
    sec.add_table(
        _formatted(
            table.rename(columns={"breakdown": "region"}).drop(columns="period"),
            rates=("rate",),
            counts=("cohort_size", "retained"),
        )
    )
    lo, hi = table.iloc[0], table.iloc[-1]
    sec.lead = (
        f"Repeat purchase within 30 days of the first order runs from {pct(lo.rate)} "
        f"({lo.breakdown}) to {pct(hi.rate)} "
        f"({hi.breakdown}): a spread of {spread['spread'] * 100:.1f} points and a "
        f"coefficient of variation of {spread['cv']:.2f} across {len(table)} regions."
    )
    return sec


def region_dispersion(rates: np.ndarray) -> dict[str, float]:
    """Spread (max − min) and coefficient of variation (population standard deviation ÷
    mean, each region weighted equally) of per-region rates."""
    rates = np.asarray(rates, dtype=float)
    mean = float(rates.mean())
    return {
        "spread": float(rates.max() - rates.min()),
        "cv": float(rates.std(ddof=0) / mean) if mean > 0 else float("nan"),
    }


ANALYTICS_SECTIONS: tuple[SectionBuilder, ...] = (
    cohort_heatmap,
    retention_curves,
    lifecycle_bars,
    rfm_grid,
    stages_flow,
    funnel_section,
    ltv_cac_section,
    region_spread,
)


def _formatted(
    frame: pd.DataFrame,
    *,
    rates: tuple[str, ...] = (),
    money: tuple[str, ...] = (),
    counts: tuple[str, ...] = (),
    digits: dict[str, int] | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` with numbers as display strings."""
    out = frame.copy()
    for col in rates:
        out[col] = [pct(v) for v in out[col]]
    for col in money:
        out[col] = [number(v, 2) for v in out[col]]
    for col in counts:
        out[col] = [number(v) for v in out[col]]
    for col, d in (digits or {}).items():
        out[col] = [number(v, d) for v in out[col]]
    return out
