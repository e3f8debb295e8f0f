"""Authentication (``Authorization: Bearer lc_…``), scopes and per-key rate limits.

Checking a key costs one HMAC: the key's row is cached for ``[serve] key_cache_s`` (a
key revoked by another process stops working within that time; one revoked through this
service's own ``DELETE /v1/keys/{key_id}`` at once). Each key has a token bucket in
memory (``rate_per_s`` refill, ``burst`` capacity; the key's own or the ``[serve]``
defaults): an empty bucket answers 429 with ``Retry-After``. ``last_used_at`` is kept in
memory and written to state in one transaction every few seconds, never per request.

Each route declares its scope with a dependency: ``Annotated[KeyInfo,
Depends(Requirement("read"))]`` for a read, ``WriteRequirement("ingest")`` for a write
(which also takes an ``Idempotency-Key``); :func:`route_scope` finds it again, for the
OpenAPI document and for the test that every route is protected.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from liucun.api._idempotency import begin
from liucun.api._keys import SCOPES, KeyInfo, key_row, parse_key, secret_matches
from liucun.api._problems import Problem

#: The OpenAPI security scheme (``bearerAuth``); checking is done by :class:`Requirement`.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An API key: `Authorization: Bearer lc_<key_id>.<secret>` (`liucun keys create`).",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="liucun"'}


@dataclass
class _Cached:
    info: KeyInfo | None
    secret_hash: str
    fetched: float


class Authenticator:
    """Checks presented keys against state, with a short cache."""

    def __init__(self, ws: Any, *, cache_s: float) -> None:
        self.ws = ws
        self.cache_s = cache_s
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def forget(self, key_id: str) -> None:
        """Drop the cached row of ``key_id`` (after a revocation here)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def _row(self, key_id: str) -> _Cached:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit.fetched < self.cache_s:
            return hit
        found = key_row(self.ws, key_id)
        entry = _Cached(None, "", now) if found is None else _Cached(found[0], found[1], now)
        with self._lock:
            if len(self._cache) > 10_000:  # made-up ids must not grow it without bound
                self._cache.clear()
            self._cache[key_id] = entry
        return entry

    def check(self, credentials: HTTPAuthorizationCredentials | None) -> KeyInfo:
        """The key presented, or a 401 problem saying what is wrong with it."""
        if credentials is None:
            raise Problem(
                401,
                "The request has no API key; send it as Authorization: Bearer lc_<key_id>."
                "<secret> (create one with `liucun keys create`).",
                headers=_CHALLENGE,
            )
        parsed = parse_key(credentials.credentials.strip())
        if parsed is None:
            raise Problem(
                401,
                "The API key is malformed; a key looks like lc_<key_id>.<secret>, exactly as "
                "`liucun keys create` printed it.",
                headers=_CHALLENGE,
            )
        key_id, secret = parsed
        cached = self._row(key_id)
        if cached.info is None or not secret_matches(self.ws, key_id, secret, cached.secret_hash):
            raise Problem(
                401,
                "The API key is not valid (unknown id or wrong secret); check that it was "
                "copied whole, or create a new one with `liucun keys create`.",
                headers=_CHALLENGE,
            )
        if cached.info.revoked_at is not None:
            raise Problem(
                401,
                f"The API key {key_id} was revoked on {cached.info.revoked_at:%Y-%m-%d %H:%M} "
                "UTC; use another key.",
                headers=_CHALLENGE,
            )
        return cached.info


class RateLimiter:
    """A token bucket per key: ``rate`` tokens per second up to ``burst``."""

    def __init__(self, *, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: KeyInfo) -> float | None:
        """Take one token for ``key``; None when granted, else seconds until one is free."""
        rate = key.rate_per_s or self.rate
        burst = float(key.burst or self.burst)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key.key_id, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key.key_id] = (tokens - 1.0, now)
                return None
            self._buckets[key.key_id] = (tokens, now)
            return (1.0 - tokens) / rate


class Usage:
    """When each key was last used, held in memory until :meth:`drain`."""

    def __init__(self) -> None:
        self._used: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def mark(self, key_id: str, at: datetime) -> None:
        self._used[key_id] = at  # one dict store: atomic under the GIL

    def drain(self) -> dict[str, datetime]:
        with self._lock:
            used, self._used = self._used, {}
        return used


class Requirement:
    """The dependency of a route that needs ``scope``: authenticates, checks the scope,
    takes a rate-limit token, and returns the :class:`KeyInfo`."""

    write = False

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> KeyInfo:
        return authorize(request, credentials, self.scope)


class WriteRequirement(Requirement):
    """:class:`Requirement` for a write: the ``Idempotency-Key`` header is honoured."""

    write = True

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=255,
                description="Any unique string (e.g. a UUID): a repeat of this request "
                "with the same key and body within 24 h gets the stored reply instead of "
                "running again.",
            ),
        ] = None,
    ) -> KeyInfo:
        key = authorize(request, credentials, self.scope)
        if idempotency_key is not None:
            await begin(request, key, idempotency_key)
        return key


def authorize(
    request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> KeyInfo:
    service = request.app.state.service
    key = service.auth.check(credentials)
    request.state.api_key = key
    if not key.allows(scope):
        have = ", ".join(key.scopes)
        raise Problem(
            403,
            f"The API key {key.key_id} has the scopes {have}, not {scope}, which "
            f"{request.method} {request.url.path} needs; use a key with scope {scope}.",
        )
    wait = service.limiter.take(key)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise Problem(
            429,
            f"The API key {key.key_id} sent more than its limit of "
            f"{key.rate_per_s or service.limiter.rate:g} requests per second; retry after "
            f"{seconds} s.",
            headers={"Retry-After": str(seconds)},
        )
    service.usage.mark(key.key_id, service.ws.clock.now())
    request.state.scope = scope
    return key


def route_requirement(route: APIRoute) -> Requirement | None:
    """The :class:`Requirement` among ``route``'s dependencies (None: a public route)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Requirement):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def route_scope(route: APIRoute) -> str | None:
    """The scope ``route`` needs, or None for a public route."""
    found = route_requirement(route)
    return None if found is None else found.scope


@dataclass(frozen=True)
class RouteInfo:
    """One operation of an app: its method, path and the scope it needs (None: public)."""

    method: str
    path: str
    scope: str | None
    route: APIRoute


def api_routes(app: Any) -> list[RouteInfo]:
    """Every API operation of ``app`` (routers included), sorted by path and method."""
    try:  # FastAPI ≥ 0.16x keeps included routers as such; this flattens them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI copies the routes into the app
        pairs = [(r.path, r.methods, r) for r in app.routes if isinstance(r, APIRoute)]
    else:
        pairs = [
            (ctx.path or "", ctx.methods, ctx.original_route)
            for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, APIRoute)
        ]
    out = [
        RouteInfo(method, path, route_scope(route), route)
        for path, methods, route in pairs
        for method in sorted(methods or ())
    ]
    return sorted(out, key=lambda r: (r.path, r.method))
