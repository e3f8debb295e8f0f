"""The HTTP API: :func:`create_app` (FastAPI, one router per resource), API keys with
scopes, problem+json errors, idempotent writes and the inbox loader (docs/api.md).

>>> app = liucun.api.create_app(liucun.open("shop"))    # doctest: +SKIP
"""

from liucun.api._app import create_app
from liucun.api._auth import (
    Requirement,
    RouteInfo,
    WriteRequirement,
    api_routes,
    route_scope,
)
from liucun.api._keys import (
    SCOPES,
    KeyInfo,
    KeyNotFound,
    NewKey,
    create_key,
    get_key,
    list_keys,
    revoke_key,
)
from liucun.api._problems import Problem, ProblemDetail
from liucun.api._serve import serve

__all__ = [
    "SCOPES",
    "KeyInfo",
    "KeyNotFound",
    "NewKey",
    "Problem",
    "ProblemDetail",
    "Requirement",
    "RouteInfo",
    "WriteRequirement",
    "api_routes",
    "create_app",
    "create_key",
    "get_key",
    "list_keys",
    "revoke_key",
    "route_scope",
    "serve",
]
