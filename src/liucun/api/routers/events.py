"""``POST /v1/events``: events into the inbox, durable before the 202."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import Requirement, WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._schemas import EventsAccepted, InboxStatus, JsonResponse, parse_body
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.ingest import EventBatch, accept_events, inbox_counts

api = router("/v1/events", "events")
IngestKey = Annotated[KeyInfo, Depends(WriteRequirement("ingest"))]
ReadIngestKey = Annotated[KeyInfo, Depends(Requirement("ingest"))]


def json_body(model: str) -> dict[str, object]:
    """``openapi_extra`` for a route that reads its JSON body itself (with the
    workspace's rules as validation context)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


@api.post(
    "",
    status_code=202,
    response_model=EventsAccepted,
    responses=errors(*WRITE_ERRORS, 503),
    openapi_extra=json_body("EventBatch"),
    summary="Send events (one or a batch)",
)
async def post_events(request: Request, key: IngestKey) -> JsonResponse:
    """Validate every event (a bad field is a 422 naming it, e.g. `events[3].ts`, and
    nothing of the request is stored), commit them to the inbox in one transaction, and
    answer 202 with how many were new and how many repeat an accepted event (same
    `event_id` and fields). The loader moves them into the warehouse within
    `[serve] loader_interval_s`. An `event_id` already accepted with other fields is a 409.
    """
    svc = service(request)
    body = await request.body()

    def accept() -> EventsAccepted:
        batch = parse_body(EventBatch, body, svc.ws, svc.settings, key="events")
        done = accept_events(svc.ws, batch.events, key.key_id)
        svc.accepted(done.accepted)
        return EventsAccepted(accepted=done.accepted, duplicates=done.duplicates)

    return JsonResponse(await run_in_threadpool(accept), status_code=202)


@api.get(
    "/inbox",
    response_model=InboxStatus,
    responses=errors(503),
    summary="The inbox's pending and loaded rows",
)
async def get_inbox(request: Request, key: ReadIngestKey) -> JsonResponse:
    """How many accepted rows wait for the loader and how many are in the warehouse."""
    counts = await run_in_threadpool(inbox_counts, service(request).ws)
    return JsonResponse(InboxStatus(**counts))
