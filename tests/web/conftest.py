"""Fixtures of the cockpit tests: the shop of cockpit_support, built once per session;
a private copy per test that writes; the cockpit mounted at /cockpit as the service
mounts it; a TestClient signed in per role."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from liucun.web import create_cockpit
from liucun.workspace import Workspace, open_workspace
from web.cockpit_support import CHROMIUM_ARGS, build_cockpit_shop, make_client, serving, sign_in


@pytest.fixture(scope="session")
def cockpit_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop's workspace (read it; tests that write take ``cockpit_ws``)."""
    return build_cockpit_shop(tmp_path_factory.mktemp("cockpit"))


@pytest.fixture
def cockpit_ws(cockpit_shop: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private, opened copy of the shop."""
    target = tmp_path / "ws"
    shutil.copytree(cockpit_shop, target)
    ws = open_workspace(target)
    yield ws
    ws.close()


@pytest.fixture
def live(cockpit_ws: Workspace) -> Iterator[str]:
    """The cockpit mounted at /cockpit of a real uvicorn server; yields the cockpit's URL."""
    parent = FastAPI()
    parent.mount("/cockpit", create_cockpit(cockpit_ws))
    with serving(parent) as url:
        yield url + "/cockpit"


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright."""
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def service(cockpit_ws: Workspace) -> FastAPI:
    """An app with the cockpit mounted at /cockpit, as ``liucun serve`` mounts it."""
    parent = FastAPI()
    parent.mount("/cockpit", create_cockpit(cockpit_ws, cache_ttl_s=0))
    return parent


@pytest.fixture
def client(service: FastAPI) -> Iterator[Any]:
    """An anonymous client."""
    with make_client(service) as c:
        yield c


@pytest.fixture
def as_role(service: FastAPI) -> Iterator[Callable[[str], Any]]:
    """``as_role("ada")``: a client signed in as that login (see cockpit_support.LOGINS)."""
    opened: list[Any] = []

    def make(name: str) -> Any:
        c = make_client(service).__enter__()
        opened.append(c)
        res = sign_in(c, name)
        assert res.status_code == 200 and res.url.path == "/cockpit/", res.text[-500:]
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
