"""Helpers of the API tests: the app on a real uvicorn server bound to 127.0.0.1 on a
free port (httpx talks to it over TCP), API keys made on demand, a valid event."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from liucun.api import create_key
from liucun.workspace import Workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(app: Any) -> Iterator[httpx.Client]:
    """Run ``app`` on uvicorn in a thread until the block ends; yield a client for it."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="asyncio",
        http="httptools",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


class Keys:
    """API keys of a workspace, made on demand: ``keys("ingest", "read")``."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._made: dict[tuple[str, ...], str] = {}

    def __call__(self, *scopes: str, **limits: Any) -> str:
        wanted = tuple(sorted(scopes))
        if limits or wanted not in self._made:
            key = create_key(self.ws, name="test " + " ".join(wanted), scopes=wanted, **limits).key
            if limits:
                return key
            self._made[wanted] = key
        return self._made[wanted]

    def header(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(*scopes)}"}


def event(i: int, **fields: Any) -> dict[str, Any]:
    """A valid order event number ``i`` (a past time, CNY)."""
    return {
        "event_id": f"e-{i}",
        "user_id": f"u-{i % 7}",
        "event_type": "order",
        "ts": "2025-06-01T09:30:00+08:00",
        "revenue": 100.0 + i,
        "currency": "CNY",
        "channel": "app",
        **fields,
    }
