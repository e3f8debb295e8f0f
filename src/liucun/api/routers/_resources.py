"""What the resource routers (loyalty, journeys, experiments, segments) share: paging
with ``limit`` and an opaque ``cursor``, library errors turned into problems with the
status a client can act on, and library results made JSON-ready.

A page answers ``{"items": [...], "next_cursor": "…" | null}``; ``limit`` is at most
:data:`MAX_LIMIT` (a larger one is a 422 naming ``query.limit``), and a cursor that this
API did not hand out is a 422 naming ``query.cursor``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from liucun.api._auth import Requirement
from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem, sentence

#: The most items one page may hold, and the default page size.
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: The longest name (journey, experiment, program, segment) a path may carry.
MAX_NAME = 200

#: The key of a read: scope ``read``.
ReadKey = Annotated[KeyInfo, Depends(Requirement("read"))]
Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}."),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=400,
        description="`next_cursor` of the previous page; leave it out for the first page.",
    ),
]


class Page(BaseModel):
    """One page of a list."""

    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]]
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null on the last page."
    )


def encode_cursor(value: str | int) -> str:
    """An opaque cursor for ``value`` (an offset or the last key of a page)."""
    raw = f"{'i' if isinstance(value, int) else 's'}:{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[int] | type[str]) -> Any:
    """The value behind ``cursor`` (None for the first page); 422 when it is not one
    this API handed out for this list."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, value = raw.partition(":")
        if kind is int and tag == "i" and value.isdigit():
            return int(value)
        if kind is str and tag == "s" and value:
            return value
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Problem(
        422,
        "The cursor is not one this list handed out; pass the next_cursor of the previous "
        "page unchanged, or leave cursor out to start from the first page.",
        [{"path": "query.cursor", "message": "is not a cursor of this list"}],
    )


def offset_page(items: Sequence[Any], limit: int, cursor: str | None) -> Page:
    """A page of ``items`` (a list whose order never changes, e.g. an append-only
    ledger) from the offset in ``cursor``."""
    start = decode_cursor(cursor, int) or 0
    chunk = [plain(i) for i in items[start : start + limit]]
    end = start + len(chunk)
    return Page(items=chunk, next_cursor=encode_cursor(end) if end < len(items) else None)


def refused(exc: Exception, status: int = 409) -> Problem:
    """A library refusal (too few points, a transition not allowed) as a problem whose
    detail is the library's sentence."""
    return Problem(status, sentence(str(exc)))


def not_found(what: str) -> Problem:
    return Problem(404, sentence(what))


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python: dataclasses and mappings recursively, numpy
    scalars as Python numbers, NaN as None, dates and times in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        value = to_dict() if callable(to_dict) else dataclasses.asdict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is not None and type(value).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if callable(getattr(value, "tolist", None)) and not isinstance(value, str | bytes):
        return plain(value.tolist())  # numpy arrays and scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(table: Any) -> list[dict[str, Any]]:
    """The rows of an Arrow table or pandas frame as JSON-ready dicts."""
    if hasattr(table, "to_pylist"):
        return [plain(r) for r in table.to_pylist()]
    return [plain(r) for r in table.to_dict("records")]
