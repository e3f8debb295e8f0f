"""``liucun serve``: the app on uvicorn (uvloop, httptools).

One worker runs the app in this process; ``workers > 1`` starts that many processes,
each building its own app from :func:`app_from_environment` (the workspace path comes
in ``LIUCUN_WORKSPACE``); the inbox loader runs in the one holding the loader lock.
uvicorn stops on SIGINT or SIGTERM: requests in flight finish, then the app's shutdown
stops the loader after its round and writes the pending key usage.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from liucun.core import ConfigError, Hint

WORKSPACE_ENV = "LIUCUN_WORKSPACE"


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that a graceful stop on SIGINT/SIGTERM returns
        (exit code 0, the workspace closed) instead of raising the signal again."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    return Server


def _Server(config: Any) -> Any:
    return _server_class()(config)


def app_from_environment(build: Callable[..., Any] | None = None) -> Any:
    """The app (``build``, default :func:`liucun.api.create_app`) of the workspace named
    by ``LIUCUN_WORKSPACE`` (a worker process's factory)."""
    from liucun.api._app import create_app
    from liucun.workspace import open_workspace

    build = build or create_app
    path = os.environ.get(WORKSPACE_ENV)
    if not path:
        raise ConfigError(f"{WORKSPACE_ENV} is not set; it names the workspace to serve")
    ws = open_workspace(path)
    ws.hash_key  # noqa: B018 - fail now, not at the first request, on a wrong key
    return build(ws, close_workspace=True)


def serve(
    ws: Any,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    log_level: str = "warning",
    access_log: bool = False,
    build: Callable[..., Any] | None = None,
    factory: str = "liucun.api._serve:app_from_environment",
) -> None:
    """Serve workspace ``ws`` until SIGINT/SIGTERM (``[serve]`` gives what is not passed).

    With one worker the app runs on ``ws`` itself (its clock included); with several,
    each worker opens the workspace at ``ws.path`` on the system clock. ``build`` makes
    the app (default :func:`liucun.api.create_app`; ``liucun serve`` passes
    :func:`liucun.web.create_service`, the API with the cockpit) and ``factory`` names the
    function each worker process calls for it.
    """
    import uvicorn

    conf = ws.settings.serve
    host = host or conf.host
    port = conf.port if port is None else port
    workers = workers or conf.workers
    if not 0 <= port <= 65535:
        raise ConfigError(
            f"port {port} is not a TCP port; use 1-65535", hint=Hint(option="port", example="8000")
        )
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
        "server_header": False,
    }
    if workers == 1:
        from liucun.api._app import create_app

        ws.hash_key  # noqa: B018 - a wrong key fails here, not at the first request
        _Server(uvicorn.Config((build or create_app)(ws), **common)).run()
        return
    os.environ[WORKSPACE_ENV] = str(Path(ws.path))
    uvicorn.run(factory, factory=True, workers=workers, **common)
