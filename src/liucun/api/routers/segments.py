"""``/v1/segments``: customers per RFM segment, 8-class RFM class, lifecycle stage and
tag, and the members of one segment — a JSON page or the whole segment as CSV.

Everything is :mod:`liucun.segments` on the warehouse as of a time (default: the data
end, as `liucun segments` takes it), read under the service's warehouse lock. The CSV
export is computed once, as Arrow, and streamed out in chunks of
:data:`CSV_CHUNK` rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from liucun.api._schemas import JsonResponse
from liucun.api.routers._common import errors, router, service
from liucun.api.routers._resources import (
    MAX_NAME,
    Cursor,
    Limit,
    Page,
    ReadKey,
    decode_cursor,
    encode_cursor,
    not_found,
    records,
)

api = router("/v1/segments", "segments")
#: Rows per chunk of a CSV export.
CSV_CHUNK = 2_000
GROUPINGS = ("rfm", "class", "stage")

AsOf = Annotated[
    datetime | None,
    Query(
        description="Profiles as of this time (ISO 8601, e.g. 2026-10-01T00:00:00Z); "
        "default: the end of the data (midnight after the last event's day)."
    ),
]
Filter = Annotated[
    str | None,
    Query(
        max_length=2_000,
        description='A segment filter, e.g. `stage == "decline" and country == "CN"`.',
    ),
]
By = Annotated[str, Path(max_length=20, description="rfm (11 segments), class (8-class) or stage.")]


class SegmentSize(BaseModel):
    segment: str
    customers: int
    revenue: float | None
    mean_value: float | None
    share: float | None


class SegmentSizes(BaseModel):
    """Customers per segment, largest first (`liucun segments --by BY --format json`)."""

    by: str
    as_of: datetime | None = Field(description="Null when the warehouse has no events.")
    filter: str | None
    segments: list[SegmentSize]


class TagSize(BaseModel):
    tag: str
    value: str
    customers: int


class TagSizes(BaseModel):
    """Buyers per tag value."""

    as_of: datetime | None
    tags: list[TagSize]


def _as_of(ws: Any, given: datetime | None) -> datetime | None:
    from liucun.core import as_utc

    if given is not None:
        if given.tzinfo is None:
            from liucun.api._problems import Problem

            raise Problem(
                422,
                "The as_of time has no time zone; give one, e.g. 2026-10-01T00:00:00Z.",
                [{"path": "query.as_of", "message": "has no time zone"}],
            )
        return as_utc(given)
    return ws.data_end()  # type: ignore[no-any-return]


def _names(by: str) -> tuple[str, ...]:
    from liucun.segments import CLASSES, SEGMENTS, STAGES

    if by not in GROUPINGS:
        raise not_found(
            f"there is no grouping {by!r}; segments are grouped by rfm, class or stage "
            "(GET /v1/segments/tags counts the tags)"
        )
    if by == "rfm":
        return SEGMENTS
    if by == "class":
        return tuple(english for english, _zh in CLASSES.values())
    return STAGES


@api.get(
    "/tags", response_model=TagSizes, responses=errors(422, 503), summary="Buyers per tag value"
)
async def get_tags(request: Request, key: ReadKey, as_of: AsOf = None) -> JsonResponse:
    """Price-sensitive buyers, and buyers per top category and preferred channel
    (:func:`liucun.segments.tag_summary`)."""
    from liucun.segments import tag_summary

    svc = service(request)

    def read() -> dict[str, Any]:
        with svc.warehouse() as ws:
            end = _as_of(ws, as_of)
            if end is None:
                return {"as_of": None, "tags": []}
            rows = records(tag_summary(ws.events(), as_of=end).to_pyarrow())
        return {"as_of": end.isoformat(), "tags": rows}

    return JsonResponse(await run_in_threadpool(read))


@api.get(
    "/{by}",
    response_model=SegmentSizes,
    responses=errors(404, 422, 503),
    summary="Customers per segment",
)
async def get_sizes(
    request: Request, by: By, key: ReadKey, as_of: AsOf = None, filter: Filter = None
) -> JsonResponse:
    """Customers, revenue, mean value and share per RFM segment (`rfm`), 8-class RFM
    class (`class`) or lifecycle stage (`stage`), largest first
    (:func:`liucun.segments.segment_summary`)."""
    from liucun.segments import segment_summary

    _names(by)
    svc = service(request)

    def read() -> dict[str, Any]:
        with svc.warehouse() as ws:
            end = _as_of(ws, as_of)
            rows: list[dict[str, Any]] = []
            if end is not None:
                table = segment_summary(ws.events(), ws.customers(), as_of=end, by=by, where=filter)  # type: ignore[arg-type]
                rows = records(table.to_pyarrow())
        return {
            "by": by,
            "as_of": None if end is None else end.isoformat(),
            "filter": filter,
            "segments": rows,
        }

    return JsonResponse(await run_in_threadpool(read))


MEMBERS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(404, 422, 503),
    200: {
        "description": "A page of members (JSON), or every member as CSV.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
}
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="csv: every member as CSV (also with Accept: text/csv)."),
]


@api.get(
    "/tags/{tag}/{value}/members",
    response_model=Page,
    responses=MEMBERS_RESPONSES,
    summary="The buyers holding one tag value (JSON page or CSV export)",
)
async def get_tag_members(
    request: Request,
    tag: Annotated[str, Path(max_length=40, description="price_sensitive, top_category, …")],
    value: Annotated[str, Path(max_length=MAX_NAME, description="e.g. true, shoes, app.")],
    key: ReadKey,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    format: Format = None,
) -> Response:
    """The buyers whose tag has this value, with all their tags
    (:func:`liucun.segments.customer_tags`), by customer id; paged like the segment
    members, or every one as CSV."""
    from liucun.segments import TAG_COLUMNS, customer_tags

    if tag not in TAG_COLUMNS:
        raise not_found(f"there is no tag {tag!r}; the tags are {', '.join(TAG_COLUMNS)}")

    def members(ws: Any, end: datetime) -> Any:
        table = customer_tags(ws.events(), as_of=end)
        column = table[tag]
        if tag == "price_sensitive":
            return table.filter(column.ifelse("true", "false") == value)
        return table.filter(column.cast("string") == value)

    return await _members_reply(request, members, as_of, limit, cursor, format, f"tag-{tag}")


@api.get(
    "/{by}/{name}/members",
    response_model=Page,
    responses=MEMBERS_RESPONSES,
    summary="The customers of one segment (JSON page or CSV export)",
)
async def get_members(
    request: Request,
    by: By,
    name: Annotated[str, Path(max_length=MAX_NAME, description="The segment, class or stage.")],
    key: ReadKey,
    as_of: AsOf = None,
    filter: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    format: Format = None,
) -> Response:
    """The customer profiles (stage, RFM scores, segment and class, attributes) of the
    segment, by customer id. JSON: a page of `limit` from `cursor`. CSV (`?format=csv`
    or `Accept: text/csv`): every member, streamed; `limit` and `cursor` do not apply."""
    from liucun.segments import SEGMENT_COLUMNS, segment_customers

    names = _names(by)
    if name not in names:
        raise not_found(f"there is no {by} segment {name!r}; they are {', '.join(names)}")

    def members(ws: Any, end: datetime) -> Any:
        table = segment_customers(ws.events(), ws.customers(), as_of=end, by=by, where=filter)  # type: ignore[arg-type]
        return table.filter(table[SEGMENT_COLUMNS[by]] == name)

    return await _members_reply(request, members, as_of, limit, cursor, format, by)


async def _members_reply(
    request: Request,
    members: Callable[[Any, datetime], Any],
    as_of: datetime | None,
    limit: int,
    cursor: str | None,
    format: str | None,
    what: str,
) -> Response:
    """The customers of ``members(ws, as_of)`` (an Ibis table with ``user_id``) by id:
    a JSON page after the cursor's id, or all of them as streamed CSV."""
    csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    after = None if csv else decode_cursor(cursor, str)
    svc = service(request)

    def read() -> Any:
        with svc.warehouse() as ws:
            end = _as_of(ws, as_of)
            if end is None:
                return None
            table = members(ws, end)
            if after is not None:
                table = table.filter(table.user_id > after)
            table = table.order_by("user_id")
            return table.to_pyarrow() if csv else table.limit(limit + 1).to_pyarrow()

    rows = await run_in_threadpool(read)
    if csv:
        return StreamingResponse(
            _csv_chunks(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{what}-members.csv"'},
        )
    items = [] if rows is None else records(rows)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1]["user_id"]) if more else None
    return JsonResponse({"items": items, "next_cursor": next_cursor})


def _csv_chunks(table: Any) -> Iterator[bytes]:
    """``table`` as CSV, :data:`CSV_CHUNK` rows at a time (the header first)."""
    import pyarrow.csv as pacsv

    if table is None:
        yield b"user_id\n"
        return
    for start in range(0, max(table.num_rows, 1), CSV_CHUNK):
        out = io.BytesIO()
        pacsv.write_csv(
            table.slice(start, CSV_CHUNK),
            out,
            write_options=pacsv.WriteOptions(include_header=start == 0),
        )
        yield out.getvalue()
