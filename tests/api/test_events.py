"""``POST /v1/events``: durable in the inbox before the 202, idempotent by event_id, and
moved into the warehouse by the app's background loader with nothing lost or doubled."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from api_support import Keys, event

from liucun.ingest import inbox_counts
from liucun.workspace import Workspace
from state_backends import STATE_BACKENDS

pytestmark = pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)


def _post(client: httpx.Client, keys: Keys, events: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/events", json={"events": events}, headers=keys.header("ingest"))


def test_events_are_in_the_inbox_when_the_202_arrives(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    with serve_app() as client:
        r = _post(client, keys, [event(i) for i in range(40)])
        assert r.status_code == 202
        assert r.json() == {"accepted": 40, "duplicates": 0}
        assert inbox_counts(api_ws) == {"pending": 40, "loaded": 0}
        retry = _post(client, keys, [event(i) for i in range(30, 45)])
        assert retry.json() == {"accepted": 5, "duplicates": 10}
        one = _post(client, keys, [{"anonymous_id": "a-1", "event_type": "view", "ts": 1.7e9}])
        assert one.json() == {"accepted": 1, "duplicates": 0}
        status = client.get("/v1/events/inbox", headers=keys.header("ingest")).json()
        assert status == {"pending": 46, "loaded": 0}


def test_an_event_id_reused_with_other_fields_is_409_and_nothing_is_stored(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    with serve_app() as client:
        assert _post(client, keys, [event(1)]).status_code == 202
        r = _post(client, keys, [event(2), event(1, revenue=1.0)])
        assert r.status_code == 409
        assert r.json()["errors"] == [
            {
                "path": "events[1].event_id",
                "message": "'e-1' was already accepted with different fields; give every "
                "event its own id (a retry must repeat the event exactly)",
            }
        ]
        within = _post(client, keys, [event(3), event(3, channel="web")])
        assert within.status_code == 409
        assert "already used by events[0] of this request" in within.json()["errors"][0]["message"]
        assert inbox_counts(api_ws) == {"pending": 1, "loaded": 0}  # e-2, e-3 not stored


def test_custom_event_types_of_the_workspace_are_accepted(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    api_ws.settings.ingest.custom_event_types.append("wishlist")
    with serve_app() as client:
        r = _post(client, keys, [{"user_id": "u", "event_type": "Wishlist", "ts": 1.7e9}])
        assert r.status_code == 202


def test_the_loader_moves_accepted_events_into_the_warehouse_once(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    accepted = 0
    with serve_app(loader=True, loader_interval_s=0.2) as client:
        for start in (0, 150, 100):  # the last batch half repeats the second
            r = _post(client, keys, [event(i) for i in range(start, start + 100)])
            accepted += r.json()["accepted"]
        assert accepted == 250
        deadline = time.monotonic() + 30
        while inbox_counts(api_ws)["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert inbox_counts(api_ws) == {"pending": 0, "loaded": 250}
        service = client.app.state.service  # type: ignore[attr-defined]
        assert service.is_loader
    events = api_ws.warehouse.engine_table("events")
    assert int(events.count().to_pyarrow().as_py()) == accepted
    assert int(events.event_id.nunique().to_pyarrow().as_py()) == accepted
    loads = api_ws.table("loads").to_pyarrow().to_pylist()
    assert sum(row["accepted"] for row in loads) == accepted
    assert all(row["quarantined"] == 0 for row in loads)
    assert all(s.startswith("api inbox ") for row in loads for s in json.loads(row["sources"]))
