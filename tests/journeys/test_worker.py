"""``liucun worker``: two worker processes on PostgreSQL advance the same due set (every
enrolment walked exactly once, nothing lost), ``--once`` does the due work and exits 0
with a summary, and the loop acts on a new event within a minute and stops cleanly on
SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from journey_support import (
    T0,
    engine_workspace,
    enrol,
    enrolments,
    events,
    install_journey,
    outbox,
    spec,
)
from sqlalchemy import func, select

from liucun.core import SimulatedClock
from liucun.state import JourneyStep
from liucun.workspace import open_workspace
from state_backends import postgres_schema_url

SRC = str(Path(__file__).parents[2] / "src")


def _cli(
    ws_path: Path, *args: str, start_at: float | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``liucun -w WS ARGS`` in a new process (started at wall time ``start_at``)."""
    wait = f"import time\nwhile time.time() < {start_at!r}: time.sleep(0.005)\n" if start_at else ""
    code = (
        wait
        + "import sys\nfrom liucun.cli import main\nsys.argv = ['liucun'] + sys.argv[1:]\nmain()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, "-w", str(ws_path), *args],
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_on_postgresql_walk_each_enrolment_once(tmp_path: Path) -> None:
    n = 1_200
    with postgres_schema_url() as url:
        path = tmp_path / "ws"
        with engine_workspace(path, url) as ws:
            enrol(ws, spec(name="par"), [(f"u{i}", "1", T0) for i in range(n)])
        now = (T0 + timedelta(minutes=5)).isoformat()
        start = time.time() + 4.0
        procs = [
            _cli(
                path.parent / "ws",
                "--now",
                now,
                "worker",
                "--once",
                "--id",
                f"w{i}",
                "--format",
                "json",
                start_at=start,
                env={"LIUCUN_JOURNEYS__BATCH_SIZE": "30"},
            )
            for i in (1, 2)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        walked = [json.loads(out.strip().splitlines()[-1])["walked"] for out, _ in outs]
        assert sum(walked) == n  # nobody walked an enrolment the other one walked
        assert min(walked) > 0  # both took part
        with open_workspace(path, clock=SimulatedClock(T0)) as ws:
            rows = enrolments(ws, "par")
            assert len(rows) == n and {e.status for e in rows} == {"done"}
            assert all(e.claimed_by is None for e in rows)
            with ws.state.read() as s:
                # the walk's steps (delivery adds its own: sent, suppressed, held …)
                walk = JourneyStep.kind.notin_(["sent", "suppressed", "held", "deferred"])
                assert s.scalar(select(func.count()).select_from(JourneyStep).where(walk)) == 3 * n
            box = outbox(ws)
            treated = sum(e.arm == "treatment" for e in rows)
            assert len(box) == treated == len({o.key for o in box})


def test_worker_once_prints_a_summary_and_exits_zero(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liucun.cli import app

    path = tmp_path / "ws"
    with engine_workspace(path, f"sqlite:///{tmp_path / 's.sqlite'}") as ws:
        install_journey(ws, spec(name="hello"))
        ws.clock.set(T0 + timedelta(hours=1))
        events(
            ws,
            [
                {"user_id": f"u{i}", "event_type": "signup", "ts": T0 + timedelta(minutes=i)}
                for i in range(30)
            ],
        )
    now = (T0 + timedelta(hours=1)).isoformat()
    r = CliRunner().invoke(app, ["--now", now, "-w", str(path), "worker", "--once"])
    assert r.exit_code == 0, r.output
    assert "30 enrolled" in r.output and "delivery:" in r.output
    again = CliRunner().invoke(
        app, ["--now", now, "-w", str(path), "worker", "--once", "--format", "json"]
    )
    assert again.exit_code == 0
    assert json.loads(again.output.strip().splitlines()[-1])["enrolled"] == 0


def test_the_worker_loop_acts_on_a_new_event_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with engine_workspace(path, f"sqlite:///{tmp_path / 's.sqlite'}") as ws:
        install_journey(ws, spec(name="live"))
    now = (T0 + timedelta(hours=1)).isoformat()
    proc = _cli(path, "--now", now, "worker", "--poll", "0.5", "--id", "loop")
    try:
        time.sleep(3)
        with open_workspace(path, clock=SimulatedClock(T0 + timedelta(hours=1))) as ws:
            events(
                ws, [{"user_id": "new", "event_type": "signup", "ts": T0 + timedelta(minutes=30)}]
            )
        deadline = time.monotonic() + 60
        found = []
        while time.monotonic() < deadline and not found:
            with open_workspace(path, clock=SimulatedClock(T0)) as ws:
                found = [e for e in enrolments(ws, "live") if e.status == "done"]
            time.sleep(0.5)
        assert [e.user_id for e in found] == ["new"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after" in out


@pytest.mark.parametrize("n", [1])
def test_summary_line_names_every_count(n: int) -> None:
    from liucun.journeys._worker import WorkSummary

    s = WorkSummary(
        now=T0, entries=5, enrolled=4, control=n, walked=4, outbox=3, steps={"entered": 4}
    )
    line = s.line()
    assert "4 enrolled (1 control)" in line and "entered 4" in line and "3 outbox rows" in line
