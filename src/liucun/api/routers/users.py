"""``POST /v1/users`` (identify, attributes, aliases) and ``GET /v1/users/{user_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from liucun.api import _customer
from liucun.api._auth import Requirement, WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem
from liucun.api._schemas import CustomerPublic, JsonResponse, UsersAccepted, parse_body
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.api.routers.events import json_body
from liucun.ingest import MAX_ID, UserBatch, accept_users

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
        return UsersAccepted(accepted=accept_users(svc.ws, batch.users, key.key_id))

    return JsonResponse(await run_in_threadpool(accept), status_code=202)


@api.get(
    "/{user_id}",
    response_model=CustomerPublic,
    responses=errors(404, 422, 503),
    summary="A customer's profile",
)
async def get_user(request: Request, user_id: UserId, key: ReadKey) -> JsonResponse:
    """The customer and every alias linked to them, as loaded into the warehouse (an
    event or user posted a moment ago shows once the loader has run)."""
    svc = service(request)

    def read() -> dict[str, object] | None:
        with svc.warehouse() as ws:
            return _customer.customer_view(ws, user_id)

    found = await run_in_threadpool(read)
    if found is None:
        raise Problem(
            404,
            f"No customer has the id {user_id!r}; the warehouse knows users once they are "
            "loaded (POST /v1/users or /v1/events, then the loader's next round).",
        )
    return JsonResponse(CustomerPublic(**found))
