"""Reply models of the API (request bodies are the ingest records, :mod:`liucun.ingest`),
the orjson reply class and the reading of a JSON body with the workspace's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from liucun.api._problems import Problem, dumps, invalid_fields
from liucun.core import ServeSettings
from liucun.ingest import record_context, record_problems

M = TypeVar("M", bound=BaseModel)


class JsonResponse(JSONResponse):
    """``application/json`` written by orjson (a JSONResponse, so that FastAPI puts each
    route's ``response_model`` schema in the OpenAPI document)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.__pydantic_serializer__.to_json(content)  # type: ignore[no-any-return]
        return dumps(content)


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventsAccepted(_Public):
    """What ``POST /v1/events`` stored."""

    accepted: int = Field(description="New events, committed to the inbox.")
    duplicates: int = Field(description="Events already accepted (same event_id and fields).")


class UsersAccepted(_Public):
    """What ``POST /v1/users`` stored."""

    accepted: int = Field(description="User records committed to the inbox.")


class InboxStatus(_Public):
    """The inbox: rows waiting for the loader and rows already in the warehouse."""

    pending: int
    loaded: int


class Alias(_Public):
    type: str = Field(description="user_id, anonymous_id, device_id, email_hash, …")
    value: str


class CustomerPublic(BaseModel):
    """A customer as the warehouse knows them (more fields come with the customer-360)."""

    model_config = ConfigDict(extra="allow")

    user_id: str = Field(description="The canonical customer id.")
    requested_id: str = Field(description="The id asked for (an alias resolves to its customer).")
    profile: dict[str, Any] = Field(description="The users columns (country, signup_ts, …).")
    attributes: dict[str, Any] = Field(default_factory=dict)
    aliases: list[Alias] = Field(default_factory=list)
    updated_at: str | None = Field(None, description="When the users row was last loaded.")


class KeyPublic(_Public):
    """An API key (never its secret)."""

    key_id: str
    name: str
    scopes: list[str]
    rate_per_s: float | None
    burst: int | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


class Health(_Public):
    status: Literal["ok"] = "ok"


class ReadyCheck(_Public):
    ok: bool
    detail: str


class Ready(_Public):
    status: Literal["ready", "not ready"]
    checks: dict[str, ReadyCheck]


def parse_body(model: type[M], body: bytes, ws: Any, settings: ServeSettings, *, key: str) -> M:
    """``body`` validated as ``model`` with the workspace's rules (its event types,
    currency, "now"); 400 when it is not JSON, 422 naming every bad field, 413 when it
    holds more than ``max_batch`` records."""
    if not body.strip():
        raise Problem(
            400,
            f'The body is empty; send a JSON object such as {{"{key}": [ … ]}} with '
            "Content-Type: application/json.",
            kind="malformed-json",
        )
    try:
        context = record_context(ws.settings, ws.clock.now())
        # strict: JSON types as documented (a number is not a date, text is not a number,
        # true is not 1); ISO 8601 text still parses as a date or a time
        parsed = model.model_validate_json(body, strict=True, context=context)
    except ValidationError as exc:
        json_errors = [e for e in exc.errors() if e["type"] == "json_invalid"]
        if json_errors:
            why = (json_errors[0].get("ctx") or {}).get("error") or json_errors[0]["msg"]
            raise Problem(
                400,
                f"The body is not valid JSON ({why}); send a JSON object with Content-Type: "
                "application/json.",
                kind="malformed-json",
            ) from None
        problems = record_problems(exc)
        raise _Invalid(problems) from None
    items = getattr(parsed, key)
    if len(items) > settings.max_batch:
        raise Problem(
            413,
            f"The request holds {len(items):,} {key}, more than the {settings.max_batch:,} one "
            "request may carry ([serve] max_batch); split it into smaller batches.",
            [{"path": key, "message": f"has more than {settings.max_batch:,} items"}],
        )
    return parsed


class _Invalid(Problem):
    def __init__(self, problems: Any) -> None:
        super().__init__(422, "invalid fields", problems)
        self._problems = problems

    def response(self) -> Response:
        return invalid_fields(self._problems)
