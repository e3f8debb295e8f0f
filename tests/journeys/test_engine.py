"""The engine on SQLite and PostgreSQL: enrolment (re-entry rules, audience, the control
arm and its exposures), the walk (actions to the outbox, control withheld, waits until a
local time across DST, wait-for-event against its timeout, goal exits) and idempotency."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from journey_support import (
    advance,
    day,
    engine_workspace,
    enrol,
    enrolments,
    events,
    outbox,
    spec,
    steps,
    users,
)
from sqlalchemy import select

from liucun.experiments import Experiment, assign, log_exposures
from liucun.journeys._engine import check_goals, check_waits, exposure_id
from liucun.state import Exposure
from liucun.workspace import Workspace

T = day(2026, 3, 1, 12)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with engine_workspace(tmp_path / "ws", state_url, T) as w:
        yield w


def _exposures(ws: Workspace, experiment: str) -> list[Exposure]:
    with ws.state.read() as s:
        return list(s.scalars(select(Exposure).where(Exposure.experiment == experiment)))


def test_control_share_is_ten_percent_and_each_assignment_is_an_exposure(ws: Workspace) -> None:
    j = spec(name="ctl")
    n = 5_000
    result = enrol(ws, j, [(f"u{i}", f"k{i}", T) for i in range(n)])
    assert result.enrolled == n
    # binomial(5000, 0.1): mean 500, sd 21.2; ±4.5 sd
    sd = math.sqrt(n * 0.1 * 0.9)
    assert abs(result.control - 500) < 4.5 * sd
    rows = enrolments(ws, "ctl")
    assert sum(e.arm == "control" for e in rows) == result.control
    # the arm is the experiments' hashed assignment of (journey, user)
    arms = assign(Experiment("journey:ctl", weights=(0.1, 0.9)), [e.user_id for e in rows])
    assert [e.arm for e in rows] == arms.column("variant").to_pylist()
    logged = _exposures(ws, "journey:ctl")
    assert len(logged) == n
    assert {(x.variant, round(x.probability, 6)) for x in logged} == {
        ("control", 0.1),
        ("treatment", 0.9),
    }
    # the ids are those log_exposures gives: logging the same rows again adds nothing
    first = arms.slice(0, 10)
    again = log_exposures(ws.state, first, ts=T)
    assert again.logged == 0 and again.duplicates == 10
    assert logged[0].exposure_id == exposure_id("journey:ctl", "user", logged[0].unit_id, T)
    # enrolling the same entries again adds nothing
    assert enrol(ws, j, [(f"u{i}", f"k{i}", T) for i in range(20)]).enrolled == 0
    assert len(_exposures(ws, "journey:ctl")) == n


def test_reentry_once_once_per_key_and_after_days(ws: Workspace) -> None:
    once = spec(name="once", reentry={"mode": "once"})
    assert enrol(ws, once, [("a", "o1", T), ("a", "o2", T + timedelta(hours=1))]).enrolled == 1
    assert enrol(ws, once, [("a", "o3", T + timedelta(days=40))]).enrolled == 0
    per_key = spec(name="perkey", reentry={"mode": "once_per_key"})
    got = enrol(ws, per_key, [("a", "o1", T), ("a", "o2", T), ("a", "o1", T + timedelta(hours=2))])
    assert got.enrolled == 2
    assert sorted(e.entry_key for e in enrolments(ws, "perkey")) == ["o1", "o2"]
    after = spec(
        name="after",
        reentry={"mode": "after", "days": 30},
        nodes=[
            {"id": "w", "type": "wait", "duration": "2d", "next": "x"},
            {"id": "x", "type": "exit"},
        ],
    )
    assert enrol(ws, after, [("a", "k", T), ("a", "k2", T + timedelta(hours=1))]).enrolled == 1
    # still inside: no second enrolment
    assert enrol(ws, after, [("a", "k", T + timedelta(days=1))]).enrolled == 0
    advance(ws, T)
    advance(ws, T + timedelta(days=2))  # the wait ends, the enrolment is done on 3 March
    (e,) = enrolments(ws, "after")
    assert e.status == "done" and e.entry_key == "2026-03-01"
    # 29 days after it ended: refused; 30 days: a new enrolment keyed by its date
    ws.clock.set(T + timedelta(days=40))
    assert enrol(ws, after, [("a", "k", T + timedelta(days=31))]).enrolled == 0
    assert enrol(ws, after, [("a", "k", T + timedelta(days=32))]).enrolled == 1
    assert sorted(e.entry_key for e in enrolments(ws, "after")) == ["2026-03-01", "2026-04-02"]


def test_audience_filter_on_the_profile(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "b2b1", "customer_type": "b2b", "account_id": "acme"},
            {"user_id": "c1", "customer_type": "b2c"},
            {"user_id": "c2", "customer_type": "b2c", "country": "DE"},
        ],
    )
    j = spec(name="aud", audience="customer_type == 'b2c' and country is null")
    got = enrol(ws, j, [("b2b1", "1", T), ("c1", "1", T), ("c2", "1", T), ("ghost", "1", T)])
    assert (got.entries, got.audience_out, got.enrolled) == (4, 3, 1)
    assert [e.user_id for e in enrolments(ws, "aud")] == ["c1"]


def test_actions_go_to_the_outbox_for_treatment_and_are_withheld_for_control(ws: Workspace) -> None:
    users(
        ws,
        [
            {
                "user_id": f"u{i}",
                "language": "zh-CN" if i % 2 else "en-GB",
                "customer_type": "b2b" if i < 3 else "b2c",
                "account_id": "acme" if i < 3 else None,
                "country": "CN",
            }
            for i in range(40)
        ],
    )
    events(
        ws,
        [
            {
                "user_id": f"u{i}",
                "event_type": "order",
                "ts": T - timedelta(days=3),
                "revenue": 100.0,
            }
            for i in range(40)
        ],
    )
    j = spec(
        name="act",
        value={"margin": 0.3, "cost": 0.5, "uplift": 0.1},
        nodes=[
            {
                "id": "msg",
                "type": "message",
                "channel": "sms",
                "next": "task",
                "template": {
                    "body": {
                        "en": "Hi {{ user_id }}",
                        "zh-CN": "您好 {{ user_id }}",
                    }
                },
            },
            {"id": "task", "type": "task", "summary": "Call {{ user_id }}", "next": "cp"},
            {"id": "cp", "type": "coupon", "coupon": "recall_10", "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    )
    enrol(ws, j, [(f"u{i}", "1", T) for i in range(40)])
    done = advance(ws, T)
    rows = enrolments(ws, "act")
    control = {e.id for e in rows if e.arm == "control"}
    treated = {e.id for e in rows if e.arm == "treatment"}
    assert control and treated and all(e.status == "done" for e in rows)
    box = outbox(ws)
    assert len(box) == 3 * len(treated) == done.outbox
    assert {o.enrolment_id for o in box} == treated
    withheld = steps(ws, "withheld")
    assert len(withheld) == 3 * len(control) and {s.enrolment_id for s in withheld} == control
    by = {(o.enrolment_id, o.node): json.loads(o.payload) for o in box}
    e = next(r for r in rows if r.arm == "treatment" and r.user_id == "u1")
    msg = by[(e.id, "msg")]
    assert (msg["body"], msg["locale"], msg["timezone"], msg["purpose"]) == (
        "您好 u1",
        "zh-CN",
        "Asia/Shanghai",
        "marketing",
    )
    # uplift × margin × order value − cost = 0.1 × 0.3 × 100 − 0.5
    assert msg["value"] == pytest.approx(2.5)
    assert by[(e.id, "task")]["sla_hours"] == 2.0  # b2b
    b2c = next(r for r in rows if r.arm == "treatment" and r.user_id not in ("u0", "u1", "u2"))
    assert by[(b2c.id, "task")]["sla_hours"] == 24.0
    assert by[(b2c.id, "cp")]["coupon_id"] == "recall_10"
    en = next(
        r
        for r in rows
        if r.arm == "treatment" and int(r.user_id[1:]) % 2 == 0 and r.user_id != "u0"
    )
    assert by[(en.id, "msg")]["locale"] == "en"  # en-GB falls back to its base language
    keys = {o.key for o in box}
    assert f"j:act:{e.id}:msg:1" in keys
    # walking again adds nothing
    assert advance(ws, T + timedelta(hours=1)).walked == 0
    assert len(outbox(ws)) == len(box)


def _local_wait_journey(name: str, hhmm: str):  # type: ignore[no-untyped-def]
    return spec(
        name=name,
        control={"share": 0.0, "allow_zero": True},
        nodes=[
            {"id": "w", "type": "wait", "until_time": hhmm, "next": "m"},
            {
                "id": "m",
                "type": "message",
                "channel": "push",
                "next": None,
                "template": {"body": {"en": "x"}},
            },
        ],
    )


def test_wait_until_local_time_across_dst_and_zone_resolution(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "ny", "timezone": "America/New_York"},
            {"user_id": "de", "country": "DE"},  # no zone: the country's
            {"user_id": "zz"},  # neither: the workspace default (UTC)
        ],
    )
    j = _local_wait_journey("dst", "09:00")
    sat = day(2026, 3, 7, 20)  # 15:00 in New York, 21:00 in Berlin
    ws.clock.set(sat)
    enrol(ws, j, [("ny", "1", sat), ("de", "1", sat), ("zz", "1", sat)])
    advance(ws, sat)
    wake = {e.user_id: e.wake_at for e in enrolments(ws, "dst")}
    assert wake["ny"] == day(2026, 3, 8, 13)  # 09:00 EDT, the clocks sprang forward overnight
    assert wake["de"] == day(2026, 3, 8, 8)  # 09:00 CET
    assert wake["zz"] == day(2026, 3, 8, 9)
    # Berlin falls back on 25 October: 09:00 CET is 08:00 UTC, the day before 07:00 UTC
    j2 = _local_wait_journey("fall", "09:00")
    oct24 = day(2026, 10, 24, 12)
    ws.clock.set(oct24)
    enrol(ws, j2, [("de", "1", day(2026, 10, 23, 12)), ("de", "2", oct24)])
    advance(ws, oct24)
    by = {e.entry_key: e for e in enrolments(ws, "fall")}
    # the one that entered on the 23rd had its timer end at 07:00 UTC, before this late
    # tick: it is walked on at once, at its own time
    assert by["1"].status == "done" and by["2"].wake_at == day(2026, 10, 25, 8)
    # the timer fires at its time and the message follows, at the local 09:00
    advance(ws, day(2026, 10, 25, 9))
    assert all(e.status == "done" for e in enrolments(ws, "fall"))
    box = [o for o in outbox(ws) if o.journey == "fall"]
    # each message is due at its enrolment's local 09:00
    assert sorted(o.next_attempt_at for o in box) == [day(2026, 10, 24, 7), day(2026, 10, 25, 8)]


def test_wait_for_event_or_timeout_then_goal_exit(ws: Workspace) -> None:
    j = spec(
        name="wf",
        goal={"event": "order", "window_days": 14, "exit": True},
        nodes=[
            {
                "id": "w",
                "type": "wait_for",
                "event": "visit",
                "timeout": "2d",
                "on_event": "yes",
                "on_timeout": "no",
            },
            {"id": "yes", "type": "tag", "tag": "visited", "next": "end"},
            {"id": "no", "type": "wait", "duration": "5d", "next": "end"},
            {"id": "end", "type": "exit"},
        ],
        control={"share": 0.0, "allow_zero": True},
    )
    enrol(ws, j, [("a", "1", T), ("b", "1", T), ("c", "1", T)])
    advance(ws, T)
    assert {e.status for e in enrolments(ws, "wf")} == {"waiting"}
    ws.clock.set(T + timedelta(days=1))
    events(
        ws,
        [
            {"user_id": "a", "event_type": "visit", "ts": T + timedelta(hours=5)},
            {
                "user_id": "b",
                "event_type": "visit",
                "ts": T - timedelta(hours=5),
            },  # before the wait
        ],
    )
    assert check_waits(ws, T + timedelta(days=1)) == 1
    advance(ws, T + timedelta(days=1))
    by = {e.user_id: e for e in enrolments(ws, "wf")}
    assert by["a"].status == "done" and by["b"].status == "waiting"
    assert [o.channel for o in outbox(ws)] == ["tag"]
    advance(ws, T + timedelta(days=2, hours=1))  # b and c time out into the 5-day wait
    kinds = {(s.user_id, s.kind) for s in steps(ws)}
    assert ("b", "timeout") in kinds and ("c", "timeout") in kinds and ("a", "waited") in kinds
    # c orders on 4 March: the goal ends its enrolment (converted) before the wait is over
    ws.clock.set(T + timedelta(days=4))
    events(
        ws, [{"user_id": "c", "event_type": "order", "ts": T + timedelta(days=3), "revenue": 10.0}]
    )
    assert check_goals(ws, T + timedelta(days=4)) == 1
    by = {e.user_id: e for e in enrolments(ws, "wf")}
    assert (by["c"].status, by["c"].exit_reason) == ("exited", "converted")
    assert by["c"].exited_at == T + timedelta(days=3)
    assert [s.user_id for s in steps(ws, "converted")] == ["c"]
    assert check_goals(ws, T + timedelta(days=5)) == 0  # once
    advance(ws, T + timedelta(days=8))
    assert {e.user_id: e.status for e in enrolments(ws, "wf")} == {
        "a": "done",
        "b": "done",
        "c": "exited",
    }
