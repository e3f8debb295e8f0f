"""Each trigger type on hand-made users and events: who enters, with which key and at
which instant, and that the cursor makes each evaluation read only what is new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from journey_support import day, engine_workspace, events, spec, users

from liucun.journeys._triggers import Position, evaluate, is_due
from liucun.workspace import Workspace

SINCE = day(2026, 3, 1)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with engine_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 's.sqlite'}", SINCE) as w:
        yield w


def run(ws: Workspace, trigger: dict, now: datetime, pos: Position | None = None, **kw):  # type: ignore[no-untyped-def]
    ws.clock.set(now, allow_backwards=True)
    found = evaluate(ws, spec(trigger=trigger, **kw), pos or Position(since=SINCE), now)
    rows = sorted(found.entries.to_pylist(), key=lambda r: (r["user_id"], r["key"]))
    return rows, found.position


def test_an_event_loaded_after_an_evaluation_of_an_empty_warehouse_is_read(
    ws: Workspace,
) -> None:
    """The first evaluation saw no event (no high-water mark); an event that happened
    before it but was loaded after it is still new (it was missed before)."""
    trig = {"type": "event", "event": "signup"}
    rows, pos = run(ws, trig, day(2026, 3, 1, 13))
    assert rows == [] and pos.hw is None
    ws.clock.set(day(2026, 3, 1, 13))
    events(ws, [{"user_id": "late", "event_type": "signup", "ts": day(2026, 3, 1, 12, 30)}])
    rows, pos = run(ws, trig, day(2026, 3, 1, 13, 1), pos)
    assert [r["user_id"] for r in rows] == ["late"] and pos.hw == day(2026, 3, 1, 13)
    rows, _ = run(ws, trig, day(2026, 3, 1, 13, 2), pos)
    assert rows == []  # and once only


def test_event_trigger_keys_filters_and_reads_only_new_events(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 2))
    events(
        ws,
        [
            {
                "user_id": "u0",
                "event_type": "order",
                "ts": day(2026, 2, 20),
                "order_id": "o0",
                "revenue": 5.0,
            },
            {
                "user_id": "u1",
                "event_type": "order",
                "ts": day(2026, 3, 1, 9),
                "order_id": "o1",
                "revenue": 50.0,
                "properties": {"channel_hint": "app", "items": 3},
            },
            {
                "user_id": "u2",
                "event_type": "order",
                "ts": day(2026, 3, 1, 10),
                "order_id": "o2",
                "revenue": 5.0,
                "properties": {"items": 1},
            },
            {"user_id": "u2", "event_type": "visit", "ts": day(2026, 3, 1, 11)},
        ],
    )
    trig = {
        "type": "event",
        "event": "order",
        "key": "order_id",
        "where": "revenue >= 10 or items >= 3",
    }
    rows, pos = run(ws, trig, day(2026, 3, 2))
    # u0's order is before the journey started; u2's is too small
    assert [(r["user_id"], r["key"]) for r in rows] == [("u1", "o1")]
    assert rows[0]["at"] == day(2026, 3, 1, 9)
    ctx = json.loads(rows[0]["context"])
    assert ctx["event_type"] == "order" and ctx["order_id"] == "o1" and ctx["revenue"] == 50.0
    # a property filter with text
    rows_app, _ = run(
        ws, {"type": "event", "event": "order", "where": "channel_hint == 'app'"}, day(2026, 3, 2)
    )
    assert [r["user_id"] for r in rows_app] == ["u1"]
    # the next evaluation reads only events after the cursor
    ws.clock.set(day(2026, 3, 3))
    events(
        ws,
        [
            {
                "user_id": "u3",
                "event_type": "order",
                "ts": day(2026, 3, 2, 12),
                "order_id": "o3",
                "revenue": 99.0,
            }
        ],
    )
    again, _ = run(ws, trig, day(2026, 3, 3), pos)
    assert [(r["user_id"], r["key"]) for r in again] == [("u3", "o3")]


def test_abandoned_cart_needs_no_order_in_the_same_session(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 2))
    s = lambda sid: {"session_id": sid}  # noqa: E731
    events(
        ws,
        [
            {
                "user_id": "a",
                "event_type": "add_to_cart",
                "ts": day(2026, 3, 1, 10),
                "properties": s("s1"),
            },
            {
                "user_id": "a",
                "event_type": "order",
                "ts": day(2026, 3, 1, 10, 30),
                "properties": s("s1"),
                "revenue": 9.0,
            },
            {
                "user_id": "b",
                "event_type": "add_to_cart",
                "ts": day(2026, 3, 1, 10),
                "properties": s("s2"),
            },
            {
                "user_id": "b",
                "event_type": "add_to_cart",
                "ts": day(2026, 3, 1, 10, 5),
                "properties": s("s2"),
            },
            {
                "user_id": "b",
                "event_type": "order",
                "ts": day(2026, 3, 1, 12),
                "properties": s("s9"),
                "revenue": 9.0,
            },
            {
                "user_id": "c",
                "event_type": "add_to_cart",
                "ts": day(2026, 3, 1, 11, 30),
                "properties": s("s3"),
            },
        ],
    )
    rows, _ = run(ws, {"type": "abandoned_cart", "after": "1h"}, day(2026, 3, 1, 12))
    # a bought in s1; b's order was another session: b abandoned s2 (one entry, last cart)
    # at 11:05; c's cart is only 30 minutes old
    assert [(r["user_id"], r["key"], r["at"]) for r in rows] == [
        ("b", "s2", day(2026, 3, 1, 11, 5))
    ]
    later, _ = run(
        ws,
        {"type": "abandoned_cart", "after": "1h"},
        day(2026, 3, 1, 13),
        Position(SINCE, evaluated_at=day(2026, 3, 1, 12)),
    )
    assert [(r["user_id"], r["key"]) for r in later] == [("c", "s3")]


def test_inactivity_counts_own_activity_only(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 10))
    events(
        ws,
        [
            {"user_id": "a", "event_type": "visit", "ts": day(2026, 3, 1, 8)},
            {"user_id": "a", "event_type": "message_sent", "ts": day(2026, 3, 2, 8)},  # the shop's
            {"user_id": "a", "event_type": "tier_changed", "ts": day(2026, 3, 3, 8)},  # liucun's
            {"user_id": "b", "event_type": "visit", "ts": day(2026, 3, 1, 8)},
            {"user_id": "b", "event_type": "order", "ts": day(2026, 3, 3, 9), "revenue": 3.0},
        ],
    )
    trig = {"type": "inactivity", "days": 3}
    rows, _ = run(ws, trig, day(2026, 3, 4, 12), Position(SINCE, evaluated_at=day(2026, 3, 3, 12)))
    assert [(r["user_id"], r["key"], r["at"]) for r in rows] == [
        ("a", "2026-03-01", day(2026, 3, 4, 8))
    ]
    rows, _ = run(ws, trig, day(2026, 3, 6, 12), Position(SINCE, evaluated_at=day(2026, 3, 4, 12)))
    assert [(r["user_id"], r["at"]) for r in rows] == [("b", day(2026, 3, 6, 9))]


def test_risk_crossed_upwards_only(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 5))
    scores = pa.table(
        {
            "user_id": ["a", "a", "b", "b", "c", "d"],
            "as_of": pa.array(
                [day(2026, 2, 1), day(2026, 3, 2)] * 2 + [day(2026, 3, 2), day(2026, 3, 2)],
                pa.timestamp("us", tz="UTC"),
            ),
            # what `liucun train` names its saved model; one row of another model
            "model": ["retention"] * 5 + ["other"],
            "model_version": ["1"] * 6,
            "churn_risk": [0.3, 0.7, 0.65, 0.8, 0.9, 0.2],
            "scored_at": pa.array([day(2026, 3, 3)] * 6, pa.timestamp("us", tz="UTC")),
        }
    )
    with ws.writing() as wh, wh.transaction() as tx:
        tx.append("scores", wh.read_arrow(_full_scores(scores), name="sc").drop("_line"))
    rows, pos = run(ws, {"type": "risk_crossed", "threshold": 0.6}, day(2026, 3, 5))
    # a crossed (0.3 → 0.7), b was above already, c has no earlier score, d is below
    assert [(r["user_id"], json.loads(r["context"])["churn_risk"]) for r in rows] == [
        ("a", 0.7),
        ("c", 0.9),
    ]
    assert pos.hw == day(2026, 3, 3)
    # by default any model's latest score counts; `model:` keeps one model's scores
    rows, _ = run(ws, {"type": "risk_crossed", "threshold": 0.1, "model": "other"}, day(2026, 3, 5))
    assert [r["user_id"] for r in rows] == ["d"]
    # the profile a journey's filters see carries the latest score, whichever model
    from liucun.journeys._profiles import profiles

    users(ws, [{"user_id": u} for u in ("a", "c", "d")])
    prof = profiles(ws, day(2026, 3, 5), ["a", "c", "d"], full=False).to_pylist()
    assert {p["user_id"]: p["churn_risk"] for p in prof} == {"a": 0.7, "c": 0.9, "d": 0.2}


def _full_scores(t: pa.Table) -> pa.Table:
    from liucun.schema import arrow_schema

    schema = arrow_schema("scores")
    cols = {}
    for f in schema:
        cols[f.name] = (
            t.column(f.name).cast(f.type)
            if f.name in t.column_names
            else pa.nulls(t.num_rows, f.type)
        )
    return pa.table(cols, schema=schema)


def test_service_failure_late_delivery_and_slow_ticket(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 3))
    events(
        ws,
        [
            {
                "user_id": "a",
                "event_type": "delivery",
                "ts": day(2026, 3, 2),
                "order_id": "o1",
                "properties": {"late_days": 3},
            },
            {
                "user_id": "b",
                "event_type": "delivery",
                "ts": day(2026, 3, 2),
                "order_id": "o2",
                "properties": {"late_days": 0.5},
            },
            {
                "user_id": "c",
                "event_type": "ticket_resolved",
                "ts": day(2026, 3, 2),
                "properties": {"resolution_hours": 80},
            },
            {
                "user_id": "d",
                "event_type": "ticket_resolved",
                "ts": day(2026, 3, 2),
                "properties": {"resolution_hours": 5, "first_response_hours": 50},
            },
            {
                "user_id": "e",
                "event_type": "ticket_resolved",
                "ts": day(2026, 3, 2),
                "properties": {"resolution_hours": 5},
            },
        ],
    )
    late, _ = run(
        ws,
        {"type": "service_failure", "kind": "late_delivery", "min_late_days": 1},
        day(2026, 3, 3),
    )
    assert [(r["user_id"], r["key"]) for r in late] == [("a", "o1")]
    slow, _ = run(
        ws, {"type": "service_failure", "kind": "slow_ticket", "min_hours": 48}, day(2026, 3, 3)
    )
    assert [r["user_id"] for r in slow] == ["c", "d"]


def test_stage_entered_compares_two_cut_offs(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 1))
    # a buys every 10 days until 1 Jan; 45 days later (decline: > 1.5 × 10 and > 30 days)
    rows = [
        {
            "user_id": "a",
            "event_type": "order",
            "ts": day(2025, 12, 1) + timedelta(days=10 * i),
            "revenue": 1.0,
        }
        for i in range(4)
    ]
    rows += [{"user_id": "b", "event_type": "order", "ts": day(2026, 2, 20), "revenue": 1.0}]
    events(ws, rows)
    # a's last order 31 Dec: the gap passes 30 days on 30 January
    got, _ = run(
        ws,
        {"type": "stage_entered", "stage": "decline"},
        day(2026, 1, 31, 12),
        Position(day(2026, 1, 1), evaluated_at=day(2026, 1, 29)),
    )
    assert [(r["user_id"], json.loads(r["context"])["from_stage"]) for r in got] == [
        ("a", "mature")
    ]
    none, _ = run(
        ws,
        {"type": "stage_entered", "stage": "decline"},
        day(2026, 2, 2),
        Position(day(2026, 1, 1), evaluated_at=day(2026, 2, 1)),
    )
    assert none == []


def test_segment_entry_and_exit(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 1))
    events(
        ws,
        [
            {"user_id": u, "event_type": "order", "ts": day(2026, 2, 27, 12), "revenue": 10.0}
            for u in ("a", "b")
        ],
    )
    events(
        ws, [{"user_id": "a", "event_type": "order", "ts": day(2026, 2, 28, 12), "revenue": 10.0}]
    )
    trig = {"type": "segment_entry", "filter": "orders >= 2"}
    got, _ = run(ws, trig, day(2026, 3, 1), Position(SINCE, evaluated_at=day(2026, 2, 28)))
    assert [r["user_id"] for r in got] == ["a"]
    gone, _ = run(
        ws,
        {"type": "segment_exit", "filter": "orders < 2"},
        day(2026, 3, 1),
        Position(SINCE, evaluated_at=day(2026, 2, 28)),
    )
    assert [r["user_id"] for r in gone] == ["a"]


def test_date_property_birthday_at_local_time(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "ny", "timezone": "America/New_York", "birthday": date(1990, 3, 10)},
            {"user_id": "cn", "country": "CN", "birthday": date(1985, 3, 10)},
            {"user_id": "no", "birthday": date(1980, 7, 1)},
        ],
    )
    trig = {"type": "date_property", "property": "birthday", "days_before": 2, "at": "10:00"}
    got, pos = run(ws, trig, day(2026, 3, 7, 12), Position(SINCE, evaluated_at=day(2026, 3, 7)))
    # 8 March 10:00 in Shanghai is 02:00 UTC, inside the day ahead; in New York (EDT by
    # then) it is 14:00 UTC, beyond it
    assert [(r["user_id"], r["key"], r["at"]) for r in got] == [
        ("cn", "birthday:2026-03-10", day(2026, 3, 8, 2))
    ]
    assert pos.horizon == day(2026, 3, 8, 12)
    again, _ = run(ws, trig, day(2026, 3, 8, 0), pos)
    assert [(r["user_id"], r["at"]) for r in again] == [("ny", day(2026, 3, 8, 14))]


def test_holiday_by_country(ws: Workspace) -> None:
    users(
        ws,
        [{"user_id": "de", "country": "DE"}, {"user_id": "us", "country": "US"}, {"user_id": "x"}],
    )
    trig = {"type": "holiday", "days_before": 1, "names": ["Christmas"], "at": "09:00"}
    got, _ = run(ws, trig, day(2026, 12, 24, 0), Position(SINCE, evaluated_at=day(2026, 12, 22)))
    # 24 Dec 09:00 in Berlin (08:00 UTC) and New York (14:00 UTC), ahead of Christmas Day
    keys = [(r["user_id"], r["key"], r["at"]) for r in got]
    assert ("de", "2026-12-25", day(2026, 12, 24, 8)) in keys
    assert ("us", "2026-12-25", day(2026, 12, 24, 14)) in keys
    assert all(u != "x" for u, _, _ in keys)


def test_schedule_every_week_at_local_time(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "a", "timezone": "Asia/Shanghai"},
            {"user_id": "b", "timezone": "Europe/Berlin"},
        ],
    )
    trig = {"type": "schedule", "every": "7d", "start": "2026-03-02", "at": "10:00"}
    got, pos = run(ws, trig, day(2026, 3, 8, 23), Position(SINCE, evaluated_at=day(2026, 3, 8, 12)))
    assert [(r["user_id"], r["key"], r["at"]) for r in got] == [
        ("a", "2026-03-09", day(2026, 3, 9, 2)),
        ("b", "2026-03-09", day(2026, 3, 9, 9)),
    ]
    nothing, _ = run(ws, trig, day(2026, 3, 9, 23), pos)
    assert nothing == []


def test_replenishment_due_from_the_accounts_own_cadence(ws: Workspace) -> None:
    ws.clock.set(day(2026, 3, 1))
    rows = [
        {
            "user_id": "buyer1",
            "account_id": "acme",
            "event_type": "order",
            "ts": day(2026, 1, 1) + timedelta(days=10 * i),
            "revenue": 100.0,
        }
        for i in range(4)
    ]  # 1, 11, 21, 31 January: median gap 10 days, next expected 10 February
    rows.append(
        {
            "user_id": "buyer2",
            "account_id": "small",
            "event_type": "order",
            "ts": day(2026, 1, 5),
            "revenue": 5.0,
        }
    )
    events(ws, rows)
    trig = {"type": "replenishment_due", "days_before": 2, "min_orders": 3}
    got, _ = run(
        ws, trig, day(2026, 2, 8, 12), Position(day(2026, 1, 1), evaluated_at=day(2026, 2, 7, 12))
    )
    assert [(r["user_id"], r["key"], r["at"]) for r in got] == [
        ("buyer1", "acme:2026-01-31", day(2026, 2, 8))
    ]


def test_loyalty_tier_change_direction_and_points_expiring(ws: Workspace) -> None:
    from liucun import loyalty

    ws.clock.set(day(2026, 3, 2))
    events(
        ws,
        [
            {
                "user_id": "a",
                "event_type": "tier_changed",
                "ts": day(2026, 3, 1, 8),
                "properties": {"direction": "up", "to": "gold"},
            },
            {
                "user_id": "b",
                "event_type": "tier_changed",
                "ts": day(2026, 3, 1, 8),
                "properties": {"direction": "down", "to": "base"},
            },
        ],
    )
    up, _ = run(
        ws, {"type": "loyalty", "event": "tier_changed", "direction": "up"}, day(2026, 3, 2)
    )
    assert [r["user_id"] for r in up] == ["a"]
    loyalty.award(ws, "a", 100, key="a:1", expires_at=day(2026, 3, 20))
    loyalty.award(ws, "b", 40, key="b:1", expires_at=day(2026, 4, 20))
    got, _ = run(
        ws,
        {"type": "loyalty", "event": "points_expiring", "days_before": 7},
        day(2026, 3, 14),
        Position(SINCE, evaluated_at=day(2026, 3, 12)),
    )
    assert [(r["user_id"], json.loads(r["context"])["points"], r["at"]) for r in got] == [
        ("a", 100, day(2026, 3, 13))
    ]


def test_due_policy() -> None:
    pos = Position(SINCE, evaluated_at=day(2026, 3, 1))
    event = spec().trigger
    idle = spec(trigger={"type": "inactivity", "days": 3}).trigger
    every = timedelta(days=1)
    assert is_due(event, pos, day(2026, 3, 1, 1), changed=True, every=every)
    assert not is_due(event, pos, day(2026, 3, 1, 1), changed=False, every=every)
    assert not is_due(idle, pos, day(2026, 3, 1, 23), changed=True, every=every)
    assert is_due(idle, pos, day(2026, 3, 2), changed=False, every=every)
    assert is_due(idle, Position(SINCE), day(2026, 3, 1), changed=False, every=every)
    assert Position.from_json(pos.to_json(), SINCE) == pos
    assert UTC
