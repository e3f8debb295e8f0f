"""``liucun serve``: the HTTP API (and the inbox loader) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from liucun.cli._app import WorkspaceOpt, _open, app, console, friendly


@app.command("serve")
@friendly
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address (default: [serve] host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (default: [serve] port, 8000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes (default: [serve] workers, 1)."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (off: faster).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the HTTP API and the cockpit (at /cockpit) until Ctrl-C or SIGTERM; events
    posted to it are loaded into the warehouse every [serve] loader_interval_s by one of
    the processes.

    Example: [bold]liucun -w shop serve --port 8000[/bold], then
    [bold]curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8000/v1/users/u1[/bold]
    """
    from liucun.api import serve
    from liucun.web import create_service

    with _open(ctx, workspace) as ws:
        conf = ws.settings.serve
        shown_host, shown_port = host or conf.host, conf.port if port is None else port
        console.print(
            f"Serving [bold]{ws.path}[/bold] on http://{shown_host}:{shown_port} "
            f"({workers or conf.workers} worker(s)); its OpenAPI document is at /openapi.json, "
            f"the cockpit at http://{shown_host}:{shown_port}/cockpit/ (logins: liucun "
            "web-users add). Ctrl-C stops it.",
            highlight=False,
        )
        serve(
            ws,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            build=create_service,
            factory="liucun.web:service_from_environment",
        )
    console.print("Stopped.")
