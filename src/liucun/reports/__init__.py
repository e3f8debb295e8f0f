"""The HTML report: one self-contained file (Jinja2 + Plotly, works offline)."""

from liucun.reports._analytics import (
    ANALYTICS_SECTIONS,
    ReportContext,
    SectionBuilder,
    cohort_heatmap,
    region_dispersion,
    retention_curves,
    rfm_grid,
    stages_flow,
)
from liucun.reports._build import REPORT_SECTIONS, build_report, kpi_cards, latest_scores
from liucun.reports._experiments import experiments_section
from liucun.reports._journeys import journey_margin_figure, journey_node_table
from liucun.reports._kpis import headline_kpis, overall_ltv_cac
from liucun.reports._loyalty import loyalty_section
from liucun.reports._render import Kpi, Section, number, pct
from liucun.reports._risk import risk_and_value

__all__ = [
    "ANALYTICS_SECTIONS",
    "REPORT_SECTIONS",
    "Kpi",
    "ReportContext",
    "Section",
    "SectionBuilder",
    "build_report",
    "cohort_heatmap",
    "experiments_section",
    "headline_kpis",
    "journey_margin_figure",
    "journey_node_table",
    "kpi_cards",
    "latest_scores",
    "loyalty_section",
    "number",
    "overall_ltv_cac",
    "pct",
    "region_dispersion",
    "retention_curves",
    "rfm_grid",
    "risk_and_value",
    "stages_flow",
]
