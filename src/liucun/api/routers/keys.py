"""``/v1/keys`` (scope admin): list and revoke API keys. Keys are created with
``liucun keys create`` only, so a secret never passes through a stored reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import Requirement, WriteRequirement
from liucun.api._keys import KeyInfo, list_keys, revoke_key
from liucun.api._schemas import JsonResponse, KeyPublic
from liucun.api.routers._common import errors, router, service

api = router("/v1/keys", "keys")
AdminKey = Annotated[KeyInfo, Depends(Requirement("admin"))]
AdminWrite = Annotated[KeyInfo, Depends(WriteRequirement("admin"))]
KeyId = Annotated[str, Path(min_length=1, max_length=40, description="The key's id.")]


@api.get("", response_model=list[KeyPublic], responses=errors(422, 503), summary="List API keys")
async def get_keys(
    request: Request,
    key: AdminKey,
    revoked: Annotated[bool, Query(description="Include revoked keys.")] = True,
) -> JsonResponse:
    """Every API key (never a secret), oldest first."""
    keys = await run_in_threadpool(list_keys, service(request).ws, include_revoked=revoked)
    return JsonResponse([KeyPublic(**k.to_dict()).model_dump(mode="json") for k in keys])


@api.delete(
    "/{key_id}",
    response_model=KeyPublic,
    responses=errors(404, 409, 422, 503),
    summary="Revoke an API key",
)
async def delete_key(request: Request, key_id: KeyId, key: AdminWrite) -> JsonResponse:
    """Revoke the key: this service refuses it at once (other processes within
    `[serve] key_cache_s`). Revoking a revoked key changes nothing."""
    svc = service(request)
    done = await run_in_threadpool(
        revoke_key, svc.ws, key_id, revoked_by=f"api key {key.key_id} ({key.name})"
    )
    svc.auth.forget(key_id)
    return JsonResponse(KeyPublic(**done.to_dict()).model_dump(mode="json"))
