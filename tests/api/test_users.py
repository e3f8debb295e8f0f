"""``POST /v1/users`` (identify, attributes, aliases) and ``GET /v1/users/{id}``."""

from __future__ import annotations

from typing import Any

from api_support import Keys, event

from liucun.workspace import Workspace


def test_identify_merges_fields_and_links_aliases(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    ingest, read = keys.header("ingest"), keys.header("read")
    with serve_app() as client:
        first = {
            "user_id": "u-1",
            "country": "cn",
            "customer_type": "b2c",
            "signup_ts": "2025-01-05T10:00:00+08:00",
            "attributes": {"vip": True, "source": "ad"},
            "aliases": {"anonymous_id": ["a-1", "a-2"], "email": "  Ann@Example.COM "},
        }
        r = client.post("/v1/users", json={"users": [first]}, headers=ingest)
        assert r.status_code == 202 and r.json() == {"accepted": 1}
        anon = event(1, user_id=None, anonymous_id="a-2", event_type="view", revenue=None)
        client.post("/v1/events", json={"events": [anon]}, headers=ingest)
        assert client.get("/v1/users/u-1", headers=read).status_code == 404  # not loaded yet
        client.app.state.service.load_once()  # type: ignore[attr-defined]
        later = {
            "user_id": "u-1",
            "language": "zh-CN",
            "customer_type": None,
            "attributes": {"source": None, "tier": "gold"},
        }
        client.post("/v1/users", json={"users": [later]}, headers=ingest)
        client.app.state.service.load_once()  # type: ignore[attr-defined]
        got = client.get("/v1/users/u-1", headers=read)
        by_alias = client.get("/v1/users/a-2", headers=read)
    assert got.status_code == 200
    body = got.json()
    assert body["user_id"] == "u-1" and body["requested_id"] == "u-1"
    attrs = body["attributes"]
    assert attrs["country"] == "CN"  # kept: the later record left it out
    assert attrs["language"] == "zh-CN"
    assert attrs["customer_type"] is None  # cleared by null
    assert attrs["signup_ts"].startswith("2025-01-05T02:00:00")
    assert attrs["attributes"] == {"vip": True, "tier": "gold"}
    # every alias; the e-mail's keyed hash is listed by its type only
    assert [(i["alias_type"], i["alias"], i["current"]) for i in body["identities"]] == [
        ("anonymous_id", "a-1", True),
        ("anonymous_id", "a-2", True),
        ("email_hash", None, True),
        ("user_id", "u-1", True),
    ]
    assert api_ws.keyed_hash("ann@example.com") not in got.text
    # no order yet: a potential customer since sign-up, never scored, no program
    assert body["lifecycle"]["stage"] == "potential" and body["lifecycle"]["orders"] == 0
    assert body["lifecycle"]["since"].startswith("2025-01-05T02:00:00")
    assert (body["rfm"], body["scores"], body["loyalty"]) == (None, None, None)
    # the anonymous view counts as the customer's
    assert [e["event_id"] for e in body["events"]] == ["e-1"] and body["orders"] == []
    assert by_alias.json()["user_id"] == "u-1"
    assert by_alias.json()["requested_id"] == "a-2"
    for name in ("state.sqlite", "warehouse.duckdb"):
        assert b"nn@example" not in (api_ws.path / name).read_bytes().lower()


def test_unknown_customer_and_bad_ids_are_problems(serve_app: Any, keys: Keys) -> None:
    read = keys.header("read")
    with serve_app() as client:
        missing = client.get("/v1/users/nobody", headers=read)
        too_long = client.get("/v1/users/" + "x" * 10_000, headers=read)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "No customer 'nobody'" in missing.json()["detail"]
    assert too_long.status_code == 422
    assert [e["path"] for e in too_long.json()["errors"]] == ["path.user_id"]


def test_bad_user_records_name_their_fields(serve_app: Any, keys: Keys, api_ws: Workspace) -> None:
    users = [
        {"user_id": "u-1", "timezone": "Mars/Olympus"},
        {"user_id": "u-2", "aliases": {"passport": "X1"}},
        {"user_id": "u-3", "aliases": {"phone": "call me"}},
        {"user_id": "u-4", "acquisition_cost": -3},
        {"user_id": "u-5", "birthday": "31.12.1990"},
    ]
    with serve_app() as client:
        r = client.post("/v1/users", json={"users": users}, headers=keys.header("ingest"))
        assert r.status_code == 422
        paths = {e["path"]: e["message"] for e in r.json()["errors"]}
        assert "IANA time zone" in paths["users[0].timezone"]
        assert paths["users[1].aliases.passport"] == (
            "'passport' is not an alias type; use one of anonymous_id, device_id, email_hash, "
            "phone_hash, loyalty_card, email, phone"
        )
        assert "greater than or equal to 0" in paths["users[3].acquisition_cost"]
        assert "users[4].birthday" in paths
        phone_only = client.post(
            "/v1/users", json={"users": [users[2]]}, headers=keys.header("ingest")
        )
        assert phone_only.status_code == 422
        assert phone_only.json()["errors"] == [
            {"path": "users[0].aliases.phone", "message": "holds no digits; send the phone number"}
        ]
    from liucun.ingest import inbox_counts

    assert inbox_counts(api_ws)["pending"] == 0
