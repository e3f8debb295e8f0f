"""``liucun serve`` as a real process: the loader in one process (of two workers), events
loaded once, and a clean stop (exit 0) on SIGTERM and on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import event, free_port

from liucun.api import create_key
from liucun.workspace import Workspace, open_workspace

pytestmark = pytest.mark.slow


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"liucun serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("liucun serve did not become ready")


@pytest.mark.parametrize(
    ("workers", "stop"), [(2, signal.SIGTERM), (1, signal.SIGINT)], ids=["2-sigterm", "1-sigint"]
)
def test_serve_loads_once_and_stops_cleanly_on_a_signal(
    api_ws: Workspace, tmp_path: Path, workers: int, stop: signal.Signals
) -> None:
    key = create_key(api_ws, name="bench", scopes=["ingest"], rate_per_s=1000).key
    ws_path = api_ws.path
    api_ws.close()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "LIUCUN_SERVE__LOADER_INTERVAL_S": "0.3",
    }
    cmd = [sys.executable, "-c", "from liucun.cli import main; main()"]
    args = ["-w", str(ws_path), "serve", "--port", str(port), "--workers", str(workers)]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*cmd, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        headers = {"Authorization": f"Bearer {key}"}
        accepted = 0
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for start in (0, 200, 100):
                batch = [event(i) for i in range(start, start + 200)]
                r = client.post("/v1/events", json={"events": batch})
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"]
            deadline = time.monotonic() + 60
            status = client.get("/v1/events/inbox").json()
            while status["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
                status = client.get("/v1/events/inbox").json()
        assert accepted == 400
        assert status == {"pending": 0, "loaded": 400}
    finally:
        proc.send_signal(stop)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "Stopped." in output
    pid = int((ws_path / "serve-loader.lock").read_text().strip())
    if workers > 1:
        assert pid != proc.pid  # a worker process held it, not the supervisor
    else:
        assert pid == proc.pid
    with open_workspace(ws_path) as ws:
        events = ws.warehouse.engine_table("events")
        assert int(events.count().to_pyarrow().as_py()) == accepted
