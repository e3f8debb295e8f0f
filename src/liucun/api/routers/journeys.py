"""``/v1/journeys``: the journeys applied to the workspace, their versions and per-node
report, and the lifecycle moves the CLI makes (approve, activate, pause, resume).

The rules are :mod:`liucun.journeys`' own: activation needs an approval of the latest
version, pause works on an active journey, resume on a paused one. A move the rules do
not allow is a 409 with the library's sentence; a version that fails the content check
(forbidden phrases, a missing unsubscribe link) is a 422 listing each problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem, sentence
from liucun.api._schemas import JsonResponse
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.api.routers._resources import (
    MAX_NAME,
    Cursor,
    Limit,
    Page,
    ReadKey,
    not_found,
    offset_page,
    plain,
    refused,
)

api = router("/v1/journeys", "journeys")
WriteKey = Annotated[KeyInfo, Depends(WriteRequirement("journeys:write"))]
Name = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME, description="The journey's name (`name:`).")
]


class JourneyPublic(BaseModel):
    """A journey's state: lifecycle status, latest and active version."""

    model_config = ConfigDict(extra="allow")

    name: str
    status: str = Field(description="draft, approved, active, paused or archived.")
    latest_version: int
    active_version: int | None
    latest_approved: bool
    purpose: str
    trigger: str
    updated_at: str


class JourneyDetail(JourneyPublic):
    """A journey with its versions and the definition of one of them."""

    version: int = Field(description="The version whose definition is shown.")
    versions: list[dict[str, Any]] = Field(
        description="Every version, oldest first: state, digest, who applied and approved it."
    )
    definition: dict[str, Any] = Field(description="The journey file's content, as stored.")


class JourneyReportPublic(BaseModel):
    """Per-node results against the control arm (`liucun journeys report --format json`)."""

    model_config = ConfigDict(extra="allow")

    journey: str
    version: int | None
    as_of: str | None
    goal_event: str
    window_days: float
    alpha: float
    units: dict[str, int] = Field(description="Enrolments per arm (treatment, control).")
    nodes: list[dict[str, Any]] = Field(
        description="Per node: entered, sent, suppressed, converted, effects, roi, payback."
    )
    warnings: list[str]


class ApprovalPublic(BaseModel):
    """Who approved which version, when; ``created`` false when it was approved before."""

    journey: str
    version: int
    approved_by: str
    approved_at: str
    note: str | None
    created: bool


