"""Several delivery workers at once on PostgreSQL (worker subprocesses claiming with
FOR UPDATE SKIP LOCKED) never send a row twice: the receivers count raw hits by key."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from delivery_receivers import (
    SECRET,
    add_rows,
    delivery_workspace,
    http_receiver,
    smtp_server,
)
from sqlalchemy import select
from test_delivery_kill import _start, _wait

from liucun.core import SystemClock
from liucun.journeys import list_outbox, set_contact
from liucun.state import DeliveryEvent
from liucun.workspace import open_workspace


@pytest.mark.postgres
def test_four_workers_at_once_never_send_a_row_twice(tmp_path: Path) -> None:
    from state_backends import postgres_schema_url

    workers, n = 4, 200
    with postgres_schema_url() as url, http_receiver() as rec, smtp_server() as box:
        channels = {
            "webhook": {"url": rec.url, "secret": SECRET},
            "email": {"host": "127.0.0.1", "port": box.port, "sender": "news@shop.test"},
        }
        ws = delivery_workspace(tmp_path / "ws", url, SystemClock(), channels)
        for i in range(20):
            set_contact(ws, f"u{i}", "email", f"buyer{i}@example.test")
        hooks = add_rows(ws, n, prefix="hook")
        mails = add_rows(ws, 20, channel="email", prefix="mail")
        ws.close()
        procs = [
            _start(tmp_path / "ws", f"w{i}", restarted=False, limit=10) for i in range(workers)
        ]
        for i, p in enumerate(procs):
            _wait(p, tmp_path / "ws", f"w{i}")
        with open_workspace(tmp_path / "ws") as ws:
            rows = list_outbox(ws)
            with ws.state.read() as s:
                details = [json.loads(d) for d in s.scalars(select(DeliveryEvent.detail))]
    assert Counter(r["status"] for r in rows) == {"sent": n + 20}
    assert rec.raw == dict.fromkeys(hooks, 1)
    assert box.by_id() == {f"<{k}@liucun>": 1 for k in mails}
    # the work was shared between the workers
    by_worker = Counter(d["worker"] for d in details)
    assert len(by_worker) >= 2 and sum(by_worker.values()) == n + 20
