"""Errors as RFC 9457 problem details (``application/problem+json``).

Every 4xx and 5xx reply of the API has the same shape::

    {"type": "urn:liucun:problem:invalid-fields", "title": "Invalid fields", "status": 422,
     "detail": "2 fields of the request are invalid; fix them and send it again.",
     "errors": [{"path": "events[3].ts", "message": "'2024-13-01' is not a date/time; …"}]}

``detail`` is a sentence a client developer can act on; ``errors`` names each bad field
by its path in the body (or ``query.limit``, ``path.user_id``, ``header.…``). A 500
says only that something failed and the id it was logged under — never a traceback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from liucun.core import (
    ConfigError,
    InvalidInput,
    LiucunError,
    NotFound,
    StateError,
    WarehouseBusy,
    WarehouseError,
)
from liucun.ingest import ConflictingRecords, InvalidRecords, RecordProblem, record_problems

log = logging.getLogger("liucun.api")

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:liucun:problem:"

#: Title and type slug by status.
TITLES: dict[int, tuple[str, str]] = {
    400: ("Malformed request", "malformed"),
    401: ("Not authenticated", "unauthenticated"),
    403: ("Scope missing", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    409: ("Conflict", "conflict"),
    413: ("Content too large", "too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Invalid fields", "invalid-fields"),
    429: ("Too many requests", "rate-limited"),
    500: ("Internal error", "internal"),
    503: ("Service unavailable", "unavailable"),
}


class FieldError(BaseModel):
    """One bad field."""

    path: str = Field(description="Where, e.g. events[3].ts or query.limit.")
    message: str = Field(description="What is wrong and how to fix it, as a sentence.")


class ProblemDetail(BaseModel):
    """An error reply (RFC 9457)."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What happened and what to do, as a sentence.")
    errors: list[FieldError] = Field(default_factory=list)


