"""``build_report``: one self-contained HTML file from a workspace."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import ibis
import pandas as pd

from liucun.core import ConfigError, as_utc
from liucun.metrics import in_reporting_currency
from liucun.models import ModelCard, list_models
from liucun.reports._analytics import (
    ANALYTICS_SECTIONS,
    ReportContext,
    SectionBuilder,
    check_funnel,
)
from liucun.reports._experiments import experiments_section
from liucun.reports._journeys import journeys_section
from liucun.reports._kpis import headline_kpis
from liucun.reports._loyalty import loyalty_section
from liucun.reports._render import Kpi, ReportMeta, Section, number, pct, render, write_html
from liucun.reports._risk import risk_and_value
from liucun.workspace import Workspace

#: Every section of the report, in order.
REPORT_SECTIONS: tuple[SectionBuilder, ...] = (
    *ANALYTICS_SECTIONS,
    risk_and_value,
    experiments_section,
    loyalty_section,
    journeys_section,
)


def build_report(
    workspace: Workspace,
    out: Path,
    *,
    as_of: datetime | None = None,
    breakdown: str = "acquisition_channel",
    sections: Sequence[SectionBuilder] = REPORT_SECTIONS,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Write the retention report for ``workspace`` to ``out`` and return its path.

    ``as_of`` (an instant; a naive one is UTC) defaults to the workspace's data end, the
    UTC midnight after the last event's day (:func:`liucun.core.data_end`); only events
    before it are used. The report's time stamp comes from ``workspace.clock``.
    The heatmap's number of cohorts and the funnel's steps come from ``[reporting]
    heatmap_cohorts`` and ``[reporting] funnel``; a funnel step that is not a known event
    type is a :class:`ConfigError` before any work is done.
    The state database (loyalty ledger, coupons, memberships) is read at ``as_of`` when
    it is given, else at the workspace clock's now. ``on_step`` is called with each
    section's title before it is computed (for progress
    display). The file embeds Plotly's JavaScript, so it opens offline.
    """
    settings = workspace.settings
    events = workspace.events()
    funnel_steps = check_funnel(
        settings.reporting.funnel, settings.ingest.custom_event_types, events
    )
    end = as_utc(as_of) if as_of is not None else workspace.data_end()
    if end is None:
        raise ConfigError("the warehouse has no events yet; ingest some before a report")
    # Every money figure in the reporting currency (a no-op when none is set).
    events = in_reporting_currency(
        events.filter(events.ts < end), workspace.table("fx_rates"), settings
    )
    scores, card = latest_scores(workspace, end)
    ctx = ReportContext(
        events=events,
        users=workspace.customers(),
        as_of=end,
        timezone=settings.reporting_timezone,
        breakdown=breakdown,
        heatmap_cohorts=settings.reporting.heatmap_cohorts,
        funnel_steps=funnel_steps,
        scores=scores,
        card=card,
        workspace=workspace,
        state_as_of=as_utc(as_of) if as_of is not None else as_utc(workspace.clock.now()),
    )
    step = on_step or (lambda _title: None)
    step("Headline KPIs")
    kpis = kpi_cards(
        headline_kpis(
            ctx.events,
            ctx.users,
            as_of=end,
            timezone=ctx.timezone,
            currency=settings.reporting.currency,
            fx_rates=workspace.table("fx_rates"),
        )
    )
    built: list[Section] = []
    for builder in sections:
        step(builder.__name__.replace("_", " ").capitalize())
        section = builder(ctx)
        if section is not None:  # a builder with nothing to say leaves its section out
            built.append(section)
    first = events.ts.min().to_pyarrow().as_py()
    meta = ReportMeta(
        workspace=str(workspace.path),
        as_of=end,
        data_start=first,
        timezone=ctx.timezone,
        backend=workspace.warehouse.backend_name,
        generated_at=workspace.clock.now(),
        version=version("liucun"),
    )
    return write_html(render(meta, kpis, built), out)


def latest_scores(
    workspace: Workspace, as_of: datetime
) -> tuple[pd.DataFrame | None, ModelCard | None]:
    """The most recent scoring run on or before ``as_of`` (its latest model version), and
    that version's card; ``(None, None)`` when nothing was scored."""
    table = workspace.warehouse.table("scores")
    table = table.filter(table.as_of <= as_of)
    run = table.order_by([ibis.desc("as_of"), ibis.desc("scored_at")]).limit(1).to_pandas()
    if run.empty:
        return None, None
    first = run.iloc[0]
    chosen = table.filter(
        (table.as_of == first.as_of.to_pydatetime())
        & (table.model == first.model)
        & (table.model_version == first.model_version)
    ).to_pandas()
    cards = list_models(workspace.models_dir, first.model)
    card = next((c for c in cards if c.version == first.model_version), None)
    return chosen, card


def kpi_cards(kpis: pd.DataFrame) -> list[Kpi]:
    """The header's cards from :func:`headline_kpis`' rows (money in the main currency:
    the reporting currency, else the one with the most orders)."""
    cards: list[Kpi] = []
    money_shown: set[str] = set()
    for row in kpis.itertuples():
        metric, by, value, kind = str(row.metric), str(row.by), row.value, str(row.kind)
        if metric == "LTV/CAC" and by != "all channels":
            continue  # per channel: in the LTV/CAC section
        if kind == "money":
            if metric in money_shown:
                continue  # the first currency is the one with the most orders
            money_shown.add(metric)
        shown = {
            "count": number(value),
            "rate": pct(value),
            "money": number(value, 2),
            "ratio": "—" if value is None or pd.isna(value) else f"{value:.2f}×",
        }[kind]
        label, _, note = metric.partition(" (")
        cards.append(Kpi(label=f"{label} {by}".strip(), value=shown, note=note.rstrip(")")))
    return cards