class ApproveBody(BaseModel):
    """Who approves the latest version, and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    by: str | None = Field(
        None, min_length=1, max_length=200, description="Who approves (default: the key's name)."
    )
    note: str | None = Field(None, max_length=1000, description="Why, or what was reviewed.")
    version: int | None = Field(
        None, ge=1, description="The version reviewed; refused unless it is the latest."
    )


def _known(ws: Any, name: str) -> None:
    """404 unless journey ``name`` is applied (the library's own refusal is a ConfigError,
    the same kind as a move it does not allow)."""
    from liucun.journeys import list_journeys

    names = [j.name for j in list_journeys(ws)]
    if name not in names:
        import difflib

        near = difflib.get_close_matches(name, names, n=1)
        tip = (
            f" (did you mean {near[0]!r}?)"
            if near
            else (f" (the journeys are {', '.join(names)})" if names else " (none is applied yet)")
        )
        raise not_found(
            f"no journey named {name!r}{tip}; GET /v1/journeys lists them, and `liucun "
            "journeys apply FILE.yaml` adds one"
        )


def _move(request: Request, name: str, call: Callable[[Any], Any]) -> Any:
    """Run a lifecycle move: unknown journey 404, a move not allowed 409, a version that
    fails the content check 422 naming each problem."""
    from liucun.core import ConfigError
    from liucun.journeys import JourneyError

    ws = service(request).ws
    _known(ws, name)
    try:
        return plain(call(ws))
    except JourneyError as exc:
        raise Problem(
            422,
            sentence(exc.source) + " Fix the journey file, apply it, and approve again.",
            [{"path": "journey", "message": p} for p in exc.problems],
        ) from None
    except ConfigError as exc:
        raise refused(exc, 409) from None


@api.get("", response_model=Page, responses=errors(422, 503), summary="Every journey")
async def list_all(
    request: Request, key: ReadKey, limit: Limit = 50, cursor: Cursor = None
) -> JsonResponse:
    """Each journey by name: status, latest and active version, whether the latest is
    approved, purpose and trigger (`liucun journeys list`)."""
    from liucun.journeys import list_journeys

    rows = await run_in_threadpool(list_journeys, service(request).ws)
    return JsonResponse(offset_page(rows, limit, cursor))


@api.get(
    "/{name}",
    response_model=JourneyDetail,
    responses=errors(404, 422, 503),
    summary="A journey: definition and versions",
)
async def get_one(
    request: Request,
    name: Name,
    key: ReadKey,
    version: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="This version (default: active, else latest)."),
    ] = None,
) -> JsonResponse:
    """The journey's state, every version (who applied and approved it) and the
    definition of one version, as `liucun journeys show NAME --format json` prints."""
    from liucun.journeys import journey_status, journey_version, journey_versions

    def read() -> dict[str, Any]:
        ws = service(request).ws
        _known(ws, name)
        status = journey_status(ws, name)
        shown = version or status.active_version or status.latest_version
        if shown > status.latest_version:
            raise not_found(
                f"journey {name!r} has no version {shown}; its versions are 1 to "
                f"{status.latest_version}"
            )
        spec = journey_version(ws, name, shown)
        return plain(
            {
                **status.to_dict(),
                "version": shown,
                "versions": journey_versions(ws, name),
                "definition": spec.model_dump(mode="json"),
            }
        )

    return JsonResponse(await run_in_threadpool(read))


@api.get(
    "/{name}/report",
    response_model=JourneyReportPublic,
    responses=errors(404, 422, 503),
    summary="Per-node results against the control arm",
)
async def get_report(
    request: Request,
    name: Name,
    key: ReadKey,
    alpha: Annotated[
        float, Query(ge=0.001, le=0.5, description="1 − confidence level of the intervals.")
    ] = 0.05,
) -> JsonResponse:
    """Per node: entered by arm, sent, suppressed by reason, converted, incremental
    conversions, revenue and margin with intervals, ROI and payback — the document
    `liucun journeys report NAME --format json` prints."""
    from liucun.core import InvalidInput
    from liucun.journeys._report import journey_report

    svc = service(request)

    def read() -> dict[str, Any]:
        with svc.warehouse() as ws:
            try:
                report = journey_report(ws, name, truth="auto", alpha=alpha)
            except InvalidInput as exc:  # the only one it raises: no such journey
                raise not_found(str(exc)) from None
            return plain(report.to_dict())

    return JsonResponse(await run_in_threadpool(read))


@api.post(
    "/{name}/approve",
    status_code=200,
    response_model=ApprovalPublic,
    responses=errors(404, 503, *WRITE_ERRORS),
    summary="Approve the latest version",
)
async def approve(request: Request, name: Name, body: ApproveBody, key: WriteKey) -> JsonResponse:
    """Record the approval of the latest version (activation needs it) after the
    content check; approving an approved version again changes nothing (`created`
    false)."""
    from liucun.journeys import approve_journey

    by = body.by or f"api key {key.name} ({key.key_id})"
    done = await run_in_threadpool(
        _move,
        request,
        name,
        lambda ws: approve_journey(ws, name, by=by, version=body.version, note=body.note),
    )
    return JsonResponse(done)


def _transition(action: str, doc: str) -> None:
    async def move(request: Request, name: Name, key: WriteKey) -> JsonResponse:
        from liucun import journeys

        fn = getattr(journeys, f"{action}_journey")
        done = await run_in_threadpool(_move, request, name, lambda ws: fn(ws, name))
        return JsonResponse(done)

    move.__name__ = action
    move.__doc__ = doc
    api.post(
        f"/{{name}}/{action}",
        response_model=JourneyPublic,
        responses=errors(404, 503, *WRITE_ERRORS),
        summary=f"{action.capitalize()} a journey",
    )(move)


_transition(
    "activate",
    "Make the latest approved version the one new customers enter (409 without an "
    "approval); `changed` is false when it already was, `migrated` counts the customers "
    "moved to it.",
)
_transition("pause", "Pause an active journey: no one enters, nothing is sent (409 otherwise).")
_transition("resume", "Resume a paused journey on its active version (409 otherwise).")
