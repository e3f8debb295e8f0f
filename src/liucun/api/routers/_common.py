"""What every router shares: the route class, the documented errors, the service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from liucun.api._problems import problem_responses
from liucun.api._routing import LiucunRoute

#: Errors any authenticated route may answer.
AUTH_ERRORS = (401, 403, 429)
#: Errors a write with a JSON body may answer, besides :data:`AUTH_ERRORS`.
WRITE_ERRORS = (400, 409, 413, 415, 422)


def router(prefix: str, tag: str, *, statuses: tuple[int, ...] = AUTH_ERRORS) -> APIRouter:
    """A router whose routes are :class:`LiucunRoute` and document ``statuses``."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        route_class=LiucunRoute,
        responses=problem_responses(*statuses),
    )


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own problem replies."""
    return problem_responses(*statuses)


def service(request: Request) -> Any:
    return request.app.state.service
