"""The whole service: the API of :func:`liucun.api.create_app` with the cockpit mounted
at ``/cockpit`` (web sits above api in the layer order, so the two meet here)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from liucun.core import ServeSettings

#: Where the cockpit is mounted in the service.
COCKPIT_PATH = "/cockpit"


def create_service(ws: Any, settings: ServeSettings | None = None, **options: Any) -> FastAPI:
    """The API (``options`` go to :func:`liucun.api.create_app`) and the cockpit at
    ``/cockpit`` of workspace ``ws``: what ``liucun serve`` runs."""
    from liucun.api import create_app
    from liucun.web._app import create_cockpit

    app = create_app(ws, settings, **options)
    # the pages share the service's turn-taking on the warehouse (loader, decider)
    app.mount(COCKPIT_PATH, create_cockpit(ws, access=app.state.service.warehouse))
    return app


def service_from_environment() -> FastAPI:
    """:func:`create_service` of the workspace named by ``LIUCUN_WORKSPACE`` (the
    factory of each process when ``liucun serve --workers N``)."""
    from liucun.api._serve import app_from_environment

    return app_from_environment(create_service)  # type: ignore[no-any-return]
