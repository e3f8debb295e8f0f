"""Pages that read: the overview, cohorts, the segment and stage explorer, experiments
and loyalty. Charts are the HTML report's sections (``liucun.reports``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from liucun.core import LiucunError, as_utc
from liucun.journeys import list_journeys, list_tasks
from liucun.reports import (
    ReportContext,
    Section,
    cohort_heatmap,
    experiments_section,
    loyalty_section,
    retention_curves,
    rfm_grid,
    stages_flow,
)
from liucun.web._auth import Viewer
from liucun.web._cockpit import Cockpit, cockpit_of, is_htmx, render
from liucun.web._explore import group_sizes, members
from liucun.web._figures import kpi_tiles, report_context
from liucun.web._routes_ops import waiting_alerts

router = APIRouter()

#: Churn risk from which a scored customer counts as at risk on the overview.
AT_RISK = 0.5


def context(cockpit: Cockpit) -> ReportContext | None:
    """The report context of the workspace's data end (cached)."""
    return cockpit.cached(("ctx",), lambda: report_context(cockpit.ws))


def sections(cockpit: Cockpit, ctx: ReportContext, *builders: object) -> list[Section]:
    """The report sections of ``builders`` (cached per builder); a builder that has
    nothing to say (None) is left out."""
    out = []
    for builder in builders:
        name = builder.__name__  # type: ignore[attr-defined]
        sec = cockpit.cached(("section", name, ctx.as_of), lambda b=builder: b(ctx))  # type: ignore[misc]
        if sec is not None:
            out.append(sec)
    return out


def _no_data(request: Request) -> Response:
    return render(request, "nodata.html.j2")


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    ws = cockpit.ws
    targets = ws.settings.targets
    tiles = [] if ctx is None else cockpit.cached(("kpis",), lambda: kpi_tiles(ctx, targets))

    def operations() -> dict[str, object]:
        alerts = waiting_alerts(ws)
        now = as_utc(ws.clock.now())
        tasks = [t for t in list_tasks(ws) if t.status in ("open", "breached")]
        scored = ctx.scores if ctx is not None else None
        return {
            "alerts": {lvl: sum(a.level == lvl for a in alerts) for lvl in (1, 2, 3)},
            "alerts_total": len(alerts),
            "tasks": len(tasks),
            "breached": sum(
                t.status == "breached" or (t.responded_at is None and as_utc(t.sla_due_at) <= now)
                for t in tasks
            ),
            "journeys": sum(j.status == "active" for j in list_journeys(ws)),
            "at_risk": None if scored is None else int((scored.churn_risk >= AT_RISK).sum()),
        }

    ops = cockpit.cached(("ops",), operations)
    return render(
        request,
        "overview.html.j2",
        page="/",
        ctx=ctx,
        tiles=tiles,
        has_targets=any(t.target is not None for t in tiles),
        tolerance=targets.tolerance,
        ops=ops,
        at_risk_level=AT_RISK,
    )


@router.get("/cohorts", response_class=HTMLResponse)
def cohorts(request: Request, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    if ctx is None:
        return _no_data(request)
    shown = sections(cockpit, ctx, cohort_heatmap, retention_curves)
    return render(
        request, "sections.html.j2", page="/cohorts", ctx=ctx, title_key="cohorts.title",
        sections=shown, plotly=True,
    )  # fmt: skip


@router.get("/segments", response_class=HTMLResponse)
def segments(request: Request, user: Viewer, segment: str | None = None,
             stage: str | None = None) -> Response:  # fmt: skip
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    if ctx is None:
        return _no_data(request)
    sizes = cockpit.cached(("sizes", ctx.as_of), lambda: group_sizes(ctx))
    shown = sections(cockpit, ctx, rfm_grid, stages_flow)
    drill = None
    error = None
    kind, name = ("segment", segment) if segment else ("stage", stage) if stage else (None, None)
    if kind and name:
        try:
            drill = cockpit.cached(
                ("members", kind, name, 0), lambda: members(ctx, kind=kind, name=name)
            )
        except LiucunError as exc:
            error = str(exc)
    return render(
        request, "segments.html.j2", page="/segments", ctx=ctx, sizes=sizes, sections=shown,
        drill=drill, error=error, plotly=True,
    )  # fmt: skip


@router.get("/segments/customers", response_class=HTMLResponse)
def segment_customers(
    request: Request, user: Viewer, kind: str, name: str, offset: int = 0
) -> Response:
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    if ctx is None:
        return _no_data(request)
    try:
        drill = cockpit.cached(
            ("members", kind, name, offset),
            lambda: members(ctx, kind=kind, name=name, offset=offset),
        )
    except LiucunError as exc:
        return HTMLResponse(f'<p class="result error">{exc}</p>', status_code=400)
    if not is_htmx(request):
        from fastapi.responses import RedirectResponse

        return RedirectResponse(f"{request.scope.get('root_path', '')}/segments?{kind}={name}",
                                status_code=303)  # fmt: skip
    return render(request, "_members.html.j2", drill=drill)


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    if ctx is None:
        return _no_data(request)
    shown = sections(cockpit, ctx, experiments_section)
    return render(
        request, "sections.html.j2", page="/experiments", ctx=ctx,
        title_key="experiments.title", sections=shown, plotly=True,
    )  # fmt: skip


@router.get("/loyalty", response_class=HTMLResponse)
def loyalty_page(request: Request, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    ctx = context(cockpit)
    if ctx is None:
        return _no_data(request)
    shown = sections(cockpit, ctx, loyalty_section)
    return render(
        request, "sections.html.j2", page="/loyalty", ctx=ctx, title_key="loyalty.title",
        sections=shown, plotly=True, empty_key="loyalty.none",
    )  # fmt: skip
