"""Channel adapters: SMTP, Standard Webhooks, HTTP providers (SMS, push, WeChat,
WhatsApp, in-app) and the ``file`` channel for dry runs.

:func:`adapter_for` builds the adapter of a ``[channels.NAME]`` entry; the kind is the
entry's ``kind``, else ``smtp`` for ``email``, ``webhook`` for ``webhook``, ``file`` for
``file`` and ``http`` for the rest.
"""

from __future__ import annotations

from pathlib import Path

from liucun.core import ChannelSettings, ConfigError
from liucun.journeys._channels.base import (
    Adapter,
    OutgoingMessage,
    SendResult,
    excerpt,
    retry_after_seconds,
)
from liucun.journeys._channels.file import FileAdapter
from liucun.journeys._channels.http import HTTP_CHANNELS, HttpAdapter, provider_payload
from liucun.journeys._channels.smtp import SmtpAdapter, message_id
from liucun.journeys._channels.webhook import WebhookAdapter

#: Channels whose messages go to an address the contacts table holds.
ADDRESSED_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "wechat", "whatsapp")


def channel_kind(name: str, settings: ChannelSettings | None) -> str:
    """The adapter kind of ``[channels.NAME]`` (its ``kind`` or the default by name)."""
    if settings is not None and settings.kind:
        return settings.kind
    return {"email": "smtp", "webhook": "webhook", "file": "file"}.get(name, "http")


def dedupes(name: str, settings: ChannelSettings | None) -> bool:
    """Whether the receiver drops a repeated key (``dedupes``; default true for webhook
    and http, false for smtp and file): only then is a message in doubt resent."""
    if settings is not None and settings.dedupes is not None:
        return settings.dedupes
    return channel_kind(name, settings) in ("webhook", "http")


def channel_settings(channels: dict[str, ChannelSettings], name: str) -> ChannelSettings:
    """``[channels.NAME]``; the ``file`` channel works without one; otherwise a sentence
    naming the missing setting."""
    found = channels.get(name)
    if found is not None:
        return found
    if name == "file":
        return ChannelSettings(kind="file")
    example = {
        "email": 'host = "smtp.shop.cn", port = 587, sender = "Shop <news@shop.cn>"',
        "webhook": 'url = "https://hooks.shop.cn/liucun", secret = "whsec_…"',
    }.get(name, 'url = "https://provider.example/v1/messages", api_key = "…"')
    raise ConfigError(
        f"no [channels.{name}] in liucun.toml, so {name} messages cannot be sent; add it "
        f'with {example} (or kind = "file" for a dry run that writes them under the '
        "workspace)"
    )


def adapter_for(name: str, settings: ChannelSettings, workspace: Path) -> Adapter:
    """The adapter of provider ``name`` (ConfigError: a setting it needs is missing)."""
    kind = channel_kind(name, settings)
    if kind == "smtp":
        return SmtpAdapter(name, settings)
    if kind == "webhook":
        return WebhookAdapter(name, settings)
    if kind == "file":
        return FileAdapter(name, settings, workspace)
    return HttpAdapter(name, settings)


__all__ = [
    "ADDRESSED_CHANNELS",
    "HTTP_CHANNELS",
    "Adapter",
    "FileAdapter",
    "HttpAdapter",
    "OutgoingMessage",
    "SendResult",
    "SmtpAdapter",
    "WebhookAdapter",
    "adapter_for",
    "channel_kind",
    "channel_settings",
    "dedupes",
    "excerpt",
    "message_id",
    "provider_payload",
    "retry_after_seconds",
]
