"""kill -9 of a delivery worker (SQLite here, PostgreSQL in
test_delivery_kill_postgres.py): a worker subprocess sends
webhook rows (and some SMTP rows) to real local receivers and is SIGKILLed at random
moments, then restarted, until all is done. Nothing is lost, the deduplicating webhook
receiver takes every key exactly once, and no e-mail goes out twice (a row in doubt is
marked unknown instead). Several workers at once on PostgreSQL never send a row twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from delivery_receivers import (
    SECRET,
    HttpReceiver,
    Mailbox,
    add_rows,
    delivery_workspace,
    http_receiver,
    smtp_server,
)

import liucun
from liucun.core import SystemClock
from liucun.journeys import list_outbox, set_contact
from liucun.workspace import open_workspace

WORKER = """
import sys, time
from datetime import timedelta
from liucun.workspace import open_workspace
from liucun.journeys import count_outbox, deliver_due

path, worker_id, restarted, limit = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
ws = open_workspace(path)
# a restarted lone worker knows its predecessor is dead: its claims are in doubt at once
lease = timedelta(0) if restarted else None
while True:
    run = deliver_due(ws, worker_id=worker_id, limit=limit, lease=lease)
    lease = None
    if run.touched == 0:
        counts = count_outbox(ws)
        if not counts.get("pending") and not counts.get("sending"):
            break
        time.sleep(0.05)
print("done", flush=True)
"""


def _env() -> dict[str, str]:
    src = str(Path(liucun.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


def _start(path: Path, worker_id: str, *, restarted: bool, limit: int = 20) -> subprocess.Popen:
    """A worker process; its standard error goes to ``<path>/../<worker_id>.err``."""
    with (path.parent / f"{worker_id}.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), worker_id, str(int(restarted)), str(limit)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait(proc: subprocess.Popen, path: Path, worker_id: str) -> None:
    proc.wait(timeout=180)
    errors = (path.parent / f"{worker_id}.err").read_text(errors="replace")
    assert proc.returncode == 0, errors[-3000:]


def _progress(rec: HttpReceiver, box: Mailbox) -> int:
    return len(rec.hits) + len(box.messages)


def test_sigkill_at_random_moments_loses_nothing_and_sends_no_email_twice(tmp_path: Path) -> None:
    # SQLite here; PostgreSQL in test_delivery_kill_postgres.py (each file stays short)
    outcome = kill_scenario(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite'}")
    assert outcome == {"webhooks_sent": 300, "emails_settled": 30, "kills": 3}


def kill_scenario(tmp_path: Path, state_url: str) -> dict[str, int]:
    """300 webhooks and 30 e-mails sent by a worker process SIGKILLed three times at
    random moments and restarted, until everything is done; then the checks."""
    rng = random.Random(12)
    n_hooks, n_mails = 300, 30
    # a short pause per request so that kills land while messages are in flight
    rec = HttpReceiver(answer=lambda key, n: (200, {}, "{}", 0.004))
    with http_receiver(rec), smtp_server() as box:
        channels = {
            "webhook": {"url": rec.url, "secret": SECRET, "timeout_s": 2.0},
            "email": {"host": "127.0.0.1", "port": box.port, "sender": "Shop <news@shop.test>"},
        }
        ws = delivery_workspace(tmp_path / "ws", state_url, SystemClock(), channels)
        for i in range(n_mails):
            set_contact(ws, f"u{i}", "email", f"buyer{i}@example.test")
        hooks = add_rows(ws, n_hooks, prefix="hook")
        mails = add_rows(ws, n_mails, channel="email", prefix="mail")
        ws.close()

        kills = 0
        restarted = False
        for _round in range(8):
            proc = _start(tmp_path / "ws", f"w{_round}", restarted=restarted)
            restarted = True
            if kills < 3:
                before = _progress(rec, box)
                target = before + rng.randint(15, 70)
                deadline = time.monotonic() + 30
                while _progress(rec, box) < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the worker made no progress"
                    time.sleep(rng.uniform(0.0, 0.01))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    continue
            _wait(proc, tmp_path / "ws", f"w{_round}")
            break
        assert kills == 3

        with open_workspace(tmp_path / "ws") as ws:
            rows = {r["key"]: r for r in list_outbox(ws)}
    # webhooks: every one sent, the receiver took each key exactly once (deduplicated)
    assert {rows[k]["status"] for k in hooks} == {"sent"}
    assert rec.accepted == set(hooks)
    assert all(h.verified for h in rec.hits)
    assert set(rec.raw) == set(hooks)
    # e-mail: a sent row arrived exactly once; an unknown one at most once; none twice
    arrived = box.by_id()
    assert max(arrived.values()) == 1
    statuses = Counter(rows[k]["status"] for k in mails)
    assert set(statuses) <= {"sent", "unknown"}
    for key in mails:
        got = arrived.get(f"<{key}@liucun>", 0)
        if rows[key]["status"] == "sent":
            assert got == 1, key
        else:
            assert got <= 1, key
    assert statuses["sent"] + statuses["unknown"] == n_mails
    return {
        "webhooks_sent": sum(rows[k]["status"] == "sent" for k in hooks),
        "emails_settled": statuses["sent"] + statuses["unknown"],
        "kills": kills,
    }
