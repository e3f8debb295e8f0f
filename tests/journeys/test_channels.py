"""The HTTP provider adapter's documented payloads and headers (SMS, push, WeChat,
WhatsApp, in-app) against a real local receiver, the file channel for dry runs, the
defaults of adapter kinds and deduplication, and Retry-After parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from delivery_receivers import HttpReceiver, add_rows, delivery_workspace, http_receiver
from hypothesis import given
from hypothesis import strategies as st

from liucun.core import ChannelSettings, ConfigError, SimulatedClock
from liucun.journeys import deliver_due, list_outbox, set_contact
from liucun.journeys._channels import (
    OutgoingMessage,
    adapter_for,
    channel_kind,
    channel_settings,
    dedupes,
    message_id,
    retry_after_seconds,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _msg(channel: str, payload: dict, address: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        key=f"j:winback:7:{channel}:1",
        channel=channel,
        user_id="u7",
        payload=payload,
        now=NOW,
        address=address,
        journey="winback",
        node=channel,
    )


CASES = [
    (
        "sms",
        {"body": "您的优惠券已到账"},
        "+8613800138000",
        {"to": "+8613800138000", "text": "您的优惠券已到账"},
    ),
    (
        "push",
        {"subject": "Hi", "body": "Come back", "data": {"deeplink": "shop://home"}},
        "tok-1",
        {
            "token": "tok-1",
            "title": "Hi",
            "body": "Come back",
            "data": {"deeplink": "shop://home", "key": "j:winback:7:push:1", "journey": "winback"},
        },
    ),
    (
        "wechat",
        {"provider_template_id": "TPL1", "data": {"thing1": {"value": "券"}}},
        "oOPENID",
        {"touser": "oOPENID", "template_id": "TPL1", "data": {"thing1": {"value": "券"}}},
    ),
    (
        "whatsapp",
        {"provider_template_id": "winback_offer", "body": "10%", "locale": "zh_CN"},
        "+4915112345678",
        {
            "to": "+4915112345678",
            "type": "template",
            "template": {
                "name": "winback_offer",
                "language": {"code": "zh_CN"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "10%"}]}],
            },
        },
    ),
    (
        "in_app",
        {"subject": "Welcome back", "body": "A gift awaits"},
        None,
        {"user_id": "u7", "title": "Welcome back", "body": "A gift awaits"},
    ),
]


@pytest.mark.parametrize(("channel", "payload", "address", "expected"), CASES)
def test_http_providers_get_the_documented_json_with_bearer_and_idempotency_key(
    channel: str, payload: dict, address: str | None, expected: dict
) -> None:
    with http_receiver(HttpReceiver(secret=None)) as rec:
        settings = ChannelSettings(url=rec.url, api_key="sk-test")
        adapter = adapter_for(channel, settings, Path("."))
        result = adapter.send(_msg(channel, payload, address))
        adapter.close()
    assert (result.status, result.provider_message_id) == ("ok", "m-1")
    (hit,) = rec.hits
    assert hit.json() == expected
    assert hit.headers["authorization"] == "Bearer sk-test"
    assert hit.headers["idempotency-key"] == f"j:winback:7:{channel}:1"
    assert hit.headers["content-type"] == "application/json"


def test_a_wechat_message_without_a_template_id_fails_with_a_sentence() -> None:
    adapter = adapter_for("wechat", ChannelSettings(url="http://127.0.0.1:9/x"), Path("."))
    result = adapter.send(_msg("wechat", {"body": "x"}, "oID"))
    assert result.status == "failed"
    assert result.answer == (
        "a WeChat template message needs provider_template_id on the message node"
    )


def test_sms_and_in_app_through_deliver_due(tmp_path: Path, state_url: str) -> None:
    with http_receiver(HttpReceiver(secret=None)) as rec:
        channels = {"sms": {"url": rec.url, "api_key": "k"}, "in_app": {"url": rec.url}}
        ws = delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)
        set_contact(ws, "u0", "sms", "+86 138 0013 8000")
        add_rows(ws, 2, channel="sms", prefix="sms", payload={"body": "hi"})
        add_rows(ws, 1, channel="in_app", prefix="app", payload={"subject": "t", "body": "b"})
        run = deliver_due(ws, worker_id="w")
        assert (run.sent, run.suppressed) == (2, {"no_address": 1})  # u1 has no phone
        bodies = sorted(json.dumps(h.json(), sort_keys=True) for h in rec.hits)
        assert bodies == sorted(
            [
                json.dumps({"to": "+86 138 0013 8000", "text": "hi"}, sort_keys=True),
                json.dumps({"user_id": "u0", "title": "t", "body": "b"}, sort_keys=True),
            ]
        )
        ws.close()


def test_the_file_channel_writes_json_lines_without_addresses(
    tmp_path: Path, state_url: str
) -> None:
    channels = {"email": {"kind": "file"}, "push": {"kind": "file", "path": "dry/push.jsonl"}}
    ws = delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)
    set_contact(ws, "u0", "email", "secret-person@example.test")
    set_contact(ws, "u0", "push", "tok-0")
    add_rows(ws, 1, channel="email", prefix="mail")
    add_rows(ws, 1, channel="push", prefix="push")
    add_rows(ws, 1, channel="file", prefix="file", payload={"note": "plain file rows"})
    run = deliver_due(ws, worker_id="w")
    assert run.sent == 3
    mail = (ws.path / "outbox" / "email.jsonl").read_text().splitlines()
    push = (ws.path / "dry" / "push.jsonl").read_text().splitlines()
    plain = (ws.path / "outbox" / "file.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in mail + push + plain] == [
        "mail-0",
        "push-0",
        "file-0",
    ]
    first = json.loads(mail[0])
    assert first["payload"] == {"body": "Body 0", "subject": "Hello 0"}
    assert first["has_address"] is True
    assert "secret-person" not in mail[0] and "tok-0" not in push[0]
    assert {r["status"] for r in list_outbox(ws)} == {"sent"}
    ws.close()


def test_kinds_deduplication_and_missing_settings() -> None:
    assert [channel_kind(n, None) for n in ("email", "webhook", "file", "sms", "wechat")] == [
        "smtp",
        "webhook",
        "file",
        "http",
        "http",
    ]
    assert [dedupes(n, None) for n in ("email", "webhook", "file", "push")] == [
        False,
        True,
        False,
        True,
    ]
    assert dedupes("email", ChannelSettings(dedupes=True)) is True
    assert channel_settings({}, "file").kind == "file"
    with pytest.raises(ConfigError, match=r"no \[channels.email\] in liucun.toml.*host = "):
        channel_settings({}, "email")
    with pytest.raises(ConfigError, match=r"\[channels.email\] lacks port, sender"):
        adapter_for("email", ChannelSettings(host="smtp.test"), Path("."))
    with pytest.raises(ConfigError, match=r"\[channels.webhook\] has no secret"):
        adapter_for("webhook", ChannelSettings(url="http://x"), Path("."))
    with pytest.raises(ConfigError, match=r"\[channels.sms\] has no url"):
        adapter_for("sms", ChannelSettings(), Path("."))


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("30", NOW) == 30.0
    assert retry_after_seconds(format_datetime(NOW + timedelta(minutes=2), usegmt=True), NOW) == (
        120.0
    )
    assert retry_after_seconds(format_datetime(NOW - timedelta(minutes=2), usegmt=True), NOW) == 0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


@given(st.text(min_size=1, max_size=60))
def test_message_ids_are_stable_and_well_formed(key: str) -> None:
    mid = message_id(key)
    assert mid == message_id(key)
    assert mid.startswith("<") and mid.endswith("@liucun>")
    assert all(33 <= ord(c) <= 126 for c in mid)
