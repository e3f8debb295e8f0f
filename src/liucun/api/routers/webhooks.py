"""``/v1/webhooks`` (scope admin): partner webhook subscriptions — list, create (the
signing secret is in the reply once), disable, rotate the secret, delete.

A create or rotate sent with an ``Idempotency-Key`` stores its reply *without* the
secret: a replay shows the subscription with ``"secret": null`` (rotate again for a new
one), so no secret rests in ``idempotency_records``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import Requirement, WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem
from liucun.api._schemas import JsonResponse
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.journeys import (
    PARTNER_EVENT_TYPES,
    SubscriptionExists,
    create_subscription,
    delete_subscription,
    disable_subscription,
    get_subscription,
    list_subscriptions,
    rotate_secret,
)

api = router("/v1/webhooks", "webhooks")
AdminKey = Annotated[KeyInfo, Depends(Requirement("admin"))]
AdminWrite = Annotated[KeyInfo, Depends(WriteRequirement("admin"))]
Name = Annotated[str, Path(min_length=1, max_length=200, description="The subscription's name.")]
#: One of :data:`liucun.journeys.PARTNER_EVENT_TYPES` (the OpenAPI enum is that list).
EventType = Literal[PARTNER_EVENT_TYPES]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="A name, e.g. crm.")
    url: str = Field(
        min_length=1, max_length=2000, description="Where events are POSTed (http or https)."
    )
    event_types: list[EventType] = Field(min_length=1, description="The events it wants.")
    risk_threshold: float | None = Field(
        None, gt=0, lt=1, description="risk_crossed: the churn risk crossed upwards (0.5)."
    )


class WebhookPublic(BaseModel):
    """A subscription (never its secret)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    url: str
    event_types: list[str]
    active: bool
    risk_threshold: float | None
    created_at: str
    created_by: str
    disabled_at: str | None
    rotated_at: str | None


class WebhookSecret(WebhookPublic):
    """A subscription with its Standard Webhooks secret (``whsec_…``), shown once; null
    in a replayed reply."""

    secret: str | None


def _actor(key: KeyInfo) -> str:
    return f"api key {key.key_id} ({key.name})"


def _with_secret(request: Request, info: dict[str, Any], secret: str, status: int) -> JsonResponse:
    # the reply kept for an Idempotency-Key replay leaves the secret out
    request.state.idempotent_reply = json.dumps(
        WebhookSecret(**info, secret=None).model_dump(mode="json")
    ).encode()
    return JsonResponse(
        WebhookSecret(**info, secret=secret).model_dump(mode="json"), status_code=status
    )


@api.get("", response_model=list[WebhookPublic], responses=errors(422), summary="List webhooks")
async def get_webhooks(
    request: Request,
    key: AdminKey,
    inactive: Annotated[bool, Query(description="Include disabled subscriptions.")] = True,
) -> JsonResponse:
    """Every partner webhook subscription, oldest first."""
    subs = await run_in_threadpool(
        list_subscriptions, service(request).ws, include_inactive=inactive
    )
    return JsonResponse([WebhookPublic(**s.to_dict()).model_dump(mode="json") for s in subs])


@api.post(
    "",
    status_code=201,
    response_model=WebhookSecret,
    responses=errors(*WRITE_ERRORS),
    summary="Subscribe a URL to events",
)
async def post_webhook(request: Request, body: WebhookIn, key: AdminWrite) -> JsonResponse:
    """Create a subscription; the reply carries its signing secret **once** (stored
    encrypted). Events from now on are POSTed to `url` by the worker, signed the
    Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`)."""
    ws = service(request).ws

    def create() -> tuple[dict[str, Any], str]:
        try:
            new = create_subscription(
                ws,
                name=body.name,
                url=body.url,
                event_types=list(body.event_types),
                risk_threshold=body.risk_threshold,
                created_by=_actor(key),
            )
        except SubscriptionExists as exc:
            raise Problem(409, str(exc)[:1].upper() + str(exc)[1:] + ".") from None
        return new.subscription.to_dict(), new.secret

    info, secret = await run_in_threadpool(create)
    return _with_secret(request, info, secret, 201)


@api.get("/{name}", response_model=WebhookPublic, responses=errors(404, 422), summary="A webhook")
async def get_webhook(request: Request, name: Name, key: AdminKey) -> JsonResponse:
    """One subscription (never its secret)."""
    sub = await run_in_threadpool(get_subscription, service(request).ws, name)
    return JsonResponse(WebhookPublic(**sub.to_dict()).model_dump(mode="json"))


@api.post(
    "/{name}/disable",
    response_model=WebhookPublic,
    responses=errors(404, 409, 422),
    summary="Disable a webhook",
)
async def disable_webhook(request: Request, name: Name, key: AdminWrite) -> JsonResponse:
    """Stop sending to the subscription; its webhooks still waiting are cancelled.
    Disabling a disabled one changes nothing."""
    sub = await run_in_threadpool(disable_subscription, service(request).ws, name, by=_actor(key))
    return JsonResponse(WebhookPublic(**sub.to_dict()).model_dump(mode="json"))


@api.post(
    "/{name}/rotate",
    response_model=WebhookSecret,
    responses=errors(404, 409, 422),
    summary="Rotate a webhook's secret",
)
async def rotate_webhook(request: Request, name: Name, key: AdminWrite) -> JsonResponse:
    """A new signing secret, shown **once**; every webhook sent from now on is signed
    with it."""
    new = await run_in_threadpool(rotate_secret, service(request).ws, name, by=_actor(key))
    return _with_secret(request, new.subscription.to_dict(), new.secret, 200)


@api.delete(
    "/{name}",
    response_model=WebhookPublic,
    responses=errors(404, 409, 422),
    summary="Delete a webhook",
)
async def delete_webhook(request: Request, name: Name, key: AdminWrite) -> JsonResponse:
    """Remove the subscription (its webhooks still waiting are cancelled); the reply is
    what it was."""
    sub = await run_in_threadpool(delete_subscription, service(request).ws, name, by=_actor(key))
    return JsonResponse(WebhookPublic(**sub.to_dict()).model_dump(mode="json"))
