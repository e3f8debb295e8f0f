"""The FastAPI app: :func:`create_app` builds it for one workspace (nothing at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import Response

from liucun.api._idempotency import Replay
from liucun.api._limits import BodyLimit
from liucun.api._problems import ProblemDetail, install_handlers
from liucun.api._schemas import JsonResponse
from liucun.api._service import Service
from liucun.api.routers import (
    decide,
    events,
    experiments,
    health,
    journeys,
    keys,
    loyalty,
    segments,
    users,
    webhooks,
)
from liucun.core import ServeSettings
from liucun.ingest import EventBatch, UserBatch

#: Request bodies read by the routes themselves (validated with the workspace's rules):
#: their schemas are added to the OpenAPI document's components.
BODY_MODELS = (EventBatch, UserBatch)
ROUTERS: tuple[APIRouter, ...] = (health.api, events.api, users.api, keys.api, decide.api)
#: The resource routers (issue 13, item 1): they call the library and render.
ROUTERS += (loyalty.api, journeys.api, experiments.api, segments.api, webhooks.api)


def create_app(
    ws: Any,
    settings: ServeSettings | None = None,
    *,
    run_loader: bool = True,
    close_workspace: bool = False,
) -> FastAPI:
    """The API of workspace ``ws``; ``settings`` default to ``ws.settings.serve``.

    While the app runs (its lifespan), a background thread writes key usage, deletes
    expired idempotent replies and — when ``run_loader`` and this process holds the
    workspace's loader lock — moves the inbox into the warehouse every
    ``loader_interval_s``. ``close_workspace`` closes ``ws`` at shutdown (``liucun
    serve`` opens it for the app).
    """
    conf = settings or ws.settings.serve
    service = Service(ws, conf, run_loader=run_loader)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()
            if close_workspace:
                ws.close()

    from liucun import __version__

    app = FastAPI(
        title="liucun",
        version=__version__,
        summary="The retention engine's HTTP API: events in, customers and decisions out.",
        description="Authenticate with `Authorization: Bearer lc_<key_id>.<secret>`. "
        "Errors are RFC 9457 problem details (`application/problem+json`). "
        "See docs/api.md.",
        default_response_class=JsonResponse,
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN (ARCHITECTURE §3:
        # no CDN links; the service works offline): the document itself is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    install_handlers(app)

    async def _replay(_request: Request, exc: Exception) -> Response:
        return exc.response  # type: ignore[attr-defined, no-any-return]

    app.add_exception_handler(Replay, _replay)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=conf.max_body_bytes)
    if conf.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(conf.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the body models the routes read themselves."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (*BODY_MODELS, ProblemDetail):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in body.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, body)
    app.openapi_schema = schema
    return schema
