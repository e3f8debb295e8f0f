"""Partner webhook subscriptions: who hears of which of liucun's events, where, signed
with which secret (docs/journeys.md, "Partner webhooks").

A subscription names a URL and the event types it wants
(:data:`PARTNER_EVENT_TYPES`); its Standard Webhooks secret (``whsec_`` + base64) is
made here, shown once (:class:`NewSubscription`) and stored only encrypted under the
workspace's contact key (AES-256-GCM, as contacts are). The events themselves are
found and handed to the outbox by :func:`liucun.journeys._partner.notify_partners`; the
outbox rows of a subscription carry the provider ``subscription:<id>``, which the
delivery worker resolves with :func:`subscription_channel` to the URL and secret.

Creating, disabling, deleting and rotating are audited (never the secret). Disabling
or deleting cancels the subscription's rows still waiting in the outbox.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liucun.core import ChannelSettings, ConfigError, Hint, InvalidInput, NotFound, as_utc
from liucun.state import OutboxMessage, WebhookSubscription, current_actor, record_audit

#: The events a partner may subscribe to.
PARTNER_EVENT_TYPES: tuple[str, ...] = (
    "stage_changed",
    "risk_crossed",
    "tier_changed",
    "journey_entered",
    "journey_converted",
    "points_changed",
    "coupon_issued",
)
#: ``risk_crossed`` without a threshold of its own: a churn risk of 0.5 or more.
DEFAULT_RISK_THRESHOLD = 0.5
#: Outbox rows of a subscription have the provider ``subscription:<id>``.
PROVIDER_PREFIX = "subscription:"
_SECRET_BYTES = 24


class SubscriptionNotFound(NotFound, KeyError):
    """No webhook subscription has that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SubscriptionExists(InvalidInput):
    """A webhook subscription of that name exists already."""


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription as shown to operators (never its secret)."""

    id: int
    name: str
    url: str
    event_types: tuple[str, ...]
    active: bool
    risk_threshold: float | None
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
    rotated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: WebhookSubscription) -> Subscription:
        return cls(
            id=row.id,
            name=row.name,
            url=row.url,
            event_types=tuple(json.loads(row.event_types or "[]")),
            active=bool(row.active),
            risk_threshold=row.risk_threshold,
            created_at=as_utc(row.created_at),
            created_by=row.created_by,
            disabled_at=None if row.disabled_at is None else as_utc(row.disabled_at),
            rotated_at=None if row.rotated_at is None else as_utc(row.rotated_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601)."""

        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
            "active": self.active,
            "risk_threshold": self.risk_threshold,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "disabled_at": iso(self.disabled_at),
            "rotated_at": iso(self.rotated_at),
        }


@dataclass(frozen=True)
class NewSubscription:
    """A subscription with its secret, which is shown this once."""

    subscription: Subscription
    secret: str = field(repr=False)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(_SECRET_BYTES)).decode("ascii")


