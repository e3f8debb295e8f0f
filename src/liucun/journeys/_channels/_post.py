"""One JSON POST with httpx, its answer read the way every HTTP channel reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from liucun.journeys._channels.base import SendResult, excerpt, retry_after_seconds

#: Statuses worth another attempt besides 5xx: too many requests, request timeout.
RETRIED = (408, 425, 429)


def post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], *, now: datetime
) -> SendResult:
    """POST ``body`` to ``url``: 2xx is ``ok``; 408/425/429 and 5xx are ``retry``
    (honouring ``Retry-After``: seconds or an HTTP date); other statuses ``failed``; a
    timeout or a refused connection ``retry``. The answer is the status and a body
    excerpt (or the transport error)."""
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return SendResult("retry", answer=f"timed out after {client.timeout.read}s ({exc!r})")
    except httpx.HTTPError as exc:
        return SendResult("retry", answer=excerpt(f"transport error: {exc!r}"))
    answer = excerpt(f"HTTP {response.status_code}: {response.text}")
    code = response.status_code
    if 200 <= code < 300:
        return SendResult("ok", provider_message_id=_message_id(response), answer=answer)
    if code in RETRIED or code >= 500:
        wait = retry_after_seconds(response.headers.get("retry-after"), now)
        return SendResult("retry", answer=answer, retry_after=wait)
    return SendResult("failed", answer=answer)


def _message_id(response: httpx.Response) -> str | None:
    """The provider's id for the message: ``id`` / ``message_id`` / ``msgid`` of a JSON
    answer, else an ``X-Message-Id`` header."""
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for name in ("id", "message_id", "msgid", "sid"):
            value = data.get(name)
            if isinstance(value, str | int) and str(value):
                return str(value)[:300]
    header = response.headers.get("x-message-id")
    return header[:300] if header else None
