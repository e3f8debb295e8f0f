"""A small simulated shop with everything the cockpit shows, built as a user would (the
CLI, the library), and helpers to drive the cockpit: a signed-in TestClient and a real
uvicorn server on a free loopback port in a thread.

The shop: 1,500 simulated b2c customers over a year, trained and scored churn/value
models, the example loyalty program accrued, the example journeys ``winback_risk``
(approved and active) and ``inactive_push_coupon`` (a draft waiting for approval), a
measured journey ``winback`` with enrolments a month and a half before the data end
(tests/journeys/world_support.py), three alerts (one per level) and three service
tasks, and one login per role.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from typer.testing import CliRunner

from journeys.world_support import enrol as measured_journey
from liucun.cli import app as cli_app
from liucun.journeys._tasks import open_task
from liucun.simulate import simulate_shop
from liucun.state import Alert, Journey, JourneyVersion
from liucun.workspace import Workspace, open_workspace

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"
PASSWORD = "correct horse battery"
#: One login per role: name → role.
LOGINS = {"ada": "admin", "ana": "analyst", "oli": "operator"}
#: The shop's data end (simulate_shop's default end).
END = datetime(2026, 9, 30, tzinfo=UTC)
#: Targets in liucun.toml: with this shop repurchase meets its target, 30-day repeat
#: purchase misses it by less than the tolerance, churn misses by more.
TARGETS = """
[targets]
repurchase_rate = 0.45
repeat_30d = 0.25
churn_rate = 0.40
ltv_cac = 3.0
tolerance = 0.1
"""


def _cli(*args: str) -> None:
    res = CliRunner().invoke(cli_app, list(args))
    assert res.exit_code == 0, f"{args}: {res.output}"


def build_cockpit_shop(root: Path) -> Path:
    """Make the shop described in the module doc under ``root``; returns the workspace."""
    simulate_shop(root / "sim", preset="b2c", users=1_500, days=365, seed=11)
    ws = root / "ws"
    w = ["-w", str(ws)]
    now = ["--now", END.isoformat(), *w]
    _cli("init", str(ws))
    _cli(*w, "ingest", "simulated", str(root / "sim"))
    _cli(*w, "train", "--threads", "1")
    _cli(*w, "score", "--top", "0")
    with (ws / "liucun.toml").open("a", encoding="utf-8") as f:
        f.write(TARGETS)
    _cli(*now, "loyalty", "program", "apply", str(EXAMPLES / "loyalty" / "program.yaml"))
    _cli(*now, "loyalty", "accrue")
    _cli(*now, "loyalty", "tiers", "review")
    for name in ("winback_risk", "inactive_push_coupon"):
        _cli(*now, "journeys", "apply", str(EXAMPLES / "journeys" / f"{name}.yaml"))
    _cli(*now, "journeys", "approve", "winback_risk", "--by", "setup")
    _cli(*now, "journeys", "activate", "winback_risk")
    for name, role in LOGINS.items():
        res = CliRunner().invoke(
            cli_app, [*w, "web-users", "add", name, "--role", role, "--password-stdin"],
            input=PASSWORD + "\n",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    with open_workspace(ws) as opened:
        _operations(opened)
    return ws


def _operations(ws: Workspace) -> None:
    """The measured journey, alerts and service tasks."""
    ev = ws.events()
    buyers = sorted(
        ev.filter(ev.event_type == "order").select("user_id").distinct().to_pyarrow()
        .column(0).to_pylist()
    )  # fmt: skip
    at = END - timedelta(days=45)
    measured_journey(ws, "winback", buyers[:600], at=at)
    with ws.state.write() as s:  # listed like an applied journey (world_support writes none)
        row = s.scalar(select(JourneyVersion).where(JourneyVersion.journey == "winback"))
        definition = json.loads(row.definition)
        definition["nodes"][1]["template"] = {
            "subject": {"en": "We miss you"},
            "body": {"en": "Come back: {{ unsubscribe_url }}"},
        }
        row.definition = json.dumps(definition, sort_keys=True)  # a full, valid definition
        s.add(Journey(name="winback", status="paused", latest_version=1, active_version=1,
                      created_at=at, updated_at=at))  # fmt: skip
        s.add_all(
            [
                Alert(key="retention:region:north", monitor="retention_drop", level=1,
                      scope="region=north", message="30-day repeat purchase in north fell "
                      "7.2 % below its seasonal baseline", value=0.21, baseline=0.226,
                      status="open", raised_at=END - timedelta(hours=5)),
                Alert(key="conversion:category:shoes", monitor="conversion_drop", level=2,
                      scope="category=shoes", message="Conversion of shoes fell 11 % below "
                      "its baseline; owner: category team", value=0.031, baseline=0.035,
                      status="open", raised_at=END - timedelta(hours=3)),
                Alert(key=f"risk:{buyers[0]}", monitor="high_value_at_risk", level=3,
                      subject=buyers[0], message=f"High-value customer {buyers[0]} crossed "
                      "churn risk 0.7", value=0.74, baseline=0.7, status="open",
                      raised_at=END - timedelta(hours=1)),
            ]
        )  # fmt: skip
        for key, user, queue, hours, summary, ago, account in (
            ("t1", buyers[1], "retention", 24, "Call a valuable customer who did not come back",
             30, None),
            ("t2", buyers[2], "retention", 24, "Follow up a win-back coupon", 20, None),
            ("t3", buyers[3], "b2b", 2, "Replenishment reminder unanswered", 0, "A-17"),
        ):  # fmt: skip
            open_task(s, key=key, user_id=user, queue=queue, sla_hours=hours, summary=summary,
                      now=END - timedelta(hours=ago), account_id=account)  # fmt: skip


# -- driving the cockpit --------------------------------------------------------------------


def make_client(app: Any) -> Any:
    """A Starlette TestClient (imported here: its module warns about httpx on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StarletteDeprecationWarning: httpx vs httpx2
        from fastapi.testclient import TestClient
    return TestClient(app, follow_redirects=True)


def csrf_of(html: str) -> str:
    """The CSRF token of a rendered page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: Any, name: str, password: str = PASSWORD, prefix: str = "/cockpit") -> Any:
    """Sign ``name`` in through the form; returns the response after the redirect."""
    page = client.get(f"{prefix}/login")
    return client.post(
        f"{prefix}/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(page.text)},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` on uvicorn at 127.0.0.1 on a free port in a thread; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 15 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- driving it in Chromium ------------------------------------------------------------------

#: Debian's Chromium under Playwright (never ``playwright install``).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: A laptop's and a phone's width, in CSS pixels.
WIDTHS = {"laptop": 1366, "phone": 390}


def screenshot_dir(kind: str) -> Path:
    """Where screenshots of ``kind`` go: ``$LIUCUN_ARTIFACTS/<kind>`` (default
    ``artifacts/screenshots/<kind>`` in the repository; CI keeps the folder)."""
    root = Path(os.environ.get("LIUCUN_ARTIFACTS") or REPO / "artifacts" / "screenshots")
    out = root / kind
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_page(browser: Any, width: int, live: str, problems: list[str]) -> Any:
    """A page of a fresh context that records page errors, console errors and any
    request that would leave the server (and refuses it)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    page = context.new_page()
    host = urlparse(live).netloc

    def only_the_server(route: Any) -> None:
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            problems.append(f"request off the server: {route.request.url}")
            route.abort()

    page.route("**/*", only_the_server)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    return page


def sign_in_page(page: Any, live: str, name: str, password: str = PASSWORD) -> None:
    """Open the cockpit (sent to the login form), sign in as ``name``, land on the overview."""
    page.goto(f"{live}/")
    assert "/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click(".login button[type=submit]")
    page.wait_for_url(f"{live}/")
