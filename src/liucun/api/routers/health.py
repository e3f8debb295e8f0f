"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from liucun.api._routing import LiucunRoute
from liucun.api._schemas import Health, JsonResponse, Ready, ReadyCheck
from liucun.state import current_revision, head_revision

api = APIRouter(tags=["health"], route_class=LiucunRoute)


@api.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> JsonResponse:
    """200 while the process answers (no I/O)."""
    return JsonResponse(Health())


#: A 503 of /readyz is the same report as its 200, with the failed check (not a problem).
NOT_READY = {503: {"model": Ready, "description": "A check failed; its detail says which."}}


@api.get("/readyz", response_model=Ready, responses=NOT_READY, summary="Readiness")
async def readyz(request: Request) -> JsonResponse:
    """200 when the state database answers at the latest migration, the warehouse
    can be read and the decider holds a snapshot; 503 naming the check that failed
    otherwise."""
    svc = request.app.state.service
    checks = await run_in_threadpool(_checks, svc)
    ok = all(c.ok for c in checks.values())
    body = Ready(status="ready" if ok else "not ready", checks=checks)
    return JsonResponse(body, status_code=200 if ok else 503)


def _checks(svc: object) -> dict[str, ReadyCheck]:
    ws = svc.ws  # type: ignore[attr-defined]
    out: dict[str, ReadyCheck] = {}
    try:
        current, head = current_revision(ws.state), head_revision()
        if current == head:
            out["state"] = ReadyCheck(ok=True, detail=f"{ws.state.backend} at revision {head}")
        else:
            out["state"] = ReadyCheck(
                ok=False,
                detail=f"the state database is at revision {current}, not {head}; restart "
                "the service (opening the workspace upgrades it)",
            )
    except Exception as exc:
        out["state"] = ReadyCheck(ok=False, detail=f"the state database does not answer: {exc}")
    try:
        with svc.warehouse() as wh_ws:  # type: ignore[attr-defined]
            n = int(wh_ws.warehouse.engine_table("loads").count().to_pyarrow().as_py())
        out["warehouse"] = ReadyCheck(ok=True, detail=f"readable ({n:,} loads)")
    except Exception as exc:
        out["warehouse"] = ReadyCheck(
            ok=False, detail=f"the warehouse cannot be read: {' '.join(str(exc).split())}"
        )
    out["decider"] = _decider_check(svc.decider)  # type: ignore[attr-defined]
    return out


def _decider_check(decider: object) -> ReadyCheck:
    at = decider.refreshed_at  # type: ignore[attr-defined]
    error = decider.last_error  # type: ignore[attr-defined]
    if at is None:
        why = f"its first refresh failed: {error}" if error else "its first refresh is running"
        return ReadyCheck(
            ok=False,
            detail=f"the decider has no snapshot yet ({why}); /v1/decide answers "
            "'unknown customer' until it has one",
        )
    detail = f"{decider.customers:,} customers in memory as of {at:%Y-%m-%d %H:%M:%S} UTC"  # type: ignore[attr-defined]
    if error:
        detail += f"; the last refresh failed ({error}), the snapshot stays until one works"
    return ReadyCheck(ok=True, detail=detail)
