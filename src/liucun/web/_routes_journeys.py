"""Journeys: the list, one journey's graph per version, its per-node results (the
report's figure and table from :func:`liucun.journeys.journey_report`), and approve /
activate / pause / resume for admins."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from liucun.core import LiucunError, as_utc
from liucun.journeys import (
    activate_journey,
    approve_journey,
    journey_report,
    journey_status,
    journey_version,
    journey_versions,
    list_journeys,
    pause_journey,
    resume_journey,
)
from liucun.reports import Section, journey_margin_figure, journey_node_table, number
from liucun.state import record_audit
from liucun.web._auth import Approver, Viewer
from liucun.web._cockpit import base_path, cockpit_of, flash, is_htmx, language, render
from liucun.web._graph import journey_svg
from liucun.web._i18n import translate

router = APIRouter()


@router.get("/journeys", response_class=HTMLResponse)
def journeys(request: Request, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    with cockpit.using():
        rows = list_journeys(cockpit.ws)
    return render(request, "journeys.html.j2", page="/journeys", rows=rows)


def _results(cockpit: object, name: str) -> tuple[Section, dict[str, str]]:
    """The report's Journeys part for ``name`` (figure and node table) and the entered
    counts per node for the graph."""
    ws = cockpit.ws  # type: ignore[attr-defined]
    report = journey_report(ws, name, truth="auto", as_of=as_utc(ws.clock.now()))
    sec = Section(f"journey-{name}", name)
    sec.warnings.extend(report.warnings)
    if not report.nodes:
        return sec, {}
    figure = journey_margin_figure(report)
    if figure is not None:
        sec.add_figure(figure, wide=True)
    # one journey on this page: its name in every row says nothing
    sec.add_table(journey_node_table(report).drop(columns="journey"))
    counts = {
        n.node: f"{number(n.entered_by_arm['treatment'])} / {number(n.entered_by_arm['control'])}"
        for n in report.nodes
    }
    return sec, counts


@router.get("/journeys/{name}", response_class=HTMLResponse)
def journey_page(request: Request, name: str, user: Viewer, version: int | None = None) -> Response:
    cockpit = cockpit_of(request)
    ws = cockpit.ws
    try:
        with cockpit.using():
            status = journey_status(ws, name)
            versions = journey_versions(ws, name)
            shown = version or status.latest_version
            spec = journey_version(ws, name, shown)
    except LiucunError as exc:
        return render(request, "error.html.j2", status_code=404, message=str(exc))
    except ValidationError as exc:  # a stored definition this liucun cannot read
        first = " ".join(str(exc).split())[:300]
        message = f"version {version or 'latest'} of journey {name!r} does not parse: {first}"
        return render(request, "error.html.j2", status_code=500, message=message)
    results, counts = cockpit.cached(("journey", name), lambda: _results(cockpit, name))
    graph = journey_svg(spec, counts if shown == status.active_version else None)
    return render(
        request, "journey.html.j2", page="/journeys", status=status, versions=versions,
        shown=shown, spec=spec, graph=graph, results=results, plotly=bool(results.figures),
    )  # fmt: skip


def _transition(request: Request, name: str, user: object, action: str, note: str = "") -> Response:
    cockpit = cockpit_of(request)
    ws = cockpit.ws
    by = user.username  # type: ignore[attr-defined]
    lang = language(request, user)  # type: ignore[arg-type]

    def act() -> str:
        if action == "approve":
            latest = journey_status(ws, name).latest_version
            done = approve_journey(ws, name, by=by, version=latest, note=note or None)
            return translate(lang, "journeys.done.approve", journey=name, version=done.version,
                             by=done.approved_by)  # fmt: skip
        move = {"activate": activate_journey, "pause": pause_journey, "resume": resume_journey}
        st = move[action](ws, name)
        with ws.state.write() as s:  # the library's audit names the OS user; this the login
            record_audit(s, at=as_utc(ws.clock.now()), actor=f"web:{by}",
                         action=f"web.journey.{action}", target=name,
                         details={"version": st.active_version})  # fmt: skip
        return translate(lang, f"journeys.done.{action}", journey=name, version=st.active_version)

    ok = True
    try:
        text = cockpit.run(act)
    except LiucunError as exc:
        ok, text = False, str(exc)
    if is_htmx(request):
        with cockpit.using():
            status = journey_status(ws, name)
        return render(request, "_journey_actions.html.j2", status=status, result=(ok, text))
    flash(request, text, "ok" if ok else "error")
    return RedirectResponse(f"{base_path(request)}/journeys/{quote(name, safe='')}",
                            status_code=303)  # fmt: skip


@router.post("/journeys/{name}/approve", response_class=HTMLResponse)
def approve(
    request: Request, name: str, user: Approver, note: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    return _transition(request, name, user, "approve", note)


@router.post("/journeys/{name}/activate", response_class=HTMLResponse)
def activate(request: Request, name: str, user: Approver) -> Response:
    return _transition(request, name, user, "activate")


@router.post("/journeys/{name}/pause", response_class=HTMLResponse)
def pause(request: Request, name: str, user: Approver) -> Response:
    return _transition(request, name, user, "pause")


@router.post("/journeys/{name}/resume", response_class=HTMLResponse)
def resume(request: Request, name: str, user: Approver) -> Response:
    return _transition(request, name, user, "resume")
