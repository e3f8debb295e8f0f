"""Quiet hours across time zones and DST changes: the held-until instant is never inside
the quiet window and is the earliest such instant (hypothesis, against a minute-by-minute
oracle); the US change of 2026-03-08, the EU change of 2026-10-25 and Lord Howe's 30-minute
shifts; holds through review_batch on both state backends, sent when due again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from liucun.core import SimulatedClock
from liucun.journeys._consent import record_consent
from liucun.journeys._guards import review_batch
from liucun.journeys._local_time import (
    customer_zone,
    is_quiet,
    local_instant,
    next_day_start,
    quiet_until,
)
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import OutboxMessage
from liucun.workspace import Workspace, init_workspace

ZONES = ("Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC")
#: Around the DST changes of 2026: US spring, EU autumn, Lord Howe (both, 30 min).
CHANGES = (
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "tz", "start", "end", "until"),
    [
        # 22:00 in Shanghai → 08:00 the next morning
        ("2026-03-01T22:00+08:00", "Asia/Shanghai", "21:00", "08:00", "2026-03-02T08:00+08:00"),
        # 03:00 is inside a window crossing midnight → 08:00 the same day
        ("2026-03-02T03:00+08:00", "Asia/Shanghai", "21:00", "08:00", "2026-03-02T08:00+08:00"),
        ("2026-03-02T08:00+08:00", "Asia/Shanghai", "21:00", "08:00", None),
        ("2026-03-02T20:59+08:00", "Asia/Shanghai", "21:00", "08:00", None),
        # New York springs forward on 8 March: 01:00 EST → 08:00 EDT (12:00 UTC, not 13:00)
        ("2026-03-08T01:00-05:00", "America/New_York", "21:00", "08:00", "2026-03-08T08:00-04:00"),
        # an end in the gap (02:30 does not exist) moves forward to 03:00 EDT
        ("2026-03-08T01:00-05:00", "America/New_York", "21:00", "02:30", "2026-03-08T03:00-04:00"),
        # Berlin falls back on 25 October: 22:00 CEST → 08:00 CET
        ("2026-10-24T22:00+02:00", "Europe/Berlin", "21:00", "08:00", "2026-10-25T08:00+01:00"),
        # an ambiguous end (02:30 happens twice) takes the first, CEST
        ("2026-10-24T22:00+02:00", "Europe/Berlin", "21:00", "02:30", "2026-10-25T02:30+02:00"),
        # once past the first 02:30, the repeated hour's 02:10 CET is quiet again
        ("2026-10-25T02:10+01:00", "Europe/Berlin", "21:00", "02:30", "2026-10-25T02:30+01:00"),
        # Lord Howe moves 30 minutes forward on 4 October (02:00 → 02:30): 02:15 is not
        (
            "2026-10-04T01:00+10:30",
            "Australia/Lord_Howe",
            "21:00",
            "02:15",
            "2026-10-04T02:30+11:00",
        ),
        # and 30 minutes back on 5 April (02:00 → 01:30): 01:45 is ambiguous, take the first
        (
            "2026-04-05T01:00+11:00",
            "Australia/Lord_Howe",
            "21:00",
            "01:45",
            "2026-04-05T01:45+11:00",
        ),
        # a window inside one day
        ("2026-06-01T13:30+02:00", "Europe/Berlin", "12:00", "14:00", "2026-06-01T14:00+02:00"),
        # an empty window
        ("2026-06-01T13:30+02:00", "Europe/Berlin", "12:00", "12:00", None),
    ],
)
def test_quiet_until_cases(now: str, tz: str, start: str, end: str, until: str | None) -> None:
    got = quiet_until(at(now), tz, start, end)
    assert got == (None if until is None else at(until))


def test_local_instant_gap_fold_and_midnight() -> None:
    assert local_instant(datetime(2026, 3, 8).date(), time(2, 0), "America/New_York") == at(
        "2026-03-08T03:00-04:00"
    )
    assert local_instant(datetime(2026, 10, 25).date(), time(2, 0), "Europe/Berlin") == at(
        "2026-10-25T02:00+02:00"
    )
    # Shanghai's next midnight after 23:30 local
    assert next_day_start(at("2026-03-01T23:30+08:00"), "Asia/Shanghai") == at(
        "2026-03-02T00:00+08:00"
    )


def test_customer_zone_falls_back_from_timezone_to_country_to_default() -> None:
    assert customer_zone("Europe/Berlin", "CN", "UTC") == "Europe/Berlin"
    assert customer_zone(None, "CN", "UTC") == "Asia/Shanghai"
    assert customer_zone(None, "AU", "UTC") == "Australia/Sydney"
    assert customer_zone("", None, "Asia/Tokyo") == "Asia/Tokyo"
    assert customer_zone("Mars/Base", "ZZ", "UTC") == "UTC"


hhmm = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 7])
)


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from(CHANGES),
    offset_min=st.integers(-36 * 60, 36 * 60),
    seconds=st.integers(0, 59),
    tz=st.sampled_from(ZONES),
    start=hhmm,
    end=hhmm,
)
def test_held_until_is_the_earliest_instant_outside_the_window(
    base: datetime, offset_min: int, seconds: int, tz: str, start: str, end: str
) -> None:
    now = base + timedelta(minutes=offset_min, seconds=seconds)
    until = quiet_until(now, tz, start, end)
    assert (until is None) == (not is_quiet(now, tz, start, end))
    if until is None:
        return
    assert until > now
    assert not is_quiet(until, tz, start, end)
    # every minute mark between now and until is quiet (bounds and DST changes fall on
    # whole minutes, so nothing earlier is outside the window)
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t < until:
        assert is_quiet(t, tz, start, end), t
        t += timedelta(minutes=1)


# -- through review_batch, on both state backends ----------------------------------------


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    clock = SimulatedClock(at("2026-03-08T01:00-05:00"))
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as w:
        yield w


def test_holds_across_zones_and_sends_when_due(ws: Workspace) -> None:
    people = {
        "ny": {"timezone": "America/New_York"},
        "sh": {"country": "CN"},  # no timezone: the country's zone
        "be": {"timezone": "Europe/Berlin"},
        "lh": {"timezone": "Australia/Lord_Howe"},
        "none": {},  # neither: reporting_timezone
    }
    ws.settings.reporting_timezone = "Asia/Tokyo"
    for user in people:
        record_consent(ws, user, purpose="marketing", channel="*", status="granted", source="t")
    now = ws.clock.now()  # 06:00 UTC on 8 March
    with ws.state.write() as s:
        enqueue(
            s,
            [
                Outgoing(
                    key=f"m-{u}", user_id=u, channel="sms", payload={"purpose": "marketing", **p}
                )
                for u, p in people.items()
            ]
            + [
                Outgoing(key="in-app", user_id="ny", channel="in_app", payload={}),
                Outgoing(
                    key="tx", user_id="ny", channel="email", payload={"purpose": "transactional"}
                ),
                Outgoing(key="hook", user_id="ny", channel="webhook", payload={}),
            ],
            now=now,
        )
    with ws.state.write() as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        verdicts = {r.key: v for r, v in zip(rows, review_batch(s, ws, rows, now=now), strict=True)}
    # New York: 01:00 EST on the day it springs forward → 08:00 EDT = 12:00 UTC
    assert verdicts["m-ny"].action == "hold" and verdicts["m-ny"].reason == "quiet_hours"
    assert verdicts["m-ny"].until == at("2026-03-08T08:00-04:00")
    assert verdicts["m-ny"].detail["timezone"] == "America/New_York"
    # Shanghai 14:00, Berlin 07:00 → 08:00 CET, Lord Howe 17:00, Tokyo 15:00
    assert verdicts["m-sh"].action == "send"
    assert verdicts["m-be"].until == at("2026-03-08T08:00+01:00")
    assert verdicts["m-lh"].action == "send"
    assert verdicts["m-none"].action == "send"
    # not held: in_app, transactional, webhook
    assert {verdicts[k].action for k in ("in-app", "tx", "hook")} == {"send"}
    # the worker puts the held rows back with next_attempt_at = until; due then, they go
    with ws.state.write() as s:
        for key in ("m-ny", "m-be"):
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.key == key)
                .values(next_attempt_at=verdicts[key].until, hold_reason="quiet_hours")
            )
    for key in ("m-be", "m-ny"):
        with ws.state.write() as s:
            row = s.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
            again = review_batch(s, ws, [row], now=row.next_attempt_at)
        assert again[0].action == "send", key


def test_doctests() -> None:
    import doctest

    import liucun.journeys._consent as consent
    import liucun.journeys._guards as guards
    import liucun.journeys._local_time as quiet
    import liucun.journeys._tasks as tasks

    for module in (quiet, consent, tasks, guards):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_review_batch_holds_match_the_property_on_both_backends(ws: Workspace) -> None:
    g = ws.settings.guards
    g.max_per_day = g.max_per_week = None
    record_consent(ws, "p", purpose="marketing", channel="*", status="granted", source="t")
    with ws.state.write() as s:
        enqueue(
            s, [Outgoing(key="p1", user_id="p", channel="push", payload={})], now=ws.clock.now()
        )

    @settings(max_examples=25, deadline=None)
    @given(
        base=st.sampled_from(CHANGES),
        offset_min=st.integers(-24 * 60, 24 * 60),
        tz=st.sampled_from(ZONES),
        start=hhmm,
        end=hhmm,
    )
    def check(base: datetime, offset_min: int, tz: str, start: str, end: str) -> None:
        g.quiet_start, g.quiet_end = start, end
        now = base + timedelta(minutes=offset_min)
        with ws.state.write() as s:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.key == "p1")
                .values(payload=f'{{"purpose": "marketing", "timezone": "{tz}"}}')
            )
            row = s.scalar(select(OutboxMessage).where(OutboxMessage.key == "p1"))
            first = review_batch(s, ws, [row], now=now)[0]
            if first.action == "send":
                assert not is_quiet(now, tz, start, end)
                return
            assert first.action == "hold" and first.reason == "quiet_hours"
            assert first.until == quiet_until(now, tz, start, end)
            assert review_batch(s, ws, [row], now=first.until)[0].action == "send"

    check()
