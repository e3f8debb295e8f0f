"""The adapter protocol every channel implements, and the values it takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

from liucun.core import ChannelSettings, as_utc

#: How much of a provider's answer is kept (``last_error``, delivery events).
ANSWER_CHARS = 500


@dataclass(frozen=True)
class OutgoingMessage:
    """One send: the outbox row's stable ``key`` (the provider's idempotency key), the
    customer, the decrypted ``address`` (None for webhook and in-app, which need none;
    held in memory only), the rendered ``payload`` and the instant of the send."""

    key: str
    channel: str
    user_id: str
    payload: dict[str, Any]
    now: datetime
    address: str | None = field(default=None, repr=False)
    journey: str | None = None
    node: str | None = None
    outbox_id: int | None = None


@dataclass(frozen=True)
class SendResult:
    """What a provider said: ``ok`` (taken; ``provider_message_id`` when it gave one),
    ``retry`` (a temporary failure: 429, 5xx, a timeout; ``retry_after`` seconds when it
    asked for a delay) or ``failed`` (permanent: the provider refused the message).
    ``answer`` is the provider's answer (status code and a body excerpt). ``cancelled``
    is an internal action's final refusal (a coupon limit): not retried, not a failure."""

    status: Literal["ok", "retry", "failed", "cancelled"]
    provider_message_id: str | None = None
    answer: str | None = None
    retry_after: float | None = None
    #: The reason code of a ``cancelled`` refusal (``coupon_cap``, ``coupon_budget``…).
    reason: str | None = None


class Adapter(Protocol):
    """A channel adapter: ``send`` never raises for a provider's answer (it returns a
    :class:`SendResult`); ``close`` releases connections."""

    name: str
    settings: ChannelSettings

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def close(self) -> None: ...


def excerpt(text: str, limit: int = ANSWER_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: delta-seconds or an HTTP date.

    >>> from datetime import UTC, datetime
    >>> retry_after_seconds("120", datetime(2026, 1, 1, tzinfo=UTC))
    120.0
    >>> retry_after_seconds("Thu, 01 Jan 2026 00:01:30 GMT", datetime(2026, 1, 1, tzinfo=UTC))
    90.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, (as_utc(when) - as_utc(now)).total_seconds())
