"""The API against its own OpenAPI document, on a real server (uvicorn on 127.0.0.1).

- :func:`test_operation_conforms_to_its_schema`: schemathesis generates requests for
  every operation of the document (valid and invalid ones, with a key holding every
  scope) and checks each reply: never a 500, a documented status, the documented content
  type, headers and body schema, and bad input refused.
- :func:`test_every_documented_status_is_reachable`: each status an operation documents
  is driven by a crafted request (401 without a key, 403 with another scope, 404 for an
  unknown id, 413 for an oversized body, 409 for an ``Idempotency-Key`` still in flight,
  429 past the rate limit, …) — a status no request can reach is a lie in the document.

Both iterate the document, so a route added later is covered without editing this file;
a route whose success needs a specific body is listed in :data:`GOOD`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import event, served
from hypothesis import HealthCheck, settings

from liucun.api import SCOPES, create_app, create_key
from liucun.core import ServeSettings, Settings
from liucun.workspace import Workspace, init_workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis

#: One worker runs the whole file (``make test`` uses ``--dist loadgroup``): one server.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("schemathesis")]

#: The body limit of the served app (small, so a 413 is cheap to provoke).
MAX_BODY = 20_000
#: The user every request about one customer names (loaded before the tests).
USER = "u-1"
#: The example journey the journey routes move from draft to approved, active, paused.
JOURNEY = "inactive_push_coupon"
#: An experiment logged for the customers (alternate arms).
EXPERIMENT = "st-coupon"
EXAMPLES = Path(__file__).parents[2] / "examples"


class _Stub:  # create_app only stores the workspace until the app runs
    settings = Settings()


DOC = create_app(_Stub()).openapi()
#: Every check of schemathesis but two, on purpose:
#: - ``positive_data_acceptance`` (a schema-valid request must succeed): the workspace's
#:   rules are not all JSON Schema — an event type the workspace does not know, a time in
#:   the future, an id no key or customer has are schema-valid and refused with a
#:   documented 404 / 422, which the rest of this file checks;
#: - unexpected query parameters are ignored (as HTTP APIs commonly do), so the generator
#:   does not add them.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "generation": {"allow-extra-parameters": False},
    }
)
schema = schemathesis.openapi.from_dict(DOC, config=CONFIG)


@dataclass
class Api:
    """The served app, its workspace and a key with every scope."""

    client: httpx.Client
    ws: Workspace
    key: str

    @property
    def url(self) -> str:
        return str(self.client.base_url)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A workspace with customers and orders loaded through the API itself, served."""
    ws = init_workspace(tmp_path_factory.mktemp("schemathesis") / "ws")
    key = create_key(ws, name="every scope", scopes=SCOPES, rate_per_s=1e6, burst=1_000_000).key
    # the key stays cached while a test makes the state file unreadable
    changes = {"max_body_bytes": MAX_BODY, "key_cache_s": 3600.0}
    conf = ServeSettings(**{**ws.settings.serve.model_dump(), **changes})
    app = create_app(ws, conf, run_loader=False)
    with served(app) as client:
        headers = {"Authorization": f"Bearer {key}"}
        users = [{"user_id": f"u-{i}", "country": "CN", "aliases": {"email": f"{i}@x.cn"}}
                 for i in range(7)]  # fmt: skip
        assert client.post("/v1/users", json={"users": users}, headers=headers).status_code == 202
        events = {"events": [event(i) for i in range(30)]}
        assert client.post("/v1/events", json=events, headers=headers).status_code == 202
        app.state.service.load_once()
        assert client.get(f"/v1/users/{USER}", headers=headers).status_code == 200
        _things_routes_name(ws)
        if "/v1/webhooks" in DOC["paths"]:  # partner webhooks, when the service has them
            for name in ("st-hook", "st-hook-deleted"):
                made = client.post("/v1/webhooks", json=_hook(name), headers=headers)
                assert made.status_code == 201, made.text
        yield Api(client, ws, key)
    ws.close()


