"""A generic JSON provider adapter for SMS, push, WeChat template messages, WhatsApp and
in-app messages (``[channels.NAME] kind = "http"``: ``url``, ``api_key``).

Each send is ``POST url`` with ``Authorization: Bearer <api_key>``, ``Idempotency-Key:
<outbox key>`` (so the channel deduplicates: a resend after a crash is dropped by the
provider) and one JSON object per channel (docs/journeys.md "Delivery"):

- sms: ``{"to": phone, "text": body}``
- push: ``{"token": push_token, "title": subject, "body": body, "data": {...}}``
- wechat: ``{"touser": openid, "template_id": …, "data": {name: {"value": …}}}``
- whatsapp: ``{"to": phone, "type": "template", "template": {"name": …, "language":
  {"code": locale}, "components": [...]}}``
- in_app: ``{"user_id": …, "title": subject, "body": body}``

Put a small relay in front of a provider whose API differs; the answer is read the same
way as a webhook's (2xx ok; 408/425/429/5xx retried with Retry-After; other 4xx failed).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from liucun.core import ChannelSettings, ConfigError
from liucun.journeys._channels._post import post
from liucun.journeys._channels.base import OutgoingMessage, SendResult

#: The channels this adapter knows a payload for.
HTTP_CHANNELS: tuple[str, ...] = ("sms", "push", "wechat", "whatsapp", "in_app")


class HttpAdapter:
    """A provider's JSON API (see the module's docstring for the payloads)."""

    def __init__(self, name: str, settings: ChannelSettings) -> None:
        if not settings.url:
            raise ConfigError(
                f"[channels.{name}] has no url; set url = the provider's endpoint "
                '(e.g. "https://sms.example.cn/v1/messages") and api_key'
            )
        self.name = name
        self.settings = settings
        self._client = httpx.Client(timeout=settings.timeout_s)

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            body = provider_payload(message)
        except ValueError as exc:
            return SendResult("failed", answer=str(exc))
        headers = {
            "content-type": "application/json",
            "idempotency-key": message.key,
        }
        if self.settings.api_key:
            headers["authorization"] = f"Bearer {self.settings.api_key}"
        data = json.dumps(body, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
        assert self.settings.url is not None
        return post(self._client, self.settings.url, data, headers, now=message.now)

    def close(self) -> None:
        self._client.close()


def provider_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The JSON body for ``message`` on its channel (ValueError: a channel without one,
    or a WeChat / WhatsApp message without its provider template id)."""
    p = message.payload
    title = p.get("subject") or p.get("title") or ""
    body = p.get("body") or p.get("text") or ""
    channel = message.channel
    if channel == "sms":
        return {"to": message.address, "text": body}
    if channel == "push":
        return {"token": message.address, "title": title, "body": body, "data": _data(message)}
    if channel == "in_app":
        return {"user_id": message.user_id, "title": title, "body": body}
    template_id = p.get("provider_template_id") or p.get("template_id")
    if channel == "wechat":
        if not template_id:
            raise ValueError(
                "a WeChat template message needs provider_template_id on the message node"
            )
        data = p.get("data")
        if not isinstance(data, dict):
            data = {"thing1": {"value": title}, "thing2": {"value": body}} if title else {}
            data = data or {"thing1": {"value": body}}
        out: dict[str, Any] = {"touser": message.address, "template_id": template_id, "data": data}
        if p.get("url"):
            out["url"] = p["url"]
        return out
    if channel == "whatsapp":
        if not template_id:
            raise ValueError(
                "a WhatsApp message needs provider_template_id (an approved template's name)"
            )
        parameters = p.get("parameters") or [body]
        return {
            "to": message.address,
            "type": "template",
            "template": {
                "name": template_id,
                "language": {"code": p.get("locale") or "en"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": str(v)} for v in parameters],
                    }
                ],
            },
        }
    raise ValueError(
        f"channel {channel!r} has no HTTP provider payload; use one of {', '.join(HTTP_CHANNELS)}"
    )


def _data(message: OutgoingMessage) -> dict[str, Any]:
    extra = message.payload.get("data")
    data = dict(extra) if isinstance(extra, dict) else {}
    data.setdefault("key", message.key)
    if message.journey:
        data.setdefault("journey", message.journey)
    return data
