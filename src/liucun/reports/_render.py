"""Sections and their rendering into one self-contained HTML file (Jinja2 + Plotly)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

#: Plotly's chart options: no link to plotly's cloud, no logo (the file must work offline);
#: no toolbar (it covered the titles; drag to zoom and double-click to reset still work);
#: redrawn at the width of its card whenever the window changes.
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}

#: Base margins in pixels; ``automargin`` grows them to fit tick labels, axis titles,
#: legends and colour bars, so nothing is cut at any width.
MARGIN = {"l": 8, "r": 8, "t": 8, "b": 8, "pad": 2, "autoexpand": True}


@dataclass(frozen=True)
class Kpi:
    """One number in the report's header."""

    label: str
    value: str
    note: str = ""


@dataclass
class Section:
    """One part of the report: a title, a sentence that says what it shows, figures and
    tables. A section without data carries ``empty`` (why) instead of charts; ``warnings``
    are sentences a reader must see before trusting its numbers (shown under the lead)."""

    key: str
    title: str
    lead: str = ""
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    empty: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: Headline figures of the section, shown as cards under its lead.
    kpis: list[Kpi] = field(default_factory=list)

    def add_figure(self, fig: go.Figure, *, wide: bool = False) -> None:
        """Add ``fig``, drawn at the width of its card. Its title becomes an HTML caption
        above the chart (it wraps on a phone and no toolbar can cover it); the axes make
        room for their labels; a legend sits in one row above the plot. ``wide`` makes
        the chart take the whole row of a two-column section."""
        title = fig.layout.title.text or ""
        fig.update_layout(
            template="plotly_white",
            title=None,
            autosize=True,
            margin=MARGIN,
            legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        )
        fig.update_xaxes(automargin=True)
        fig.update_yaxes(automargin=True)
        div_id = f"fig-{self.key}-{len(self.figures)}"
        plot = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=PLOTLY_CONFIG,
            div_id=div_id,
            default_width="100%",
        )
        caption = f'<h3 class="chart-title">{html.escape(title)}</h3>' if title else ""
        self.figures.append(
            f'<figure class="figure{" wide" if wide else ""}" data-figure="{div_id}">'
            f"{caption}{plot}</figure>"
        )

    def add_table(self, frame: pd.DataFrame, *, text_last: bool = False) -> None:
        """Add ``frame`` as an HTML table; cells are escaped, missing values show as —.
        ``text_last`` left-aligns the last column (for sentences)."""
        classes = ["data", "text-last"] if text_last else "data"
        self.tables.append(
            frame.to_html(index=False, border=0, classes=classes, na_rep="—", escape=True)
        )


@dataclass(frozen=True)
class ReportMeta:
    """What the report is about: shown under its title."""

    workspace: str
    as_of: datetime
    data_start: datetime | None
    timezone: str
    backend: str
    generated_at: datetime
    version: str


def render(meta: ReportMeta, kpis: Sequence[Kpi], sections: Sequence[Section]) -> str:
    """The report as one HTML document with Plotly's JavaScript embedded."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("liucun.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    return template.render(
        meta=meta, kpis=kpis, sections=sections, plotly_js=jinja2.filters.Markup(get_plotlyjs())
    )


def interval_figure(
    estimate: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    labels: Sequence[str],
    *,
    reference: float,
) -> go.Figure:
    """Point estimates with their intervals, one row per label, and a dotted line at
    ``reference`` (0 for effects, 1 for ratios): a forest plot."""
    est, lo, hi = (np.asarray(x, dtype=float) for x in (estimate, low, high))
    fig = go.Figure(
        go.Scatter(
            x=est,
            y=[wrap(label) for label in labels],
            mode="markers",
            error_x={"type": "data", "symmetric": False, "array": hi - est, "arrayminus": est - lo},
        )
    )
    fig.add_vline(x=reference, line_dash="dot")
    fig.update_layout(height=120 + 36 * len(est))
    return fig


def wrap(label: str, width: int = 24) -> str:
    """``label`` broken into lines of about ``width`` characters at spaces (Plotly's
    ``<br>``), so long axis labels leave the plot room on a phone."""
    lines: list[str] = []
    for word in str(label).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "<br>".join(html.escape(line) for line in lines)


def write_html(text: str, out: Path) -> Path:
    """Write the report atomically (a reader never sees half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def pct(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage, — when unknown."""
    return "—" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def number(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, — when unknown."""
    return "—" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def text(value: object) -> str:
    """Escape a value for use inside a sentence of HTML."""
    return html.escape(str(value))