def _things_routes_name(ws: Workspace) -> None:
    """What the resource routes' path parameters name (:data:`KNOWN`): the example
    loyalty program with an account for :data:`USER`, the example journeys (one a draft
    to approve, activate, pause and resume), an experiment's exposures and :data:`USER`'s
    RFM segment."""
    import pyarrow as pa

    from liucun import loyalty
    from liucun.experiments import log_exposures
    from liucun.journeys import apply_journey
    from liucun.segments import SEGMENT_COLUMNS, segment_customers

    loyalty.apply_program(ws, EXAMPLES / "loyalty" / "program.yaml")
    loyalty.award(ws, USER, 500, key="schemathesis:opening", reason="opening balance")
    for name in ("winback_risk", JOURNEY):
        apply_journey(ws, EXAMPLES / "journeys" / f"{name}.yaml", by="test")
    units = [f"u-{i}" for i in range(7)]
    log_exposures(
        ws.state,
        pa.table(
            {
                "experiment": [EXPERIMENT] * 7,
                "layer": ["default"] * 7,
                "unit_type": ["user"] * 7,
                "unit_id": units,
                "variant": ["control", "treatment"] * 3 + ["control"],
                "probability": [0.5] * 7,
                "holdout": [False] * 7,
            }
        ),
        ts=datetime(2025, 5, 1, tzinfo=UTC),
    )
    t = segment_customers(ws.events(), ws.customers(), as_of=ws.data_end(), by="rfm")
    mine = t.filter(t.user_id == USER).select(SEGMENT_COLUMNS["rfm"]).to_pyarrow()
    KNOWN_AT["/v1/segments/{by}/{name}/members"] = {"name": str(mine.column(0)[0])}
    ws._close_warehouse()


# -- fuzzing ---------------------------------------------------------------------------------


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_conforms_to_its_schema(case: Any, api: Api) -> None:
    case.call_and_validate(base_url=api.url, headers=api.auth())


# -- every documented status ---------------------------------------------------------------


def _hook(name: str) -> dict[str, Any]:
    """A partner webhook subscription's body (the receiver is never called here)."""
    return {"name": name, "url": "http://127.0.0.1:9/hook", "event_types": ["tier_changed"]}


#: Requests that succeed, by operation, for those whose success needs a specific body or
#: id (an operation not listed here succeeds with its path ids filled in, or by a request
#: schemathesis generates — see :func:`_success`).
GOOD: dict[str, dict[str, Any]] = {
    "POST /v1/events": {"json": {"events": [event(900)]}},
    "POST /v1/users": {"json": {"users": [{"user_id": "u-900", "country": "DE"}]}},
    "POST /v1/loyalty/accounts/{user_id}/accrue": {"json": {"points": 10, "key": "st:accrue"}},
    "POST /v1/loyalty/accounts/{user_id}/redeem": {"json": {"points": 5, "key": "st:redeem"}},
    "POST /v1/loyalty/accounts/{user_id}/adjust": {
        "json": {"points": 3, "key": "st:adjust", "reason": "a test"}
    },
    "POST /v1/loyalty/coupons": {
        "json": {"coupon_id": "birthday_coupon", "user_id": USER, "key": "st:coupon"}
    },
    "POST /v1/journeys/{name}/approve": {"json": {"note": "reviewed"}},
    "POST /v1/webhooks": {"json": _hook("st-made")},
}
#: Path parameters that name something that exists (``key_id``: a spare key made for it).
#: A route with another path parameter needs its value here, and the ``api`` fixture
#: the thing it names (a program applied, a journey, …).
KNOWN = {
    "user_id": USER,
    "program": "default",
    "name": JOURNEY,
    "by": "rfm",
    "experiment": EXPERIMENT,
}
#: Values of one route's parameters where they differ from :data:`KNOWN`
#: (``METHOD /path`` first, then ``/path``).
KNOWN_AT: dict[str, dict[str, str]] = {
    "/v1/webhooks/{name}": {"name": "st-hook"},
    "POST /v1/webhooks/{name}/disable": {"name": "st-hook"},
    "POST /v1/webhooks/{name}/rotate": {"name": "st-hook"},
    "DELETE /v1/webhooks/{name}": {"name": "st-hook-deleted"},
}
#: Path parameters that name nothing (any other: ``no-such-<name>``).
UNKNOWN = {"user_id": "nobody-has-this-id", "key_id": "ffffffffffffffff"}
WRITES = {"post", "put", "patch", "delete"}

