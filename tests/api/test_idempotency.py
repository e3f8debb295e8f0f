"""``Idempotency-Key``: the stored reply is replayed for 24 h; another body is refused;
a key still in flight is a 409; a failed request stores nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from api_support import Keys, event
from sqlalchemy import func, select

from liucun.api._idempotency import (
    REPLAY_FOR,
    STALE_AFTER,
    Claim,
    claim,
    finish,
    purge_expired,
)
from liucun.core import SimulatedClock
from liucun.ingest import inbox_counts
from liucun.state import IdempotencyRecord
from liucun.workspace import Workspace, open_workspace
from state_backends import STATE_BACKENDS

pytestmark = pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)


@pytest.fixture
def client(serve_app: Any) -> Iterator[httpx.Client]:
    with serve_app() as c:
        yield c


def _post(
    client: httpx.Client, keys: Keys, body: dict[str, Any], idem: str, scope: str = "ingest"
) -> httpx.Response:
    return client.post(
        "/v1/events",
        content=orjson.dumps(body),
        headers={**keys.header(scope), "Content-Type": "application/json", "Idempotency-Key": idem},
    )


def _records(ws: Workspace) -> int:
    with ws.state.read() as session:
        return int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


def test_the_same_request_gets_the_stored_reply(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    body = {"events": [event(i) for i in range(3)]}
    first = _post(client, keys, body, "k-1")
    assert first.status_code == 202
    assert first.json() == {"accepted": 3, "duplicates": 0}
    assert "idempotent-replayed" not in first.headers
    again = _post(client, keys, body, "k-1")
    assert again.status_code == 202
    assert again.json() == {"accepted": 3, "duplicates": 0}  # the first reply, not a re-run
    assert again.headers["idempotent-replayed"] == "true"
    without = client.post("/v1/events", json=body, headers=keys.header("ingest"))
    assert without.json() == {"accepted": 0, "duplicates": 3}  # a re-run: all duplicates
    assert inbox_counts(api_ws)["pending"] == 3


def test_another_body_or_route_under_the_same_key_is_refused(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    assert _post(client, keys, {"events": [event(1)]}, "k-2").status_code == 202
    other = _post(client, keys, {"events": [event(2)]}, "k-2")
    assert other.status_code == 422
    problem = other.json()
    assert problem["type"] == "urn:liucun:problem:idempotency-key-reused"
    assert "for another body; a key names one request" in problem["detail"]
    assert problem["errors"] == [{"path": "header.Idempotency-Key", "message": "is already used"}]
    users = client.post(
        "/v1/users",
        json={"users": [{"user_id": "u-1"}]},
        headers={**keys.header("ingest"), "Idempotency-Key": "k-2"},
    )
    assert users.status_code == 422
    assert "for POST /v1/events" in users.json()["detail"]
    assert inbox_counts(api_ws)["pending"] == 1  # neither refused request stored anything


def test_keys_of_different_api_keys_are_independent(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    assert _post(client, keys, {"events": [event(1)]}, "same").status_code == 202
    r = _post(client, keys, {"events": [event(2)]}, "same", scope="admin")
    assert r.status_code == 202
    assert r.json() == {"accepted": 1, "duplicates": 0}


def test_a_request_in_flight_makes_a_second_one_wait(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    key_id = keys("ingest")[3:].partition(".")[0]
    body = orjson.dumps({"events": [event(1)]})
    got = claim(
        api_ws,
        key_id=key_id,
        idem_key="busy",
        method="POST",
        path="/v1/events",
        body_hash=hashlib.sha256(body).hexdigest(),
    )
    assert isinstance(got, Claim)
    r = client.post(
        "/v1/events",
        content=body,
        headers={
            **keys.header("ingest"),
            "Content-Type": "application/json",
            "Idempotency-Key": "busy",
        },
    )
    assert r.status_code == 409
    assert r.headers["retry-after"] == "1"
    assert "still being processed" in r.json()["detail"]
    assert inbox_counts(api_ws)["pending"] == 0
    finish(api_ws, got.record_id, 202, b'{"accepted": 1, "duplicates": 0}')  # type: ignore[union-attr]
    done = client.post(
        "/v1/events",
        content=body,
        headers={
            **keys.header("ingest"),
            "Content-Type": "application/json",
            "Idempotency-Key": "busy",
        },
    )
    assert done.status_code == 202 and done.headers["idempotent-replayed"] == "true"


def test_a_claim_left_by_a_dead_process_expires(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    key_id = keys("ingest")[3:].partition(".")[0]
    body = orjson.dumps({"events": [event(1)]})
    earlier = SimulatedClock(api_ws.clock.now() - STALE_AFTER - timedelta(seconds=5))
    with open_workspace(api_ws.path, clock=earlier) as past:
        claim(
            past,
            key_id=key_id,
            idem_key="orphan",
            method="POST",
            path="/v1/events",
            body_hash=hashlib.sha256(body).hexdigest(),
        )
    r = client.post(
        "/v1/events",
        content=body,
        headers={
            **keys.header("ingest"),
            "Content-Type": "application/json",
            "Idempotency-Key": "orphan",
        },
    )
    assert r.status_code == 202
    assert r.json() == {"accepted": 1, "duplicates": 0}


def test_replies_are_replayed_for_24_hours_then_forgotten(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    key_id = keys("ingest")[3:].partition(".")[0]
    day_ago = SimulatedClock(api_ws.clock.now() - REPLAY_FOR - timedelta(minutes=1))
    with open_workspace(api_ws.path, clock=day_ago) as past:
        got = claim(
            past, key_id=key_id, idem_key="old", method="POST", path="/v1/events", body_hash="0"
        )
        finish(past, got.record_id, 202, b'{"accepted": 9, "duplicates": 0}')  # type: ignore[union-attr]
    r = _post(client, keys, {"events": [event(1)]}, "old")
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
    assert "idempotent-replayed" not in r.headers
    assert _records(api_ws) == 1
    later = SimulatedClock(api_ws.clock.now() + REPLAY_FOR + timedelta(minutes=1))
    with open_workspace(api_ws.path, clock=later) as future:
        assert purge_expired(future) == 1
    assert _records(api_ws) == 0


def test_a_failed_request_stores_nothing_and_can_be_fixed(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    bad = _post(client, keys, {"events": [event(1, currency="???")]}, "fix-me")
    assert bad.status_code == 422
    assert _records(api_ws) == 0
    good = _post(client, keys, {"events": [event(1)]}, "fix-me")
    assert good.status_code == 202
    assert _records(api_ws) == 1


def test_a_revocation_is_idempotent_too(client: httpx.Client, keys: Keys) -> None:
    victim = keys("read")[3:].partition(".")[0]
    headers = {**keys.header("admin"), "Idempotency-Key": "revoke-1"}
    first = client.delete(f"/v1/keys/{victim}", headers=headers)
    again = client.delete(f"/v1/keys/{victim}", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
