"""The OpenAPI document is complete: every operation documents its scope and its 4xx
problem replies, writes their ``Idempotency-Key``, bodies resolve to real schemas, and
docs/api.md describes every route."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from liucun.api import api_routes, create_app
from liucun.core import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
WRITES = {"post", "put", "patch", "delete"}


class _Stub:
    settings = Settings()


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(_Stub()).openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_route_is_in_the_document(doc: dict[str, Any]) -> None:
    routes = {(r.path, r.method.lower()) for r in api_routes(create_app(_Stub()))}
    assert routes == {(p, m) for p, m, _ in _operations(doc)}


def test_protected_operations_document_scope_and_auth_errors(doc: dict[str, Any]) -> None:
    for path, method, op in _operations(doc):
        if path in ("/healthz", "/readyz"):
            assert "x-liucun-scope" not in op
            continue
        assert op["x-liucun-scope"], (method, path)
        assert op["security"] == [{"bearerAuth": []}], (method, path)
        assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
        for status in ("401", "403", "429"):
            content = op["responses"][status]["content"]
            assert "application/problem+json" in content, (method, path, status)
        if method in WRITES:
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in names, (method, path)
            assert "409" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert {"404", "422"} <= set(op["responses"]), (method, path)


def test_every_success_reply_has_its_schema(doc: dict[str, Any]) -> None:
    for path, method, op in _operations(doc):
        ok = [s for s in op["responses"] if s.startswith("2")]
        assert ok, (method, path)
        schema = op["responses"][ok[0]]["content"]["application/json"]["schema"]
        assert "$ref" in schema or schema.get("type") == "array", (method, path, schema)
    decision = doc["components"]["schemas"]["DecisionPublic"]
    assert {"offer", "probability", "arm", "actions", "benefits"} <= set(decision["required"])
    customer = doc["components"]["schemas"]["CustomerPublic"]
    assert {"lifecycle", "scores", "loyalty", "consents", "journeys", "identities"} <= set(
        customer["properties"]
    )
    body = doc["components"]["schemas"]["DecideIn"]
    assert body["additionalProperties"] is False and set(body["required"]) == {
        "user_id",
        "placement",
    }


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    text = repr(doc)
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text))
    assert {"EventBatch", "EventRecord", "UserBatch", "UserRecord", "ProblemDetail"} <= refs
    assert refs <= set(doc["components"]["schemas"])
    event = doc["components"]["schemas"]["EventRecord"]
    assert event["additionalProperties"] is False
    assert set(event["required"]) == {"event_type", "ts"}


def test_docs_describe_every_route() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for route in api_routes(create_app(_Stub())):
        assert f"{route.method} {route.path}" in text, (
            f"docs/api.md lacks {route.method} {route.path}"
        )
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 500):
        assert f"| {status} |" in text, f"docs/api.md does not list status {status}"
