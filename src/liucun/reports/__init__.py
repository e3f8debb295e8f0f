"""The HTML report: one self-contained file (Jinja2 + Plotly, works offline)."""

from liucun.reports._analytics import (
    ANALYTICS_SECTIONS,
    ReportContext,
    SectionBuilder,
    region_dispersion,
)
from liucun.reports._build import REPORT_SECTIONS, build_report, kpi_cards, latest_scores
from liucun.reports._experiments import experiments_section
from liucun.reports._kpis import headline_kpis, overall_ltv_cac
from liucun.reports._loyalty import loyalty_section
from liucun.reports._render import Kpi, Section
from liucun.reports._risk import risk_and_value

__all__ = [
    "ANALYTICS_SECTIONS",
    "REPORT_SECTIONS",
    "Kpi",
    "ReportContext",
    "Section",
    "SectionBuilder",
    "build_report",
    "experiments_section",
    "headline_kpis",
    "kpi_cards",
    "latest_scores",
    "loyalty_section",
    "overall_ltv_cac",
    "region_dispersion",
    "risk_and_value",
]