Op = tuple[str, str, dict[str, Any]]
Crafter = Callable[[Api, Op], httpx.Response | None]


def _operations() -> list[Op]:
    return [
        (method, path, op)
        for path, item in DOC["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete", "head", "options"}
    ]


def _params(op: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in op.get("parameters", []) if p["in"] == where]


def _known_at(method: str, template: str) -> dict[str, str]:
    return KNOWN_AT.get(f"{method.upper()} {template}") or KNOWN_AT.get(template) or {}


def _url(
    api: Api, path: str, op: dict[str, Any], values: dict[str, str], method: str = "get"
) -> str:
    template = path
    for p in _params(op, "path"):
        name = p["name"]
        if name == "key_id" and values is KNOWN:
            made = create_key(api.ws, name="spare", scopes=("read",))
            value = made.key[3:].partition(".")[0]
        elif values is KNOWN and (at := _known_at(method, template)) and name in at:
            value = at[name]
        elif values is KNOWN:
            assert name in KNOWN, (
                f"{path}: add a value of the path parameter {name!r} to KNOWN in "
                "tests/api/test_schemathesis.py (and what it names to the api fixture)"
            )
            value = KNOWN[name]
        else:
            value = values.get(name, f"no-such-{name}")
        path = path.replace("{" + name + "}", value)
    return path


def _send(api: Api, method: str, url: str, **kwargs: Any) -> httpx.Response:
    headers = {**api.auth(), **kwargs.pop("headers", {})}
    headers = {k: v for k, v in headers.items() if v is not None}
    return api.client.request(method.upper(), url, headers=headers, **kwargs)


def _body(o: Op) -> dict[str, Any]:
    """The request options of a successful call to operation ``o`` (its body)."""
    method, path, op = o
    return GOOD.get(f"{method.upper()} {path}", {}) if "requestBody" in op else {}


def _success(api: Api, o: Op, status: int) -> httpx.Response | None:
    method, path, op = o
    name = f"{method.upper()} {path}"
    if name in GOOD or "requestBody" not in op:
        return _send(api, method, _url(api, path, op, KNOWN, method), **_body(o))
    # a new operation with a body: the first generated request that gets its status
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    strategy = schema[path][method.upper()].as_strategy()
    try:
        case = find(
            strategy,
            lambda c: c.call(base_url=api.url, headers=api.auth()).status_code == status,
            settings=settings(max_examples=40, database=None, deadline=None),
        )
    except NoSuchExample:
        return None
    return httpx.Response(status) if case is not None else None


def _no_key(api: Api, o: Op) -> httpx.Response:
    method, path, op = o
    return _send(api, method, _url(api, path, op, KNOWN, method), headers={"Authorization": None})


def _wrong_scope(api: Api, o: Op) -> httpx.Response | None:
    method, path, op = o
    needs = op.get("x-liucun-scope")
    if needs is None:
        return None
    other = next(s for s in SCOPES if s not in (needs, "admin"))
    key = create_key(api.ws, name="other scope", scopes=(other,)).key
    return _send(api, method, _url(api, path, op, KNOWN, method), headers=api.auth(key))


def _unknown_id(api: Api, o: Op) -> httpx.Response | None:
    method, path, op = o
    if not _params(op, "path"):
        return None
    options = _body(o)
    if isinstance(options.get("json"), dict) and "key" in options["json"]:
        options = {"json": {**options["json"], "key": options["json"]["key"] + ":unknown"}}
    return _send(api, method, _url(api, path, op, UNKNOWN), **options)


def _rate_limited(api: Api, o: Op) -> httpx.Response | None:
    method, path, op = o
    key = create_key(api.ws, name="slow", scopes=SCOPES, rate_per_s=0.01, burst=1).key
    url = _url(api, path, op, KNOWN, method)
    _send(api, method, url, headers=api.auth(key))
    return _send(api, method, url, headers=api.auth(key))


def _oversized(api: Api, o: Op) -> httpx.Response | None:
    method, path, op = o
    if method not in WRITES:
        return None
    big = b'{"events": ["' + b"x" * MAX_BODY + b'"]}'
    headers = {"Content-Type": "application/json"}
    return _send(api, method, _url(api, path, op, KNOWN, method), content=big, headers=headers)