def check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    """The event types, de-duplicated in :data:`PARTNER_EVENT_TYPES` order; an unknown
    or missing one is refused with a sentence."""
    wanted = [str(t).strip() for t in event_types if str(t).strip()]
    if not wanted:
        raise ConfigError(
            f"a webhook subscription needs at least one event type; give one of "
            f"{', '.join(PARTNER_EVENT_TYPES)}",
            hint=Hint(option="event_types", example="stage_changed"),
        )
    unknown = sorted(set(wanted) - set(PARTNER_EVENT_TYPES))
    if unknown:
        raise ConfigError(
            f"{', '.join(map(repr, unknown))} is not an event a partner can subscribe to; "
            f"use {', '.join(PARTNER_EVENT_TYPES)}",
            hint=Hint(option="event_types", example="stage_changed"),
        )
    return tuple(t for t in PARTNER_EVENT_TYPES if t in wanted)


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else a sentence."""
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(text) > 2000:
        raise ConfigError(
            f"{text[:80]!r} is not an http(s) URL a webhook can be sent to; write it in "
            "full, e.g. https://crm.partner.example/hooks/liucun",
            hint=Hint(option="url", example="https://crm.partner.example/hooks/liucun"),
        )
    return text


def _check_name(name: str) -> str:
    text = str(name).strip()
    if not text or len(text) > 200 or not all(c.isalnum() or c in "-_." for c in text):
        raise ConfigError(
            f"{text[:80]!r} is not a subscription name; use 1 to 200 letters, digits, "
            "'-', '_' or '.' (it appears in URLs), e.g. crm",
            hint=Hint(option="name", example="crm"),
        )
    return text


def _check_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0 < float(value) < 1:
        raise ConfigError(
            f"the risk threshold {value} is not a churn risk between 0 and 1 (exclusive)",
            hint=Hint(option="risk_threshold", example="0.7"),
        )
    return float(value)


def _seal(ws: Any, name: str, secret: str) -> str:
    from liucun.journeys._contacts import encrypt

    return encrypt(ws, f"{PROVIDER_PREFIX}{name}", "webhook", secret)


def _open_secret(ws: Any, row: WebhookSubscription) -> str:
    from liucun.journeys._contacts import decrypt

    try:
        return decrypt(ws, f"{PROVIDER_PREFIX}{row.name}", "webhook", row.secret_encrypted)
    except ConfigError:
        raise ConfigError(
            f"the secret of webhook subscription {row.name!r} does not decrypt with this "
            "workspace's key; restore the key it was stored with, or run `liucun webhooks "
            f"rotate {row.name}` and give the partner the new secret"
        ) from None


def _row(s: Session, name: str) -> WebhookSubscription:
    row = s.scalar(select(WebhookSubscription).where(WebhookSubscription.name == name))
    if row is None:
        shown = name if len(name) <= 60 else name[:59] + "…"
        raise SubscriptionNotFound(
            f"there is no webhook subscription {shown!r}; list them with `liucun webhooks list`"
        )
    return row


def create_subscription(
    ws: Any,
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    risk_threshold: float | None = None,
    created_by: str | None = None,
) -> NewSubscription:
    """Subscribe ``url`` to ``event_types`` under ``name``; the returned secret is shown
    once. ``risk_threshold`` is the churn risk ``risk_crossed`` fires at (default
    :data:`DEFAULT_RISK_THRESHOLD`). Events reach it from the moment it is created."""
    name = _check_name(name)
    url = check_url(url)
    types = check_event_types(event_types)
    threshold = _check_threshold(risk_threshold)
    actor = created_by or current_actor()
    secret = new_secret()
    sealed = _seal(ws, name, secret)  # derives the key before the write transaction
    now = ws.clock.now()
    with ws.state.write() as s:
        if s.scalar(select(WebhookSubscription.id).where(WebhookSubscription.name == name)):
            raise SubscriptionExists(
                f"a webhook subscription named {name!r} exists already; choose another name "
                f"or remove it first with `liucun webhooks delete {name}`"
            )
        row = WebhookSubscription(
            name=name,
            url=url,
            secret_encrypted=sealed,
            event_types=json.dumps(list(types)),
            active=True,
            cursor=None,
            created_at=now,
            created_by=actor,
            risk_threshold=threshold,
        )
        s.add(row)
        s.flush()
        record_audit(
            s,
            at=now,
            actor=actor,
            action="webhook.subscription.create",
            target=name,
            details={"url": url, "event_types": list(types), "risk_threshold": threshold},
        )
        return NewSubscription(Subscription.from_row(row), secret)


def list_subscriptions(ws: Any, *, include_inactive: bool = True) -> list[Subscription]:
    """Every subscription, oldest first (disabled ones too unless ``include_inactive``
    is false)."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if not include_inactive:
        query = query.where(WebhookSubscription.active.is_(True))
    with ws.state.read() as s:
        return [Subscription.from_row(r) for r in s.scalars(query)]


def get_subscription(ws: Any, name: str) -> Subscription:
    """The subscription ``name`` (:class:`SubscriptionNotFound` when there is none)."""
    with ws.state.read() as s:
        return Subscription.from_row(_row(s, name))


