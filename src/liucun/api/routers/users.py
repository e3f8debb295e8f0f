"""``POST /v1/users`` (identify, attributes, aliases) and ``GET /v1/users/{user_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import Requirement, WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._schemas import CustomerPublic, JsonResponse, UsersAccepted, parse_body
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.api.routers.events import json_body
from liucun.ingest import MAX_ID, UserBatch, accept_users
from liucun.journeys import customer_view

api = router("/v1/users", "users")
IngestKey = Annotated[KeyInfo, Depends(WriteRequirement("ingest"))]
ReadKey = Annotated[KeyInfo, Depends(Requirement("read"))]
UserId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID, description="A customer id or any alias of theirs."),
]


@api.post(
    "",
    status_code=202,
    response_model=UsersAccepted,
    responses=errors(*WRITE_ERRORS, 503),
    openapi_extra=json_body("UserBatch"),
    summary="Identify users: attributes and aliases",
)
async def post_users(request: Request, key: IngestKey) -> JsonResponse:
    """Commit user records to the inbox (202); the loader merges each into the stored
    user: fields given replace the stored ones (`null` clears one), fields left out are
    kept, `attributes` merge key by key, and every alias (anonymous or device id,
    e-mail or phone — hashed at once, never stored in clear) is linked to the user.
    """
    svc = service(request)
    body = await request.body()

    def accept() -> UsersAccepted:
        batch = parse_body(UserBatch, body, svc.ws, svc.settings, key="users")
        accepted = accept_users(svc.ws, batch.users, key.key_id)
        svc.accepted(accepted)
        return UsersAccepted(accepted=accepted)

    return JsonResponse(await run_in_threadpool(accept), status_code=202)


@api.get(
    "/{user_id}",
    response_model=CustomerPublic,
    responses=errors(404, 422, 503),
    summary="A customer's 360 profile",
)
async def get_user(request: Request, user_id: UserId, key: ReadKey) -> JsonResponse:
    """The customer — by their id or any alias — as liucun knows them: attributes,
    aliases, tags, lifecycle stage, RFM segment, the latest score (churn risk with its
    reasons, P(alive), CLV), the loyalty account, consents, active journeys, open tasks
    and the last orders and events. An order posted to `/v1/events` shows within a few
    loader rounds: recency, stage, a fresh score and its points. 404 when no user row
    and no event knows the id."""
    svc = service(request)

    def read() -> CustomerPublic:
        with svc.warehouse() as ws:
            view = customer_view(ws, user_id)
        return CustomerPublic(**view.to_dict(), requested_id=user_id)

    return JsonResponse(await run_in_threadpool(read))