def dumps(content: Any) -> bytes:
    """JSON bytes the way every reply is written (orjson)."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def problem_body(
    status: int,
    detail: str,
    errors: Sequence[RecordProblem | Mapping[str, str]] = (),
    *,
    kind: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    default_title, slug = TITLES.get(status, ("Error", "error"))
    return {
        "type": _TYPE + (kind or slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "errors": [e.to_dict() if isinstance(e, RecordProblem) else dict(e) for e in errors],
    }


def problem_response(
    status: int,
    detail: str,
    errors: Sequence[RecordProblem | Mapping[str, str]] = (),
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status, detail, errors, kind=kind, title=title)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


class Problem(Exception):
    """Raise to answer with a problem: ``Problem(403, "The key … lacks scope read; …")``."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[RecordProblem | Mapping[str, str]] = (),
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.kind = kind
        self.title = title
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return problem_response(
            self.status,
            self.detail,
            self.errors,
            kind=self.kind,
            title=self.title,
            headers=self.headers,
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``statuses``, each a problem+json reply."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        title = TITLES.get(status, ("Error", ""))[0]
        out[status] = {
            "description": title,
            "model": ProblemDetail,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
    return out


# -- exception handlers --------------------------------------------------------------------

_LOC_NAMES = {"query": "query", "path": "path", "header": "header", "cookie": "cookie"}


def validation_response(exc: RequestValidationError) -> Response:
    """400 for a body that is not JSON; otherwise 422 naming every bad field."""
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            return problem_response(400, _json_detail(err), kind="malformed-json")
    problems: list[RecordProblem] = []
    body = [e for e in errors if e["loc"][:1] == ("body",)]
    other = [e for e in errors if e["loc"][:1] != ("body",)]
    if body:
        problems += record_problems(_Errors(body, strip=1))
    for err in other:
        where = _LOC_NAMES.get(str(err["loc"][0]), str(err["loc"][0]))
        problems += record_problems(_Errors([err], strip=1), root=where)
    return invalid_fields(problems)


def invalid_fields(problems: Sequence[RecordProblem], status: int = 422) -> Response:
    n = len(problems)
    fields = "1 field" if n == 1 else f"{n} fields"
    if status == 409:
        detail = (
            f"The request has {fields} in conflict with what was accepted before; nothing "
            "of it was stored."
        )
    else:
        detail = (
            f"The request has {n} invalid field{'s' if n != 1 else ''}; nothing was stored. "
            f"Fix {'it' if n == 1 else 'them'} and send the request again."
        )
    return problem_response(status, detail, problems)


def _json_detail(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    why = str(ctx.get("error") or err.get("msg") or "").strip()
    return (
        f"The body is not valid JSON ({why}); send a JSON object with Content-Type: "
        "application/json."
    )


class _Errors:
    """A stand-in for a ValidationError: the errors of ``errors`` with ``strip`` leading
    location parts removed (``body``, ``query``)."""

    def __init__(self, errors: list[Any], *, strip: int) -> None:
        self._errors = [{**e, "loc": tuple(e["loc"][strip:])} for e in errors]

    def errors(self) -> list[Any]:
        return self._errors


def _status_of(exc: LiucunError) -> int:
    if isinstance(exc, ConflictingRecords):
        return 409
    if isinstance(exc, WarehouseBusy | StateError):
        return 503
    if isinstance(exc, WarehouseError):
        return 503
    if isinstance(exc, InvalidInput | ConfigError):
        return 422
    if isinstance(exc, NotFound | KeyError):
        return 404
    return 422


def sentence(text: str) -> str:
    """``text`` (a library error's message) as one sentence: whitespace folded, a
    capital first letter and a full stop."""
    detail = " ".join(text.split())
    detail = detail[:1].upper() + detail[1:]
    return detail if detail.endswith(".") else detail + "."


def liucun_error_response(exc: LiucunError) -> Response:
    status = _status_of(exc)
    if isinstance(exc, InvalidRecords):
        return invalid_fields(exc.problems, status=status)
    detail = sentence(str(exc))
    headers = {"Retry-After": "5"} if status == 503 else None
    errors = []
    if exc.hint is not None and status == 422:
        errors.append({"path": exc.hint.option, "message": detail})
    return problem_response(status, detail, errors, headers=headers)


def http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        detail = (
            f"There is no route {request.url.path}; the API's routes are listed at /openapi.json."
        )
    elif status == 405:
        allowed = _allowed_methods(request)
        headers = {**(exc.headers or {}), "Allow": allowed}
        detail = (
            f"{request.method} is not allowed on {request.url.path}"
            + (f"; use {allowed}" if allowed else "")
            + "."
        )
        return problem_response(status, detail, headers=headers)
    else:
        detail = str(exc.detail) if exc.detail else TITLES.get(status, ("Error", ""))[0]
        if not detail.endswith("."):
            detail += "."
    return problem_response(status, detail, headers=exc.headers)


def _allowed_methods(request: Request) -> str:
    """Every method of every route at the request's path (Starlette's own ``Allow`` names
    only the first route that matched, not a second route at the same path)."""
    from starlette.routing import compile_path

    from liucun.api._auth import api_routes

    path = request.url.path
    methods = {r.method for r in api_routes(request.app) if compile_path(r.path)[0].match(path)}
    return ", ".join(sorted(methods))


def internal_error_response(request: Request, exc: Exception) -> Response:
    incident = secrets.token_hex(6)
    log.error(
        "internal error %s on %s %s",
        incident,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return problem_response(
        500,
        f"The server failed to handle the request (incident {incident}); it was logged. "
        "Retry later, and report the incident id if it persists.",
    )


def install_handlers(app: FastAPI) -> None:
    """Register the problem+json exception handlers on ``app``."""

    async def _problem(_request: Request, exc: Exception) -> Response:
        return exc.response()  # type: ignore[attr-defined, no-any-return]

    async def _validation(_request: Request, exc: Exception) -> Response:
        return validation_response(exc)  # type: ignore[arg-type]

    async def _liucun(_request: Request, exc: Exception) -> Response:
        return liucun_error_response(exc)  # type: ignore[arg-type]

    async def _http(request: Request, exc: Exception) -> Response:
        return http_error_response(request, exc)  # type: ignore[arg-type]

    async def _internal(request: Request, exc: Exception) -> Response:
        return internal_error_response(request, exc)

    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(LiucunError, _liucun)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _internal)
