"""The route class of every API router: scope in the OpenAPI document, idempotent
replies stored, admin and privacy calls audited.

- The scope a route needs (its :class:`~liucun.api._auth.Requirement`) is written into
  its operation: ``x-liucun-scope`` and a first line of the description.
- After a write that claimed an ``Idempotency-Key``, the reply is stored (or the claim
  dropped when the route failed): :func:`liucun.api._idempotency.settle`.
- A call to a route that needs ``admin`` or ``privacy`` leaves an audit entry: who (the
  key id and name), what (method and route), the status, on the workspace clock.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from liucun.api._auth import route_requirement
from liucun.api._idempotency import settle
from liucun.api._problems import Problem
from liucun.state import record_audit

#: Calls to routes that need one of these scopes are audited.
AUDITED_SCOPES = ("admin", "privacy")


class LiucunRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` that knows its scope (see the module doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        found = route_requirement(self)
        if found is not None:
            extra = dict(self.openapi_extra or {})
            extra["x-liucun-scope"] = found.scope
            self.openapi_extra = extra
            note = f"Needs an API key with scope `{found.scope}` (or `admin`)."
            if found.write:
                note += " Honours `Idempotency-Key`."
            self.description = f"{note}\n\n{self.description or ''}".strip()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        found = route_requirement(self)  # the dependant is built before this is called
        audited = found is not None and found.scope in AUDITED_SCOPES
        template = self.path

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except BaseException as exc:
                await settle(request, None)
                if audited:
                    await _audit(request, template, _status(exc))
                raise
            await settle(request, response)
            if audited:
                await _audit(request, template, response.status_code)
            return response

        return run


def _status(exc: BaseException) -> int:
    if isinstance(exc, Problem):
        return exc.status
    return int(getattr(exc, "status_code", 500))


async def _audit(request: Request, template: str, status: int) -> None:
    key = getattr(request.state, "api_key", None)
    if key is None:  # refused before the key was known: nobody to hold to account
        return
    service = request.app.state.service
    ws = service.ws

    def write() -> None:
        with ws.state.write() as session:
            record_audit(
                session,
                at=ws.clock.now(),
                actor=f"api key {key.key_id} ({key.name})",
                action=f"api {request.method} {template}",
                target=request.url.path,
                details={"status": status},
            )

    await run_in_threadpool(write)
