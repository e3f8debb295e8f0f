"""Internal actions on SQLite and PostgreSQL: coupon issue (idempotent by the row's key;
the program's cap refused as coupon_cap), points award (reason, expiry, a replay books
nothing), temporary tier upgrade, tag set (latest value wins) and a service task with its
SLA; the events published to the warehouse once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import InvalidInput, SimulatedClock
from liucun.journeys._actions import ActionResult, execute_internal, publish_action_events
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import CouponCode, CustomerTag, OutboxMessage, ServiceTask
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
PROGRAM = """
name: test
currency: CNY
timezone: Asia/Shanghai
tiers:
  - {name: basic, threshold: 0}
  - {name: gold, threshold: 1000}
coupons:
  - {id: ten, kind: value, amount: 10, validity_days: 14, per_customer: null}
  - {id: pct, kind: percent, amount: 15, per_customer: 1}
coupon_cap: {amount: 25, per: month}
"""


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        path = tmp_path / "program.yaml"
        path.write_text(PROGRAM, encoding="utf-8")
        loyalty.apply_program(w, path)
        yield w


def row(ws: Workspace, key: str, user: str, channel: str, **payload: Any) -> OutboxMessage:
    with ws.state.write() as s:
        enqueue(
            s,
            [
                Outgoing(
                    key=key,
                    user_id=user,
                    channel=channel,
                    journey="winback",
                    node="n",
                    payload=payload,
                )
            ],
            now=ws.clock.now(),
        )
    with ws.state.read() as s:
        return s.scalar(select(OutboxMessage).where(OutboxMessage.key == key))


def count(ws: Workspace, model: Any) -> int:
    with ws.state.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_coupon_issue_is_idempotent_and_the_program_cap_is_a_refusal(ws: Workspace) -> None:
    a = row(ws, "j:1", "u1", "coupon", coupon_id="ten")
    first = execute_internal(ws, a)
    assert first.ok and first.reference
    assert execute_internal(ws, a) == first  # same code, nothing new
    assert count(ws, CouponCode) == 1
    assert execute_internal(ws, row(ws, "j:2", "u1", "coupon", coupon_id="ten")).ok
    # 20 of 25 used this month: a third 10 would make 30
    third = execute_internal(ws, row(ws, "j:3", "u1", "coupon", coupon_id="ten"))
    assert third == ActionResult(False, detail="coupon_cap", refused=True, message=third.message)
    assert "cap" in (third.message or "")
    assert count(ws, CouponCode) == 2


def test_points_award_with_reason_and_expiry(ws: Workspace) -> None:
    r = row(ws, "j:p", "u1", "points", points=150, valid_days=30, timezone="Asia/Shanghai")
    ws.clock.advance(timedelta(days=1))  # executed a day after it was queued
    assert execute_internal(ws, r).ok
    ws.clock.advance(timedelta(days=1))
    assert execute_internal(ws, r).ok  # a retry books nothing new
    assert loyalty.account(ws, "u1").balance == 150
    # 30 days from when it was queued (2 March 10:00 Shanghai) to the end of that day:
    # 2 April 00:00 local = 1 April 16:00 UTC
    ws.clock.set(datetime(2026, 4, 1, 16, tzinfo=UTC))
    assert loyalty.expire(ws, as_of=datetime(2026, 4, 1, 15, 59, tzinfo=UTC)).accounts == 0
    loyalty.expire(ws, as_of=datetime(2026, 4, 1, 16, tzinfo=UTC))
    assert loyalty.account(ws, "u1").balance == 0
    entries = loyalty.account(ws, "u1").entries
    assert entries[0].reason == "journey winback"


def test_tier_boost_until_days_after_queueing(ws: Workspace) -> None:
    r = row(ws, "j:t", "u1", "tier", tier="gold", days=30, program="default")
    result = execute_internal(ws, r)
    assert result.ok and result.reference.startswith("gold until 2026-04-01T02:00")
    ws.clock.advance(timedelta(hours=3))
    assert execute_internal(ws, r) == result  # the replay matches the first


def test_tag_set_latest_value_wins(ws: Workspace) -> None:
    assert execute_internal(ws, row(ws, "j:g1", "u1", "tag", tag="vip", value="silver")).ok
    assert execute_internal(ws, row(ws, "j:g2", "u1", "tag", tag="vip", value="gold")).ok
    with ws.state.read() as s:
        tags = s.scalars(select(CustomerTag)).all()
        assert [(t.user_id, t.tag, t.value, t.source) for t in tags] == [
            ("u1", "vip", "gold", "journey:winback")
        ]
    events = ws.table("events").filter(lambda t: t.event_type == "tag_set").to_pandas()
    assert sorted(events.event_id) == ["tag_set:j:g1", "tag_set:j:g2"]


@pytest.mark.parametrize(
    ("payload", "hours"),
    [
        ({}, 24),
        ({"customer_type": "b2b"}, 2),
        ({"account_id": "ACME"}, 2),
        ({"sla_hours": 6, "customer_type": "b2b"}, 6),
    ],
)
def test_task_sla_defaults(ws: Workspace, payload: dict[str, Any], hours: int) -> None:
    r = row(ws, "j:task", "u1", "task", queue="vip", summary="call them", **payload)
    result = execute_internal(ws, r, publish=False)
    assert result.ok and execute_internal(ws, r, publish=False) == result
    with ws.state.read() as s:
        task = s.scalar(select(ServiceTask))
        assert task.sla_due_at == T0 + timedelta(hours=hours)
        assert (task.queue, task.summary, task.status, task.journey) == (
            "vip",
            "call them",
            "open",
            "winback",
        )
    assert count(ws, ServiceTask) == 1


def test_events_published_once_in_a_batch(ws: Workspace) -> None:
    rows = [
        row(ws, "j:a", "u1", "task", summary="x"),
        row(ws, "j:b", "u2", "tag", tag="vip", value="1"),
    ]
    for r in rows:
        execute_internal(ws, r, publish=False)
    assert publish_action_events(ws, rows) == 2
    assert publish_action_events(ws, rows) == 2  # handed again; ingest keeps one copy
    ev = ws.table("events").to_pandas()
    assert sorted(ev.event_id) == ["service_task_created:j:a", "tag_set:j:b"]


def test_missing_argument_names_the_field(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="'coupon_id'"):
        execute_internal(ws, row(ws, "j:x", "u1", "coupon"))
    with pytest.raises(InvalidInput, match="not an internal channel"):
        execute_internal(ws, row(ws, "j:y", "u1", "email"))
