"""``Idempotency-Key`` on writes: the stored reply is replayed for 24 hours.

A write sent with the header claims ``(key_id, Idempotency-Key)`` in
``idempotency_records`` before the route runs (a row with ``status`` 0: in flight), and
the reply the route returns is stored on it. Then, for the same API key and
``Idempotency-Key``:

- the same method, path and body (byte for byte) within 24 h → the stored reply,
  with ``Idempotent-Replayed: true``; the route does not run again;
- another body, method or path → 422: a key names one request;
- while the first request is still running → 409; retry when it has finished.

Only a reply the route returned (2xx) is stored: when the route fails (an invalid
field, an error) the claim is dropped, so the request can be fixed and sent again with
the same key. A claim left in flight by a crashed process expires after
:data:`STALE_AFTER`. Expired rows are deleted by the service's housekeeping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem
from liucun.state import IdempotencyRecord

#: How long a stored reply is replayed.
REPLAY_FOR = timedelta(hours=24)
#: A claim still in flight after this long belongs to a request that died with its process.
STALE_AFTER = timedelta(seconds=60)
REPLAYED = "Idempotent-Replayed"


class Replay(Exception):
    """Raised by the dependency to answer with a stored reply."""

    def __init__(self, response: Response) -> None:
        super().__init__("replay")
        self.response = response


@dataclass(frozen=True)
class Claim:
    record_id: int
    idem_key: str


def _shown(idem_key: str) -> str:
    return repr(idem_key if len(idem_key) <= 40 else idem_key[:39] + "…")


def claim(
    ws: Any,
    *,
    key_id: str,
    idem_key: str,
    method: str,
    path: str,
    body_hash: str,
) -> Claim | Response:
    """Claim the key for this request, or return the stored reply; raise a 409/422
    :class:`Problem` when the key is in use by another request."""
    now = ws.clock.now()
    try:
        with ws.state.write() as session:
            rec = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.key_id == key_id, IdempotencyRecord.idem_key == idem_key
                )
            )
            if rec is not None and (
                rec.expires_at <= now or (rec.status == 0 and rec.created_at <= now - STALE_AFTER)
            ):
                session.delete(rec)
                session.flush()
                rec = None
            if rec is None:
                rec = IdempotencyRecord(
                    key_id=key_id,
                    idem_key=idem_key,
                    method=method,
                    path=path,
                    body_hash=body_hash,
                    status=0,
                    response="",
                    created_at=now,
                    expires_at=now + REPLAY_FOR,
                )
                session.add(rec)
                session.flush()
                return Claim(rec.id, idem_key)
            if (rec.method, rec.path, rec.body_hash) != (method, path, body_hash):
                same_route = (rec.method, rec.path) == (method, path)
                what = "another body" if same_route else f"{rec.method} {rec.path}"
                raise Problem(
                    422,
                    f"The Idempotency-Key {_shown(idem_key)} was used at "
                    f"{rec.created_at:%Y-%m-%d %H:%M:%S} UTC for {what}; a key names one "
                    "request: use a new key for a new request.",
                    [{"path": "header.Idempotency-Key", "message": "is already used"}],
                    kind="idempotency-key-reused",
                    title="Idempotency key reused",
                )
            if rec.status == 0:
                raise _in_flight(idem_key)
            return Response(
                rec.response.encode(),
                status_code=rec.status,
                media_type="application/json",
                headers={REPLAYED: "true"},
            )
    except IntegrityError:  # PostgreSQL: another request inserted the same key just now
        raise _in_flight(idem_key) from None


def _in_flight(idem_key: str) -> Problem:
    return Problem(
        409,
        f"A request with the Idempotency-Key {_shown(idem_key)} is still being processed; "
        "retry when it has finished to get its reply.",
        kind="idempotency-key-in-use",
        title="Idempotency key in use",
        headers={"Retry-After": "1"},
    )


def finish(ws: Any, record_id: int, status: int, body: bytes) -> None:
    """Store the reply of a claimed request."""
    with ws.state.write() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(status=status, response=body.decode())
        )


def release(ws: Any, record_id: int) -> None:
    """Drop the claim of a request that failed."""
    with ws.state.write() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def purge_expired(ws: Any, now: datetime | None = None) -> int:
    """Delete stored replies past their 24 hours; return how many."""
    at = now or ws.clock.now()
    with ws.state.write() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= at)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def begin(request: Request, key: KeyInfo, idem_key: str) -> None:
    """Claim ``idem_key`` for this request (the route's wrapper stores the reply), or
    raise :class:`Replay` with the stored reply."""
    body = await request.body()
    digest = hashlib.sha256(body).hexdigest()
    ws = request.app.state.service.ws
    path = request.url.path
    got = await run_in_threadpool(
        claim,
        ws,
        key_id=key.key_id,
        idem_key=idem_key,
        method=request.method,
        path=path,
        body_hash=digest,
    )
    if isinstance(got, Response):
        raise Replay(got)
    request.state.idempotency = got


async def settle(request: Request, response: Response | None) -> None:
    """After the route: store its reply (a 2xx), or drop the claim."""
    got: Claim | None = getattr(request.state, "idempotency", None)
    if got is None:
        return
    request.state.idempotency = None
    ws = request.app.state.service.ws
    body = getattr(response, "body", None)
    # a route whose reply shows a secret once stores a reply without it
    body = getattr(request.state, "idempotent_reply", None) or body
    if response is not None and 200 <= response.status_code < 300 and isinstance(body, bytes):
        await run_in_threadpool(finish, ws, got.record_id, response.status_code, body)
    else:
        await run_in_threadpool(release, ws, got.record_id)
