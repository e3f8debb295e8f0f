"""More nodes on SQLite and PostgreSQL: a wait until the birthday (this year's or next
year's, at the local hour), a wait for a profile filter, the uplift policy's offer per
customer, points / webhook / tier payloads, and the journey's cursor stored with the
enrolment so a re-evaluation after a crash adds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from journey_support import (
    advance,
    day,
    engine_workspace,
    enrol,
    enrolments,
    events,
    install_journey,
    outbox,
    spec,
    steps,
    users,
)

from liucun.journeys._engine import check_waits, read_cursor
from liucun.journeys._triggers import cursor_name
from liucun.journeys._worker import work_once
from liucun.workspace import Workspace

T = day(2026, 3, 1, 12)
NO_CONTROL = {"share": 0.0, "allow_zero": True}


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with engine_workspace(tmp_path / "ws", state_url, T) as w:
        yield w


def test_wait_until_birthday_at_local_time(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "soon", "timezone": "Asia/Shanghai", "birthday": date(1990, 3, 5)},
            {"user_id": "past", "timezone": "Asia/Shanghai", "birthday": date(1990, 2, 1)},
            {"user_id": "today", "country": "DE", "birthday": date(1990, 3, 1)},
            {"user_id": "none"},
        ],
    )
    j = spec(
        name="bday",
        control=NO_CONTROL,
        nodes=[
            {
                "id": "w",
                "type": "wait",
                "until_property": "birthday",
                "until_time": "10:00",
                "next": "t",
            },
            {"id": "t", "type": "tag", "tag": "bday", "next": None},
        ],
    )
    enrol(ws, j, [(u, "1", T) for u in ("soon", "past", "today", "none")])
    advance(ws, T)
    by = {e.user_id: e for e in enrolments(ws, "bday")}
    assert by["soon"].wake_at == day(2026, 3, 5, 2)  # 10:00 in Shanghai
    assert by["past"].wake_at == day(2027, 2, 1, 2)  # next year
    # today 10:00 Berlin (09:00 UTC) has passed at 12:00 UTC: next year's
    assert by["today"].wake_at == day(2027, 3, 1, 9)
    # no birthday: no wait, straight on
    assert by["none"].status == "done"
    assert {s.reason for s in steps(ws, "waited") if s.user_id == "none"} == {"no_wait"}


def test_wait_for_a_profile_filter(ws: Workspace) -> None:
    users(ws, [{"user_id": "a"}, {"user_id": "b"}])
    j = spec(
        name="wff",
        control=NO_CONTROL,
        nodes=[
            {
                "id": "w",
                "type": "wait_for",
                "filter": "aov >= 50",
                "timeout": "3d",
                "on_event": "t",
                "on_timeout": None,
            },
            {"id": "t", "type": "tag", "tag": "big", "next": None},
        ],
    )
    enrol(ws, j, [("a", "1", T), ("b", "1", T)])
    advance(ws, T)
    assert check_waits(ws, T + timedelta(hours=1)) == 0
    ws.clock.set(T + timedelta(days=1))
    events(
        ws, [{"user_id": "a", "event_type": "order", "ts": T + timedelta(hours=2), "revenue": 80.0}]
    )
    assert check_waits(ws, T + timedelta(days=1)) == 1
    advance(ws, T + timedelta(days=1))
    advance(ws, T + timedelta(days=4))
    by = {e.user_id: e for e in enrolments(ws, "wff")}
    assert by["a"].status == by["b"].status == "done"
    assert [json.loads(o.payload)["tag"] for o in outbox(ws)] == ["big"]
    assert {s.user_id for s in steps(ws, "timeout")} == {"b"}


def test_offer_by_the_uplift_policy_and_action_payloads(ws: Workspace) -> None:
    users(ws, [{"user_id": "a", "customer_type": "b2c"}])
    j = spec(
        name="pay",
        control=NO_CONTROL,
        nodes=[
            {
                "id": "c",
                "type": "coupon",
                "choose": ["ten_off", "free_ship"],
                "policy": "uplift",
                "next": "p",
            },
            {"id": "p", "type": "points", "points": 50, "valid_days": 30, "next": "h"},
            {
                "id": "h",
                "type": "webhook",
                "url": "http://127.0.0.1:9/x",
                "body": {"kind": "winback"},
                "next": "u",
            },
            {"id": "u", "type": "tier_upgrade", "tier": "gold", "days": 14, "next": None},
        ],
    )
    enrol(ws, j, [("a", "1", T)])
    advance(ws, T)
    by = {o.node: (o.channel, json.loads(o.payload)) for o in outbox(ws)}
    # the policy's stub picks the first offer; the real one ranks by uplift × margin − cost
    assert by["c"][0] == "coupon" and by["c"][1]["coupon_id"] == "ten_off"
    assert by["c"][1]["policy"] == "uplift"
    assert by["p"][0] == "points" and (by["p"][1]["points"], by["p"][1]["valid_days"]) == (50, 30)
    assert by["h"][0] == "webhook" and by["h"][1]["body"] == {"kind": "winback", "user_id": "a"}
    assert by["u"][0] == "tier" and (by["u"][1]["tier"], by["u"][1]["days"]) == ("gold", 14)
    assert all(p["purpose"] == "marketing" and p["timezone"] == "UTC" for _, p in by.values())


def test_cursor_is_stored_with_the_enrolments_and_replays_add_nothing(ws: Workspace) -> None:
    install_journey(ws, spec(name="cur"))
    ws.clock.set(T + timedelta(hours=1))
    events(
        ws,
        [
            {"user_id": f"u{i}", "event_type": "signup", "ts": T + timedelta(minutes=i)}
            for i in range(10)
        ],
    )
    first = work_once(ws, now=T + timedelta(hours=1))
    assert first.enrolled == 10
    stored = json.loads(read_cursor(ws, cursor_name("cur")) or "{}")
    assert stored["evaluated_at"] == (T + timedelta(hours=1)).isoformat()
    # a crash before the cursor moved: the same events are read again, nothing is added
    from liucun.journeys._engine import _store_cursor

    with ws.state.write() as s:
        _store_cursor(s, cursor_name("cur"), json.dumps({"since": T.isoformat()}), T)
    again = work_once(ws, now=T + timedelta(hours=2))
    assert again.entries == 10 and again.enrolled == 0
    assert len(enrolments(ws, "cur")) == 10
    assert len(steps(ws, "entered")) == 10


def test_wait_for_an_event_matching_where(ws: Workspace) -> None:
    j = spec(
        name="wfw",
        control=NO_CONTROL,
        nodes=[
            {
                "id": "w",
                "type": "wait_for",
                "event": "order",
                "where": "revenue >= 100",
                "timeout": "3d",
                "on_event": "t",
                "on_timeout": None,
            },
            {"id": "t", "type": "tag", "tag": "big", "next": None},
        ],
    )
    enrol(ws, j, [("a", "1", T), ("b", "1", T)])
    advance(ws, T)
    ws.clock.set(T + timedelta(hours=6))
    events(
        ws,
        [
            {"user_id": "a", "event_type": "order", "ts": T + timedelta(hours=1), "revenue": 20.0},
            {"user_id": "b", "event_type": "order", "ts": T + timedelta(hours=2), "revenue": 150.0},
        ],
    )
    assert check_waits(ws, T + timedelta(hours=6)) == 1
    advance(ws, T + timedelta(hours=6))
    by = {e.user_id: e for e in enrolments(ws, "wfw")}
    assert (by["a"].status, by["b"].status) == ("waiting", "done")
    (arrived,) = [s for s in steps(ws, "waited") if s.reason == "event"]
    assert arrived.user_id == "b" and arrived.at == T + timedelta(hours=2)