def _cancel_waiting(s: Session, row: WebhookSubscription, why: str, now: datetime) -> int:
    done = s.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.provider == f"{PROVIDER_PREFIX}{row.id}",
            OutboxMessage.status == "pending",
        )
        .values(status="cancelled", last_error=why, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


def disable_subscription(ws: Any, name: str, *, by: str | None = None) -> Subscription:
    """Stop sending to ``name``: no new events are handed to it and its rows waiting in
    the outbox are cancelled. Disabling a disabled subscription changes nothing."""
    actor = by or current_actor()
    now = ws.clock.now()
    with ws.state.write() as s:
        row = _row(s, name)
        if row.active:
            row.active = False
            row.disabled_at = now
            cancelled = _cancel_waiting(s, row, f"subscription {name} disabled", now)
            record_audit(
                s,
                at=now,
                actor=actor,
                action="webhook.subscription.disable",
                target=name,
                details={"cancelled": cancelled},
            )
            s.flush()
        return Subscription.from_row(row)


def delete_subscription(ws: Any, name: str, *, by: str | None = None) -> Subscription:
    """Remove ``name`` (its rows waiting in the outbox are cancelled; what was sent
    stays in the outbox's history). Returns what it was."""
    actor = by or current_actor()
    now = ws.clock.now()
    with ws.state.write() as s:
        row = _row(s, name)
        gone = Subscription.from_row(row)
        cancelled = _cancel_waiting(s, row, f"subscription {name} deleted", now)
        s.delete(row)
        record_audit(
            s,
            at=now,
            actor=actor,
            action="webhook.subscription.delete",
            target=name,
            details={"cancelled": cancelled},
        )
    return gone


def rotate_secret(ws: Any, name: str, *, by: str | None = None) -> NewSubscription:
    """Give ``name`` a new secret (shown once): every webhook sent from now on, rows
    already waiting in the outbox included, is signed with it."""
    actor = by or current_actor()
    secret = new_secret()
    sealed = _seal(ws, name, secret)
    now = ws.clock.now()
    with ws.state.write() as s:
        row = _row(s, name)
        row.secret_encrypted = sealed
        row.rotated_at = now
        record_audit(
            s, at=now, actor=actor, action="webhook.subscription.rotate", target=name, details=None
        )
        s.flush()
        return NewSubscription(Subscription.from_row(row), secret)


def is_subscription_provider(provider: str | None) -> bool:
    """Whether an outbox row's provider names a subscription (``subscription:<id>``)."""
    return bool(provider) and str(provider).startswith(PROVIDER_PREFIX)


def subscription_channel(
    ws: Any, provider: str, *, session: Session | None = None
) -> ChannelSettings:
    """The channel settings of provider ``subscription:<id>``: a webhook to its URL,
    signed with its secret (decrypted in memory). A disabled or deleted subscription
    is a :class:`ConfigError` naming it (the row fails instead of being sent)."""
    from liucun.journeys._contacts import contact_key

    contact_key(ws)
    memo: dict[str, ChannelSettings] | None = None
    if session is not None:
        memo = session.info.setdefault("liucun_subscription_channels", {})
        if provider in memo:
            return memo[provider]
    raw = provider[len(PROVIDER_PREFIX) :]
    if not raw.isdigit():
        raise ConfigError(f"{provider!r} does not name a webhook subscription")

    def find(s: Session) -> ChannelSettings:
        row = s.get(WebhookSubscription, int(raw))
        if row is None:
            raise ConfigError(
                f"webhook subscription {raw} was deleted; its events are no longer sent"
            )
        if not row.active:
            raise ConfigError(
                f"webhook subscription {row.name!r} is disabled; its events are no longer sent"
            )
        return ChannelSettings(
            kind="webhook", url=row.url, secret=_open_secret(ws, row), dedupes=True
        )

    if session is not None:
        found = find(session)
    else:
        with ws.state.read() as s:
            found = find(s)
    if memo is not None:
        memo[provider] = found
    return found
