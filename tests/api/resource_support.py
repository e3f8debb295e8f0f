"""Helpers of the resource-route tests (loyalty, journeys, experiments, segments): a
workspace's app on a real server with its keys, and the checks every problem reply
passes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from api_support import Keys, served

from liucun.api import create_app
from liucun.workspace import Workspace


@dataclass
class Api:
    """A served app: ``api.client`` talks to it, ``api.get(path, "read")`` with a key."""

    client: httpx.Client
    keys: Keys
    ws: Workspace

    def get(self, path: str, scope: str = "read", **kwargs: Any) -> httpx.Response:
        headers = {**self.keys.header(scope), **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, path: str, scope: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.keys.header(scope), **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def pages(self, path: str, *, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of a paged list, following ``next_cursor``."""
        out, cursor = [], None
        while True:
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            r = self.get(path, params=query)
            assert r.status_code == 200, r.text
            body = r.json()
            out.append(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return out
            assert len(out) < 1_000, "the cursor does not advance"


@contextlib.contextmanager
def serve(ws: Workspace) -> Iterator[Api]:
    """``ws``'s app (without the background loader) on a free port."""
    with served(create_app(ws, run_loader=False)) as client:
        yield Api(client, Keys(ws), ws)


def problem(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The problem+json body of ``r``, checked: ``status``, a sentence holding ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    detail = body["detail"]
    assert detail[0].isupper() and detail.endswith("."), detail
    for word in words:
        assert word in detail, (word, detail)
    return body  # type: ignore[no-any-return]