def _raw_body(content: bytes, content_type: str) -> Crafter:
    """A crafter that sends ``content`` as the body of an operation that takes one."""

    def send(api: Api, o: Op) -> httpx.Response | None:
        method, path, op = o
        if method not in WRITES:
            return None
        headers = {"Content-Type": content_type}
        return _send(
            api, method, _url(api, path, op, KNOWN, method), content=content, headers=headers
        )

    return send


def _invalid_fields(api: Api, o: Op) -> httpx.Response | None:
    """A body with a field no schema has, a 10 KB id in the path, or a query parameter of
    the wrong type — the first that applies."""
    method, path, op = o
    if "requestBody" in op:
        return _send(api, method, _url(api, path, op, KNOWN, method), json={"no_such_field": 1})
    if _params(op, "path"):
        long = {p["name"]: "x" * 10_000 for p in _params(op, "path")}
        return _send(api, method, _url(api, path, op, long))
    typed = [p for p in _params(op, "query") if p.get("schema", {}).get("type") != "string"]
    if typed:
        params = {p["name"]: "not-a-" + str(p["schema"].get("type")) for p in typed}
        return _send(api, method, _url(api, path, op, KNOWN, method), params=params)
    return None


def _in_flight(api: Api, o: Op) -> httpx.Response | None:
    """The same write while a first one with its ``Idempotency-Key`` is still running
    (its claim made by the service's own function, as that request would have)."""
    import hashlib
    import json

    from liucun.api._idempotency import claim

    method, path, op = o
    if method not in WRITES:
        return None
    name = f"{method.upper()} {path}"
    url = _url(api, path, op, KNOWN, method)
    body = GOOD.get(name, {}).get("json")
    content = b"" if body is None else json.dumps(body).encode()
    key_id = api.key[3:].partition(".")[0]
    idem = f"in-flight {name}"
    claim(api.ws, key_id=key_id, idem_key=idem, method=method.upper(), path=url,
          body_hash=hashlib.sha256(content).hexdigest())  # fmt: skip
    headers = {"Idempotency-Key": idem}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return _send(api, method, url, content=content, headers=headers)


@contextlib.contextmanager
def _garbage_in_place_of(*files: Path) -> Iterator[None]:
    """Each file moved aside and replaced by bytes no database can read, then put back."""
    for f in files:
        if f.exists():
            f.rename(f.with_name(f.name + ".aside"))
    try:
        files[0].write_bytes(b"this is not a database file" * 100)
        yield
    finally:
        for f in files:
            f.unlink(missing_ok=True)
            aside = f.with_name(f.name + ".aside")
            if aside.exists():
                aside.rename(f)


def _warehouse_unreadable(api: Api, o: Op) -> httpx.Response | None:
    method, path, op = o
    with _garbage_in_place_of(api.ws.path / "warehouse.duckdb"):
        return _send(api, method, _url(api, path, op, KNOWN, method), **_body(o))


def _state_unreadable(api: Api, o: Op) -> httpx.Response | None:
    """The SQLite state file unreadable (the key is in the service's cache meanwhile)."""
    method, path, op = o
    url = _url(api, path, op, KNOWN, method)
    state = api.ws.path / "state.sqlite"
    engine = api.ws.state.engine
    engine.dispose()
    try:
        with _garbage_in_place_of(
            state, *(state.with_name(state.name + x) for x in ("-wal", "-shm"))
        ):
            return _send(api, method, url, **_body(o))
    finally:
        engine.dispose()


#: Requests for one operation's status that no crafter below can make generically.
CRAFTED: dict[tuple[str, int], dict[str, Any]] = {
    ("POST /v1/loyalty/coupons", 404): {
        "json": {"coupon_id": "no-such-coupon", "user_id": USER, "key": "st:coupon:404"}
    },
    **{
        (f"POST /v1/loyalty/accounts/{{user_id}}/{op}", 404): {
            "json": {"points": 1, "key": f"st:{op}:404", "reason": "x", "program": "no-such"}
        }
        for op in ("accrue", "redeem", "adjust")
    },
}


