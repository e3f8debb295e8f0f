"""Bad input gets the documented 4xx as problem+json with a sentence and the field's
path; nothing of a refused request is stored; a bug is a 500 that leaks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_support import Keys, event

from liucun.ingest import inbox_counts
from liucun.workspace import Workspace


@pytest.fixture
def client(serve_app: Any) -> Iterator[httpx.Client]:
    with serve_app(max_body_bytes=20_000, max_batch=50) as c:
        yield c


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status
    assert body["type"].startswith("urn:liucun:problem:")
    assert body["detail"].endswith(".") and body["detail"][0].isupper()
    return body  # type: ignore[no-any-return]


def _nothing_stored(ws: Workspace) -> None:
    assert inbox_counts(ws) == {"pending": 0, "loaded": 0}


def _post(client: httpx.Client, keys: Keys, content: bytes, **headers: str) -> httpx.Response:
    return client.post(
        "/v1/events",
        content=content,
        headers={**keys.header("ingest"), "Content-Type": "application/json", **headers},
    )


def test_malformed_json_is_400(client: httpx.Client, keys: Keys, api_ws: Workspace) -> None:
    body = _problem(_post(client, keys, b'{"events": [{"user_id": "u1",]}'), 400)
    assert "not valid JSON" in body["detail"]
    assert "line 1 column" in body["detail"]
    assert "empty" in _problem(_post(client, keys, b"  "), 400)["detail"]
    _nothing_stored(api_ws)


def test_wrong_types_name_every_field(client: httpx.Client, keys: Keys, api_ws: Workspace) -> None:
    events = [
        event(0),
        event(1, revenue="a lot"),
        event(2, user_id=42),
        event(3, ts=[2025]),
        event(4, properties="coupon=SPRING"),
    ]
    r = client.post("/v1/events", json={"events": events}, headers=keys.header("ingest"))
    body = _problem(r, 422)
    paths = {e["path"]: e["message"] for e in body["errors"]}
    assert set(paths) == {
        "events[1].revenue",
        "events[2].user_id",
        "events[3].ts",
        "events[4].properties",
    }
    assert "valid number" in paths["events[1].revenue"]
    assert "valid string" in paths["events[2].user_id"]
    assert "ISO 8601" in paths["events[3].ts"]
    assert "JSON object" in paths["events[4].properties"]
    assert body["detail"] == (
        "The request has 4 invalid fields; nothing was stored. Fix them and send the request again."
    )
    _nothing_stored(api_ws)


def test_rules_of_ingest_apply_to_each_event(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    events = [
        event(0, event_type="teleport"),
        event(1, currency="XYZ"),
        event(2, revenue=-5.0),
        event(3, revenue=None),
        event(4, country="China"),
        event(5, user_id=None),
        event(6, ts="2025-06-01 09:30"),
        event(7, ts="1970-01-01T00:00:00Z"),
        event(8, revenue=2e9),
    ]
    r = client.post("/v1/events", json={"events": events}, headers=keys.header("ingest"))
    paths = {e["path"]: e["message"] for e in _problem(r, 422)["errors"]}
    assert "is not a known event type" in paths["events[0].event_type"]
    assert "ISO 4217" in paths["events[1].currency"]
    assert "negative" in paths["events[2]"]
    assert "needs its amount" in paths["events[3]"]
    assert "alpha-2" in paths["events[4].country"]
    assert "neither user_id nor anonymous_id" in paths["events[5]"]
    assert "no UTC offset" in paths["events[6].ts"]
    assert "before 1971" in paths["events[7].ts"]
    assert "maximum order value" in paths["events[8].revenue"]
    _nothing_stored(api_ws)


def test_unknown_fields_are_refused_with_a_suggestion(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    events = [event(0, propertys={"a": 1}), event(1, coupon="SPRING")]
    r = client.post(
        "/v1/events", json={"events": events, "batch": 1}, headers=keys.header("ingest")
    )
    paths = {e["path"]: e["message"] for e in _problem(r, 422)["errors"]}
    assert "did you mean properties?" in paths["events[0].propertys"]
    assert "put your own fields in properties" in paths["events[1].coupon"]
    assert "'batch' is not a field" in paths["batch"]
    _nothing_stored(api_ws)


def test_ten_kilobyte_ids_are_refused_without_echoing_them(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    huge = "u" * 10_000
    r = client.post(
        "/v1/events", json={"events": [event(0, user_id=huge)]}, headers=keys.header("ingest")
    )
    body = _problem(r, 422)
    assert body["errors"][0]["path"] == "events[0].user_id"
    assert "longer than 200 characters" in body["errors"][0]["message"]
    assert huge[:300] not in r.text
    long_path = client.get("/v1/users/" + "u" * 300, headers=keys.header("read"))
    assert _problem(long_path, 422)["errors"][0]["path"] == "path.user_id"
    _nothing_stored(api_ws)


def test_future_timestamps_beyond_the_skew_are_refused(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).isoformat()
    r = client.post(
        "/v1/events", json={"events": [event(0, ts=later)]}, headers=keys.header("ingest")
    )
    message = _problem(r, 422)["errors"][0]["message"]
    assert "more than 300 s in the future" in message
    _nothing_stored(api_ws)
    soon = (now + timedelta(seconds=60)).isoformat()  # a client clock a minute fast
    ok = client.post(
        "/v1/events", json={"events": [event(1, ts=soon)]}, headers=keys.header("ingest")
    )
    assert ok.status_code == 202


def test_oversized_bodies_are_413_by_length_and_while_streaming(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    big = b'{"events": [' + b",".join([b'{"user_id": "u"}'] * 2_000) + b"]}"
    assert len(big) > 20_000
    body = _problem(_post(client, keys, big), 413)
    assert "more than the limit of 20,000 bytes" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(big), 4_096):
            yield big[i : i + 4_096]

    streamed = client.post(
        "/v1/events",
        content=chunks(),
        headers={**keys.header("ingest"), "Content-Type": "application/json"},
    )
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    assert "20,000 bytes" in _problem(streamed, 413)["detail"]
    _nothing_stored(api_ws)


def test_too_many_events_in_one_request_is_413(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    events = [{"user_id": "u", "event_type": "view", "ts": 1_700_000_000 + i} for i in range(51)]
    r = client.post("/v1/events", json={"events": events}, headers=keys.header("ingest"))
    body = _problem(r, 413)
    assert "more than the 50 one request may carry" in body["detail"]
    _nothing_stored(api_ws)


def test_a_body_that_is_not_json_is_415(
    client: httpx.Client, keys: Keys, api_ws: Workspace
) -> None:
    r = client.post(
        "/v1/events", data={"events": "x"}, headers=keys.header("ingest")
    )  # a form post
    assert "application/x-www-form-urlencoded" in _problem(r, 415)["detail"]
    r = _post(client, keys, b"[]", **{"Content-Type": "text/csv"})
    assert "Content-Type: application/json" in _problem(r, 415)["detail"]
    _nothing_stored(api_ws)


def test_shape_errors_of_the_body(client: httpx.Client, keys: Keys, api_ws: Workspace) -> None:
    r = _post(client, keys, b"[]")
    assert "must be a JSON object" in _problem(r, 422)["errors"][0]["message"]
    r = _post(client, keys, b'{"events": []}')
    assert _problem(r, 422)["errors"] == [
        {"path": "events", "message": "is empty; send at least 1 item"}
    ]
    r = _post(client, keys, b"{}")
    assert _problem(r, 422)["errors"][0]["message"] == "events is required; add it"
    _nothing_stored(api_ws)


def test_unknown_route_and_method(client: httpx.Client, keys: Keys) -> None:
    assert "/openapi.json" in _problem(client.get("/v1/nothing"), 404)["detail"]
    body = _problem(client.get("/v1/events", headers=keys.header("ingest")), 405)
    assert body["detail"] == "GET is not allowed on /v1/events; use POST."


def test_a_bug_is_a_500_that_leaks_no_traceback(
    serve_app: Any, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_app() as client:

        def boom() -> None:
            raise RuntimeError("secret detail of a bug in /srv/liucun/x.py")

        client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
        r = client.get("/boom")
    body = _problem(r, 500)
    assert "incident" in body["detail"]
    assert "secret" not in r.text and "Traceback" not in r.text and ".py" not in r.text
    incident = body["detail"].split("incident ")[1].split(")")[0]
    assert any(incident in rec.getMessage() for rec in caplog.records)
