"""Fixtures of the API tests: a fresh workspace, its keys, its app on a real server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Keys, served

from liucun.api import create_app
from liucun.core import ServeSettings
from liucun.workspace import Workspace, init_workspace
from state_backends import postgres_schema_url


@pytest.fixture
def api_ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace; SQLite state unless a module parametrizes it indirectly with
    ``pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)``."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        ws = init_workspace(tmp_path / "ws")
        yield ws
        ws.close()
        return
    with postgres_schema_url() as url:
        ws = init_workspace(tmp_path / "ws", state_url=url)
        yield ws
        ws.close()


@pytest.fixture
def keys(api_ws: Workspace) -> Keys:
    return Keys(api_ws)


@pytest.fixture
def serve_app(api_ws: Workspace) -> Callable[..., contextlib.AbstractContextManager[httpx.Client]]:
    """``with serve_app(max_batch=10) as client:`` — the workspace's app with settings
    changed, without the background loader (tests run it by hand) unless ``loader=True``."""

    @contextlib.contextmanager
    def run(*, loader: bool = False, **changes: Any) -> Iterator[httpx.Client]:
        settings = ServeSettings(**{**api_ws.settings.serve.model_dump(), **changes})
        app = create_app(api_ws, settings, run_loader=loader)
        with served(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return run
