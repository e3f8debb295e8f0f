"""Authentication, scopes, rate limits, key usage and the audit of admin calls.

The route tests are parametrized over the app's own routes: a route added without a
scope fails :func:`test_every_route_but_health_needs_a_scope`, and every protected
route is tried without a key, with bad, revoked and wrong-scope keys, and with the right
one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Keys, event, served
from sqlalchemy import select

from liucun.api import SCOPES, api_routes, create_app, list_keys, revoke_key
from liucun.state import AuditEntry
from liucun.workspace import Workspace, init_workspace

PUBLIC = {"/healthz", "/readyz"}


def _routes() -> list[tuple[str, str, str | None]]:
    from liucun.core import Settings

    class _Stub:  # create_app only stores the workspace until the app runs
        settings = Settings()

    return [(r.method, r.path, r.scope) for r in api_routes(create_app(_Stub()))]


ROUTES = _routes()
PROTECTED = [(m, p, s) for m, p, s in ROUTES if s is not None]


#: A value for each path parameter of the app's routes.
PATH_VALUES = {
    "{user_id}": "u-1",
    "{key_id}": "0123456789abcdef",
    "{name}": "winback",
    "{program}": "default",
    "{experiment}": "cmp-1",
    "{by}": "rfm",
    "{tag}": "price_sensitive",
    "{value}": "true",
}


def _url(path: str) -> str:
    for param, value in PATH_VALUES.items():
        path = path.replace(param, value)
    assert "{" not in path, f"add a value for the path parameter of {path} to PATH_VALUES"
    return path


def _send(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"content": b"{}", "headers": {**headers, "Content-Type": "application/json"}}
    if method in ("GET", "DELETE"):
        body = {"headers": headers}
    return client.request(method, _url(path), **body)


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = init_workspace(tmp_path_factory.mktemp("auth") / "ws")
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def module_keys(module_ws: Workspace) -> Keys:
    return Keys(module_ws)


@pytest.fixture(scope="module")
def client(module_ws: Workspace) -> Iterator[httpx.Client]:
    with served(create_app(module_ws, run_loader=False)) as c:
        yield c


def test_every_route_but_health_needs_a_scope() -> None:
    public = {p for _m, p, s in ROUTES if s is None}
    assert public == PUBLIC, "a new route must declare its scope (Requirement / WriteRequirement)"
    assert {s for _m, _p, s in PROTECTED} <= set(SCOPES)
    assert len(PROTECTED) >= 6


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
def test_route_refuses_a_request_without_a_key(
    client: httpx.Client, method: str, path: str, scope: str
) -> None:
    r = _send(client, method, path, {})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
def test_route_refuses_malformed_unknown_and_revoked_keys(
    client: httpx.Client,
    module_ws: Workspace,
    module_keys: Keys,
    method: str,
    path: str,
    scope: str,
) -> None:
    good = module_keys(scope)
    key_id, _, secret = good[3:].partition(".")
    revoked = module_keys(scope, rate_per_s=100.0)
    revoke_key(module_ws, revoked[3:].partition(".")[0])
    cases = {
        "malformed": ("not-a-key", "malformed"),
        "wrong secret": (f"lc_{key_id}.{secret[:-2]}xx", "not valid"),
        "unknown id": (f"lc_ffffffffffffffff.{secret}", "not valid"),
        "revoked": (revoked, "was revoked"),
    }
    for why, (key, words) in cases.items():
        r = _send(client, method, path, {"Authorization": f"Bearer {key}"})
        assert r.status_code == 401, why
        assert words in r.json()["detail"], why


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
def test_route_needs_its_scope_and_admin_has_every_scope(
    client: httpx.Client, module_keys: Keys, method: str, path: str, scope: str
) -> None:
    other = next(s for s in SCOPES if s not in (scope, "admin"))
    r = _send(client, method, path, module_keys.header(other))
    assert r.status_code == 403
    assert f"not {scope}" in r.json()["detail"]
    for allowed in (scope, "admin"):
        r = _send(client, method, path, module_keys.header(allowed))
        assert r.status_code not in (401, 403), (allowed, r.text)


def test_health_routes_need_no_key(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"state", "warehouse", "decider"}


def test_rate_limit_answers_429_with_retry_after(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    key = keys("read", rate_per_s=0.5, burst=2)
    headers = {"Authorization": f"Bearer {key}"}
    with serve_app() as client:
        codes = [client.get("/v1/users/nobody", headers=headers).status_code for _ in range(3)]
        assert codes == [404, 404, 429]
        refused = client.get("/v1/users/nobody", headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) == 2  # one token per 2 s
        assert "0.5 requests per second" in refused.json()["detail"]
        # another key has its own bucket
        assert client.get("/v1/users/nobody", headers=keys.header("read")).status_code == 404


def test_last_used_is_written_in_batches_not_per_request(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    key = keys("read")
    key_id = key[3:].partition(".")[0]
    with serve_app() as client:
        for _ in range(5):
            client.get("/v1/users/nobody", headers=keys.header("read"))
        during = {k.key_id: k.last_used_at for k in list_keys(api_ws)}
        assert during[key_id] is None  # not yet: usage is held in memory
    after = {k.key_id: k.last_used_at for k in list_keys(api_ws)}
    assert after[key_id] is not None  # written at shutdown (or every few seconds)


def test_key_revoked_elsewhere_stops_within_the_cache_time(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    key = keys("read")
    headers = {"Authorization": f"Bearer {key}"}
    with serve_app(key_cache_s=0.2) as client:
        assert client.get("/v1/users/nobody", headers=headers).status_code == 404
        revoke_key(api_ws, key[3:].partition(".")[0])  # as `liucun keys revoke` would
        time.sleep(0.3)
        assert client.get("/v1/users/nobody", headers=headers).status_code == 401


def test_key_revoked_through_the_api_stops_at_once(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    key = keys("read")
    key_id = key[3:].partition(".")[0]
    headers = {"Authorization": f"Bearer {key}"}
    with serve_app(key_cache_s=3600) as client:
        assert client.get("/v1/users/nobody", headers=headers).status_code == 404
        r = client.delete(f"/v1/keys/{key_id}", headers=keys.header("admin"))
        assert r.status_code == 200
        assert r.json()["revoked_at"] is not None
        assert client.get("/v1/users/nobody", headers=headers).status_code == 401
        missing = client.delete("/v1/keys/ffff0000ffff0000", headers=keys.header("admin"))
        assert missing.status_code == 404
        assert "no API key" in missing.json()["detail"]


def test_admin_calls_are_audited_with_the_key_and_status(
    serve_app: Any, keys: Keys, api_ws: Workspace
) -> None:
    with serve_app() as client:
        assert client.get("/v1/keys", headers=keys.header("admin")).status_code == 200
        assert client.get("/v1/keys", headers=keys.header("read")).status_code == 403
        # an ingest call is not an admin call, even with an admin key
        ok = client.post("/v1/events", json={"events": [event(1)]}, headers=keys.header("admin"))
        assert ok.status_code == 202
    with api_ws.state.read() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("api %")).order_by(AuditEntry.id)
        ).all()
    assert [(r.action, r.details) for r in rows] == [
        ("api GET /v1/keys", '{"status": 200}'),
        ("api GET /v1/keys", '{"status": 403}'),
    ]
    assert rows[0].actor.startswith("api key ") and "test admin" in rows[0].actor


def test_cors_is_off_unless_origins_are_set(serve_app: Any, keys: Keys) -> None:
    preflight = {
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with serve_app() as client:
        r = client.options("/v1/events", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    with serve_app(cors_origins=["https://shop.example.com"]) as client:
        r = client.options("/v1/events", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://shop.example.com"
        other = client.options("/v1/events", headers={**preflight, "Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in other.headers


def test_key_library_round_trip(api_ws: Workspace, tmp_path: Path) -> None:
    from liucun.api import create_key, get_key
    from liucun.core import ConfigError

    new = create_key(api_ws, name="checkout", scopes=["decide", "READ", "decide"])
    assert new.key.startswith(f"lc_{new.info.key_id}.")
    assert new.info.scopes == ("read", "decide")
    assert get_key(api_ws, new.info.key_id).name == "checkout"
    with api_ws.state.read() as session:
        stored = session.scalars(select(AuditEntry.details)).all()
    assert not any(new.key.partition(".")[2] in (d or "") for d in stored)  # no secret
    for bad, words in ((["nope"], "not a scope"), ([], "at least one scope")):
        with pytest.raises(ConfigError, match=words):
            create_key(api_ws, name="x", scopes=bad)
    state_file = (api_ws.path / "state.sqlite").read_bytes()
    assert new.key.partition(".")[2].encode() not in state_file
