"""No bad input makes a resource route (loyalty, journeys, experiments, segments) fail
with a 500: every route is tried with odd path values, query parameters and bodies, on
an empty workspace with the example loyalty program and a journey, and each reply is a
2xx, or a 4xx problem with a sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from resource_support import Api, serve

from liucun import loyalty
from liucun.api import api_routes, create_app
from liucun.core import Settings
from liucun.journeys import apply_journey
from liucun.workspace import init_workspace
from loyalty_shop import EXAMPLE

PREFIXES = ("/v1/loyalty", "/v1/journeys", "/v1/experiments", "/v1/segments")
EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


class _Stub:
    settings = Settings()


ROUTES = [
    (r.method, r.path) for r in api_routes(create_app(_Stub())) if r.path.startswith(PREFIXES)
]
VALUES = ["u-1", "%00", "a%2Fb", "x" * 300, "%E4%BD%A0", "%20", "Champions", "winback_risk"]
QUERIES = [
    {"limit": "-1"},
    {"limit": "abc"},
    {"cursor": "aTo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"},
    {"as_of": "9999-12-31T00:00:00Z"},
    {"filter": "(((((((("},
    {"version": "99999999999"},
    {"alpha": "nan"},
    {"format": "xml"},
]
BODIES = [
    b"",
    b"[]",
    b"null",
    b'{"points": 1e400, "key": "k"}',
    b'{"points": 9999999999999999999999, "key": "k"}',
    b'{"points": 5, "key": "k", "expires_at": "2020-01-01T00:00:00"}',
    b'{"by": null, "version": -1}',
    b'{"coupon_id": "recall_10", "user_id": "u", "key": "' + b"k" * 300 + b'"}',
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with init_workspace(tmp_path_factory.mktemp("bad") / "ws") as ws:
        loyalty.apply_program(ws, EXAMPLE)
        apply_journey(ws, EXAMPLES / "winback_risk.yaml", by="test")
        with serve(ws) as served_api:
            yield served_api


def _fine(r: httpx.Response, what: object) -> int:
    """``r``'s status, checked: never a 5xx, and every error a problem sentence."""
    assert r.status_code < 500, (what, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", what
        detail = r.json()["detail"]
        assert detail[:1].isupper() and detail.endswith("."), (what, detail)
    return r.status_code


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_bad_input_is_a_500(api: Api, method: str, path: str) -> None:
    headers = api.keys.header("admin")
    seen: list[int] = []
    for value in VALUES:
        url = path
        for param in (
            "{user_id}",
            "{program}",
            "{name}",
            "{experiment}",
            "{by}",
            "{tag}",
            "{value}",
        ):
            url = url.replace(param, value)
        if method == "GET":
            for query in QUERIES:
                seen.append(_fine(api.client.get(url, params=query, headers=headers), (url, query)))
            continue
        for body in BODIES:
            sent = {**headers, "Content-Type": "application/json"}
            seen.append(_fine(api.client.post(url, content=body, headers=sent), (url, body)))
    # every odd input was sent and answered without a server error (some routes accept
    # odd values: a name that is simply unknown, a query they ignore)
    assert len(seen) == len(VALUES) * (len(QUERIES) if method == "GET" else len(BODIES))
    assert all(status < 500 for status in seen), seen
