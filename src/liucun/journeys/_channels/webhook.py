"""Webhooks signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``), sent with httpx.

``webhook-id`` is the outbox row's key, so a receiver that drops a repeated id makes a
resend after a crash harmless (the channel deduplicates). The body::

    {"type": "liucun.journey.webhook", "timestamp": "2026-03-01T09:30:00+00:00",
     "data": {"key": …, "user_id": …, "journey": …, "node": …, …the node's body…}}

A partner subscription's event (the payload's ``partner_event``) is sent as
``{"type": "stage_changed", "timestamp": …, "occurred_at": …, "data": {"user_id": …,
"from": …, "to": …, …}}`` (docs/journeys.md, "Partner webhooks").
"""

from __future__ import annotations

import json
from datetime import UTC

import httpx
from standardwebhooks import Webhook

from liucun.core import ChannelSettings, ConfigError
from liucun.journeys._channels._post import post
from liucun.journeys._channels.base import OutgoingMessage, SendResult

EVENT_TYPE = "liucun.journey.webhook"


class WebhookAdapter:
    """``[channels.NAME] kind = "webhook"``: ``url`` (a node's own ``url`` wins) and
    ``secret`` (``whsec_`` + base64, the Standard Webhooks form)."""

    def __init__(self, name: str, settings: ChannelSettings) -> None:
        if not settings.secret:
            raise ConfigError(
                f"[channels.{name}] has no secret; webhooks are signed, so set secret = "
                '"whsec_<base64>" (e.g. from `python -c "import base64,os; '
                "print('whsec_' + base64.b64encode(os.urandom(24)).decode())\"`)"
            )
        try:
            self._signer = Webhook(settings.secret)
        except Exception as exc:  # a secret that is not base64
            raise ConfigError(
                f"[channels.{name}] secret is not a Standard Webhooks secret ({exc}); "
                'write "whsec_" followed by base64'
            ) from None
        self.name = name
        self.settings = settings
        self._client = httpx.Client(timeout=settings.timeout_s)

    def send(self, message: OutgoingMessage) -> SendResult:
        url = message.payload.get("url") or self.settings.url
        if not url:
            return SendResult(
                "failed",
                answer=f"no url: set [channels.{self.name}] url or the webhook node's url",
            )
        event = message.payload.get("partner_event")
        if isinstance(event, dict):  # a partner subscription's event (its own envelope)
            envelope = {
                "type": event.get("type"),
                "timestamp": message.now.astimezone(UTC).isoformat(),
                "occurred_at": event.get("occurred_at"),
                "data": event.get("data"),
            }
        else:
            envelope = {
                "type": EVENT_TYPE,
                "timestamp": message.now.astimezone(UTC).isoformat(),
                "data": webhook_data(message),
            }
        body = json.dumps(
            envelope,
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        signed_at = message.now.astimezone(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message.key,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": self._signer.sign(message.key, signed_at, body),
        }
        return post(self._client, str(url), body.encode("utf-8"), headers, now=message.now)

    def close(self) -> None:
        self._client.close()


def webhook_data(message: OutgoingMessage) -> dict[str, object]:
    """The ``data`` of a webhook: who and where from, then the node's ``body`` (or the
    whole payload when it has none)."""
    payload = message.payload
    body = payload.get("body")
    inner: dict[str, object] = body if isinstance(body, dict) else payload
    data: dict[str, object] = {
        k: v for k, v in inner.items() if k != "url" and not str(k).startswith("_")
    }
    data.update(
        key=message.key, user_id=message.user_id, journey=message.journey, node=message.node
    )
    return data
