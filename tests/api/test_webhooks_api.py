"""``/v1/webhooks`` on a real server, SQLite and PostgreSQL: an admin key creates a
subscription (the secret in the reply once, never in a replay, a list or the stored
idempotent reply), a journey's entries reach a real receiver signed with that secret
(checked by the spec's HMAC), rotate changes the signing secret, disable stops sending,
delete removes it; bad bodies get 409/422 naming the field; other scopes get 403."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from journeys.delivery_receivers import HttpReceiver, http_receiver, standard_webhooks_valid
from journeys.journey_support import events, install_journey, spec
from liucun.journeys import work_once
from liucun.state import AuditEntry, IdempotencyRecord
from state_backends import STATE_BACKENDS

pytestmark = pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)


def _signups(ws, users: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Sign-ups a moment ago (the workspace's clock is the real one here)."""
    time.sleep(0.01)
    at = datetime.now(UTC)
    time.sleep(0.01)
    events(ws, [{"user_id": u, "event_type": "signup", "ts": at} for u in users])


def test_create_deliver_rotate_disable_delete(api_ws, keys, serve_app) -> None:  # type: ignore[no-untyped-def]
    ws = api_ws
    admin = keys.header("admin")
    install_journey(ws, spec(name="welcome", nodes=[{"id": "done", "type": "exit"}]))
    with http_receiver(HttpReceiver(secret=None)) as rec, serve_app() as client:
        body = {"name": "crm", "url": rec.url, "event_types": ["journey_entered"]}
        made = client.post("/v1/webhooks", json=body, headers={**admin, "Idempotency-Key": "k1"})
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert secret.startswith("whsec_") and made.json()["event_types"] == ["journey_entered"]
        replay = client.post("/v1/webhooks", json=body, headers={**admin, "Idempotency-Key": "k1"})
        assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["secret"] is None and replay.json()["id"] == made.json()["id"]
        with ws.state.read() as s:
            stored = list(s.scalars(select(IdempotencyRecord.response)))
        assert stored and all(secret not in r for r in stored)
        listed = client.get("/v1/webhooks", headers=admin)
        assert listed.status_code == 200 and [w["name"] for w in listed.json()] == ["crm"]
        assert secret not in listed.text and "secret" not in listed.json()[0]

        # a journey's entries reach the receiver, signed with the secret of the reply
        _signups(ws, ["a", "b"])
        assert work_once(ws, worker_id="w").partner == {"journey_entered": 2}
        assert sorted(h.json()["data"]["user_id"] for h in rec.hits) == ["a", "b"]
        assert all(standard_webhooks_valid(secret, h.headers, h.body) for h in rec.hits)

        rotated = client.post("/v1/webhooks/crm/rotate", headers=admin)
        assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, secret)
        new_secret = rotated.json()["secret"]
        _signups(ws, ["c"])
        work_once(ws, worker_id="w")
        last = rec.hits[-1]
        assert last.json()["data"]["user_id"] == "c"
        assert standard_webhooks_valid(new_secret, last.headers, last.body)
        assert not standard_webhooks_valid(secret, last.headers, last.body)

        off = client.post("/v1/webhooks/crm/disable", headers=admin)
        assert off.status_code == 200 and off.json()["active"] is False
        _signups(ws, ["d"])
        assert work_once(ws, worker_id="w").partner == {}
        assert len(rec.hits) == 3

        gone = client.delete("/v1/webhooks/crm", headers=admin)
        assert gone.status_code == 200 and gone.json()["name"] == "crm"
        missing = client.get("/v1/webhooks/crm", headers=admin)
        assert missing.status_code == 404 and "webhooks list" in missing.json()["detail"]
    with ws.state.read() as s:
        audited = [
            (a.action, a.target)
            for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if a.action.startswith("webhook.") or (a.target or "").startswith("/v1/webhooks")
        ]
    assert ("webhook.subscription.create", "crm") in audited
    assert ("webhook.subscription.rotate", "crm") in audited
    assert ("webhook.subscription.disable", "crm") in audited
    assert ("webhook.subscription.delete", "crm") in audited


def test_bad_bodies_and_wrong_scopes_get_a_sentence(api_ws, keys, serve_app) -> None:  # type: ignore[no-untyped-def]
    admin = keys.header("admin")
    ok = {"name": "crm", "url": "https://crm.example/hook", "event_types": ["tier_changed"]}
    with serve_app() as client:
        assert client.post("/v1/webhooks", json=ok, headers=admin).status_code == 201
        again = client.post("/v1/webhooks", json=ok, headers=admin)
        assert again.status_code == 409 and "exists already" in again.json()["detail"]
        bad_type = client.post(
            "/v1/webhooks", json={**ok, "name": "b", "event_types": ["points"]}, headers=admin
        )
        assert bad_type.status_code == 422
        assert [e["path"] for e in bad_type.json()["errors"]] == ["event_types[0]"]
        bad_url = client.post(
            "/v1/webhooks", json={**ok, "name": "b", "url": "ftp://x"}, headers=admin
        )
        assert bad_url.status_code == 422 and "http(s) URL" in bad_url.json()["detail"]
        extra = client.post(
            "/v1/webhooks", json={**ok, "name": "b", "secret": "mine"}, headers=admin
        )
        assert extra.status_code == 422
        for scope in ("read", "journeys:write"):
            refused = client.get("/v1/webhooks", headers=keys.header(scope))
            assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        unknown = client.post("/v1/webhooks/nope/disable", headers=admin)
        assert unknown.status_code == 404
