"""Request bodies: at most ``[serve] max_body_bytes``, and JSON on the API.

A pure ASGI middleware, in front of routing: a body announced larger than the limit
(``Content-Length``) is refused before a byte of it is read; a body streamed without a
length (chunked) is read up to the limit and refused the moment it passes it. Either
way the reply is a 413 problem and the route never runs, so nothing is half-written.
A write to ``/v1/…`` whose body is not JSON gets a 415.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from liucun.api._problems import PROBLEM_JSON, dumps, problem_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and "+json" in media)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` (413) and non-JSON bodies under ``json_prefix`` (415)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, json_prefix: str = "/v1/") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_prefix = json_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _reply(send, 400, "The Content-Length header is not a number of bytes.")
                return
            if int(length) > self.max_bytes:
                await self._too_large(send, f"{int(length):,} bytes")
                return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        has_body = chunked or (length is not None and int(length) > 0)
        path = str(scope.get("path", ""))
        if has_body and path.startswith(self.json_prefix):
            content_type = headers.get("content-type", "")
            if not _is_json(content_type):
                shown = content_type or "none"
                await _reply(
                    send,
                    415,
                    f"The body's Content-Type is {shown}; the API takes JSON: send "
                    "Content-Type: application/json.",
                )
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                await self._too_large(send, "more")
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, send: Send, size: str) -> None:
        await _reply(
            send,
            413,
            f"The body has {size} than the limit of {self.max_bytes:,} bytes "
            "([serve] max_body_bytes); send smaller batches."
            if size == "more"
            else f"The body has {size}, more than the limit of {self.max_bytes:,} bytes "
            "([serve] max_body_bytes); send smaller batches.",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def _receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive


async def _reply(send: Send, status: int, detail: str) -> None:
    payload = dumps(problem_body(status, detail))
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