CRAFTERS: dict[int, tuple[Crafter, ...]] = {
    400: (_raw_body(b'{"a": ', "application/json"),),
    401: (_no_key,),
    403: (_wrong_scope,),
    404: (_unknown_id,),
    409: (_in_flight,),
    413: (_oversized,),
    415: (_raw_body(b"hello", "text/plain"),),
    422: (_invalid_fields,),
    429: (_rate_limited,),
    503: (_warehouse_unreadable, _state_unreadable),
}


@pytest.mark.parametrize("o", _operations(), ids=[f"{m.upper()} {p}" for m, p, _ in _operations()])
def test_every_documented_status_is_reachable(api: Api, o: Op) -> None:
    method, path, op = o
    missed = []
    for text in sorted(op["responses"]):
        status = int(text)
        if 200 <= status < 300:
            got = _success(api, o, status)
        else:
            assert status in CRAFTERS, f"no request is known that provokes {status}; add one"
            got = None
            special = CRAFTED.get((f"{method.upper()} {path}", status))
            if special is not None:
                got = _send(api, method, _url(api, path, op, KNOWN, method), **special)
            for craft in () if got is not None and got.status_code == status else CRAFTERS[status]:
                got = craft(api, o) or got
                if got is not None and got.status_code == status:
                    break
        if got is None or got.status_code != status:
            shown = "nothing applies" if got is None else f"{got.status_code} {got.text[:200]}"
            missed.append(f"{status}: {shown}")
            continue
        documented = set(op["responses"][text].get("content", {}))
        if got.content:  # (a 2xx found by generation is checked by the fuzzing test)
            assert got.headers["content-type"] in documented, (status, got.text[:200])
        if got.headers.get("content-type") == "application/problem+json":
            problem = got.json()
            assert problem["status"] == status and problem["detail"].endswith("."), problem
    assert not missed, f"{method.upper()} {path} documents statuses no request reached: {missed}"


@pytest.mark.parametrize(
    ("route", "body", "where"),
    [
        ("/v1/users", {"users": [{"user_id": "u-1", "birthday": 0}]}, "users[0].birthday"),
        ("/v1/users", {"users": [{"user_id": "u-1", "acquisition_cost": "3"}]},
         "users[0].acquisition_cost"),
        ("/v1/events", {"events": [event(1, revenue="101")]}, "events[0].revenue"),
        ("/v1/events", {"events": [event(1, revenue=True)]}, "events[0].revenue"),
    ],
)  # fmt: skip
def test_a_json_value_of_another_type_is_not_coerced(
    api: Api, route: str, body: dict[str, Any], where: str
) -> None:
    """Found by the fuzzing: ``"birthday": 0`` was taken as 1970-01-01."""
    r = api.client.post(route, json=body, headers=api.auth())
    assert r.status_code == 422, r.text
    assert [e["path"] for e in r.json()["errors"]] == [where]


def test_an_unreadable_state_database_is_a_503_not_a_500(api: Api) -> None:
    """Found by the status test on routes that read state: SQLite's "file is not a
    database" escaped as a 500."""
    op = ("get", "/v1/events/inbox", DOC["paths"]["/v1/events/inbox"]["get"])
    r = _state_unreadable(api, op)
    assert r is not None and r.status_code == 503, r and r.text
    assert "cannot be read (file is not a database)" in r.json()["detail"]
    assert r.headers["retry-after"] == "5"
    assert api.client.get("/v1/events/inbox", headers=api.auth()).status_code == 200


def test_405_names_every_method_of_the_path() -> None:
    """Found by schemathesis on a path with two routes (GET and POST /v1/webhooks):
    Starlette's ``Allow`` named the first route's method only."""
    from fastapi import APIRouter, FastAPI

    from liucun.api._problems import install_handlers

    router = APIRouter(prefix="/v1/things")
    router.get("")(lambda: 1)
    router.post("")(lambda: 2)
    router.delete("/{thing}")(lambda thing: 3)
    app = FastAPI()
    install_handlers(app)
    app.include_router(router)
    with served(app) as client:
        r = client.request("PUT", "/v1/things")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, POST"
        assert r.json()["detail"] == "PUT is not allowed on /v1/things; use GET, POST."
        assert client.get("/v1/things/7").headers["allow"] == "DELETE"
