"""The report's figures and KPIs for the cockpit: a :class:`ReportContext` built the way
``liucun report`` builds it, and the headline KPIs coloured against ``[targets]``.

Nothing is computed here that ``liucun.reports`` or ``liucun.metrics`` defines: the
numbers are :func:`liucun.reports.headline_kpis`' and the sections are the report's own
builders; this module only decides which target a KPI is compared with and its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from liucun.core import TargetSettings, as_utc
from liucun.metrics import in_reporting_currency
from liucun.reports import ReportContext, headline_kpis, latest_scores, number, pct
from liucun.workspace import Workspace

#: Headline KPI name (its start) → the ``[targets]`` key, and whether lower is better.
KPI_TARGETS: tuple[tuple[str, str, bool], ...] = (
    ("active customers", "active_customers", False),
    ("D1 activity retention", "d1_retention", False),
    ("D7 activity retention", "d7_retention", False),
    ("D30 activity retention", "d30_retention", False),
    ("repeat purchase within 30 days", "repeat_30d", False),
    ("repeat purchase within 90 days", "repeat_90d", False),
    ("repurchase rate", "repurchase_rate", False),
    ("churn rate", "churn_rate", True),
    ("AOV", "aov", False),
    ("revenue", "revenue", False),
    ("ARPU", "arpu", False),
    ("LTV/CAC", "ltv_cac", False),
)
STATUSES = ("green", "yellow", "red", "none")


@dataclass(frozen=True)
class KpiTile:
    """One headline KPI with its target and colour (``green``, ``yellow``, ``red``,
    ``none`` when it has no target or no value)."""

    key: str
    label: str
    value: float | None
    shown: str
    note: str
    target: float | None
    target_shown: str
    status: str
    lower_is_better: bool


def report_context(ws: Workspace, as_of: datetime | None = None) -> ReportContext | None:
    """The context the report's section builders read, as :func:`liucun.reports.
    build_report` makes it (events before the data end, in the reporting currency; the
    latest scores); None when the warehouse has no events."""
    settings = ws.settings
    end = as_utc(as_of) if as_of is not None else ws.data_end()
    if end is None:
        return None
    events = ws.events()
    events = in_reporting_currency(events.filter(events.ts < end), ws.table("fx_rates"), settings)
    scores, card = latest_scores(ws, end)
    return ReportContext(
        events=events,
        users=ws.customers(),
        as_of=end,
        timezone=settings.reporting_timezone,
        heatmap_cohorts=settings.reporting.heatmap_cohorts,
        funnel_steps=tuple(settings.reporting.funnel),
        scores=scores,
        card=card,
        workspace=ws,
        state_as_of=as_utc(ws.clock.now()),
    )


def status_of(value: float | None, target: float | None, *, lower: bool, tolerance: float) -> str:
    """``green`` when ``value`` meets ``target``, ``yellow`` when it misses by at most
    ``tolerance`` × target, else ``red``; ``none`` without a target or a value.

    >>> [status_of(v, 0.30, lower=False, tolerance=0.1) for v in (0.30, 0.28, 0.2)]
    ['green', 'yellow', 'red']
    >>> [status_of(v, 0.40, lower=True, tolerance=0.1) for v in (0.5, None)]
    ['red', 'none']
    """
    if target is None or value is None or pd.isna(value):
        return "none"
    band = abs(target) * tolerance
    if lower:
        return "green" if value <= target else "yellow" if value <= target + band else "red"
    return "green" if value >= target else "yellow" if value >= target - band else "red"


def _target_key(metric: str) -> tuple[str, bool] | None:
    for start, key, lower in KPI_TARGETS:
        if metric.startswith(start):
            return key, lower
    return None


def _shown(value: float | None, kind: str) -> str:
    if kind == "rate":
        return pct(value)
    if kind == "money":
        return number(value, 2)
    if kind == "ratio":
        return "—" if value is None or pd.isna(value) else f"{value:.2f}×"
    return number(value)


def kpi_tiles(ctx: ReportContext, targets: TargetSettings) -> list[KpiTile]:
    """The report's headline KPIs (:func:`liucun.reports.headline_kpis`; money in its main
    currency, LTV/CAC over all channels) with their ``[targets]`` and colours."""
    ws = ctx.workspace
    frame = headline_kpis(
        ctx.events,
        ctx.users,
        as_of=ctx.as_of,
        timezone=ctx.timezone,
        currency=ws.settings.reporting.currency if ws is not None else None,
        fx_rates=ws.table("fx_rates") if ws is not None else None,
    )
    tiles: list[KpiTile] = []
    seen: set[str] = set()
    for row in frame.itertuples():
        metric, by, kind = str(row.metric), str(row.by), str(row.kind)
        value = None if pd.isna(row.value) else float(row.value)
        if metric == "LTV/CAC" and by != "all channels":
            continue
        found = _target_key(metric)
        if found is None:
            continue
        key, lower = found
        if key in seen:  # money: the first currency is the one with the most orders
            continue
        seen.add(key)
        target = getattr(targets, key)
        label, _, note = metric.partition(" (")
        tiles.append(
            KpiTile(
                key=key,
                label=f"{label} {by}".strip() if kind == "money" else label,
                value=value,
                shown=_shown(value, kind),
                note=note.rstrip(")"),
                target=target,
                target_shown="" if target is None else _shown(target, kind),
                status=status_of(value, target, lower=lower, tolerance=targets.tolerance),
                lower_is_better=lower,
            )
        )
    return tiles
