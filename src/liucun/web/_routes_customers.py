"""Customers: search, the 360 page, the at-risk list and "start journey"."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liucun.core import LiucunError
from liucun.web._auth import Operator, Viewer
from liucun.web._cockpit import base_path, cockpit_of, flash, is_htmx, language, render
from liucun.web._customer import customer_360, start_journey, startable_journeys
from liucun.web._i18n import translate
from liucun.web._routes_insight import context

router = APIRouter()

#: Customers on one page of the at-risk list (a phone shows each as a card).
AT_RISK_ROWS = 25
#: Customers a search lists.
SEARCH_ROWS = 25


@router.get("/customers", response_class=HTMLResponse)
def search(request: Request, user: Viewer, q: str = "") -> Response:
    """An exact id opens its 360 page; otherwise the ids that start with ``q``."""
    cockpit = cockpit_of(request)
    q = q.strip()[:200]
    base = base_path(request)
    if not q:
        return RedirectResponse(base + "/at-risk", status_code=303)

    def find() -> list[str]:
        users = cockpit.ws.customers()
        exact = users.filter(users.user_id == q).limit(1).to_pyarrow()
        if exact.num_rows:
            return [q]
        hits = users.filter(users.user_id.startswith(q)).order_by("user_id").limit(SEARCH_ROWS)
        return [str(u) for u in hits.select("user_id").to_pyarrow().column(0).to_pylist()]

    with cockpit.using():
        found = find()
    if found == [q]:
        return RedirectResponse(f"{base}/customers/{quote(q, safe='')}", status_code=303)
    return render(request, "search.html.j2", page="", q=q, found=found)


@router.get("/customers/{user_id}", response_class=HTMLResponse)
def customer_page(request: Request, user_id: str, user: Viewer) -> Response:
    cockpit = cockpit_of(request)
    with cockpit.using():
        view = customer_360(cockpit.ws, user_id)
        journeys = startable_journeys(cockpit.ws) if view is not None else []
    if view is None:
        lang = language(request, user)
        return render(request, "error.html.j2", status_code=404,
                      message=translate(lang, "customer.not_found", id=user_id))  # fmt: skip
    if view.user_id != user_id:  # an alias: show the customer it was merged into
        return RedirectResponse(
            f"{base_path(request)}/customers/{quote(view.user_id, safe='')}", status_code=303
        )
    return render(request, "customer.html.j2", page="", view=view, journeys=journeys)


def _at_risk(cockpit: object, min_risk: float) -> pd.DataFrame | None:
    ctx = context(cockpit)  # type: ignore[arg-type]
    if ctx is None or ctx.scores is None:
        return None
    s = ctx.scores
    s = s[s.churn_risk >= min_risk]
    # the report's order: expected value at risk (churn risk × 365-day CLV)
    s = s.assign(value_at_risk=s.churn_risk * s.clv_365d)
    return s.sort_values(["value_at_risk", "user_id"], ascending=[False, True], kind="stable")


@router.get("/at-risk", response_class=HTMLResponse)
def at_risk(request: Request, user: Viewer, min_risk: float = 0.5, page: int = 1) -> Response:
    cockpit = cockpit_of(request)
    min_risk = min(max(min_risk, 0.0), 1.0)
    table = cockpit.cached(("at_risk", min_risk), lambda: _at_risk(cockpit, min_risk))
    journeys = cockpit.cached(("startable",), lambda: startable_journeys(cockpit.ws))
    total = 0 if table is None else len(table)
    pages = max(1, -(-total // AT_RISK_ROWS))
    page = min(max(page, 1), pages)
    start = (page - 1) * AT_RISK_ROWS
    rows = [] if table is None else table.iloc[start : start + AT_RISK_ROWS].to_dict("records")
    ctx = context(cockpit)
    return render(
        request, "at_risk.html.j2", page="/at-risk", rows=rows, scored=table is not None,
        min_risk=min_risk, journeys=journeys, ctx=ctx, total=total, page_no=page,
        pages=pages, first=start + 1, last=start + len(rows),
    )  # fmt: skip


@router.post("/customers/{user_id}/journeys", response_class=HTMLResponse)
def start(
    request: Request,
    user_id: str,
    user: Operator,
    journey: Annotated[str, Form(max_length=100)],
) -> Response:
    cockpit = cockpit_of(request)
    lang = language(request, user)
    ok = False
    try:
        started = cockpit.run(
            lambda: start_journey(cockpit.ws, user_id, journey, by=f"web:{user.username}")
        )
    except LiucunError as exc:
        text = str(exc)
    else:
        r = started.result
        if r.enrolled:
            ok = True
            text = translate(lang, "start.enrolled", user=user_id, journey=journey,
                             version=started.version, arm=started.arm or "?")  # fmt: skip
            if started.arm == "control":
                text += " " + translate(lang, "start.control")
        elif r.audience_out:
            text = translate(lang, "start.audience", user=user_id, journey=journey,
                             audience=started.audience or "")  # fmt: skip
        else:
            text = translate(lang, "start.reentry", user=user_id, journey=journey,
                             rule=started.reentry)  # fmt: skip
    if is_htmx(request):
        return render(request, "_result.html.j2", ok=ok, text=text)
    flash(request, text, "ok" if ok else "error")
    return RedirectResponse(f"{base_path(request)}/customers/{quote(user_id, safe='')}",
                            status_code=303)  # fmt: skip
