"""Paid membership on SQLite and PostgreSQL: terms by calendar months in the program's
time zone, renewals from the term's end, auto-renewal vs lapse, one reminder per term,
refusals as sentences, idempotent replays, and the membership events in the warehouse.
Expected dates are worked out by hand from the plan's term."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import ConfigError, SimulatedClock
from liucun.loyalty import IdempotencyConflict, MembershipRefused
from liucun.state import LoyaltyMembershipEvent
from liucun.workspace import Workspace, init_workspace

# 31 January 2026, 02:00 UTC = 10:00 in Asia/Shanghai (UTC+8, no daylight saving)
T0 = datetime(2026, 1, 31, 2, tzinfo=UTC)
SH = 8  # hours Shanghai is ahead of UTC


def program_file(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "name": "shop",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "coupons": [{"id": "welcome", "kind": "value", "amount": 10, "per_customer": 1}],
        "plans": [
            {
                "id": "monthly",
                "name": "Plus monthly",
                "price": 15,
                "term": {"amount": 1, "unit": "months"},
                "auto_renew": True,
                "reminder_days": 3,
            },
            {
                "id": "yearly",
                "name": "Plus yearly",
                "price": 99,
                "term": {"amount": 12, "unit": "months"},
                "auto_renew": False,
                "reminder_days": 7,
            },
            {
                "id": "trial",
                "name": "Trial",
                "price": 0,
                "term": {"amount": 10, "unit": "days"},
                "auto_renew": False,
                "reminder_days": 0,
            },
        ],
    }
    data.update(changes)
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def ws(tmp_path: Path, state_url: str, clock: SimulatedClock) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as w:
        loyalty.apply_program(w, program_file(tmp_path))
        yield w


def local(*args: int) -> datetime:
    """A Shanghai wall-clock time as UTC."""
    return datetime(*args, tzinfo=UTC) - timedelta(hours=SH)


def events_in_warehouse(ws: Workspace) -> list[tuple[str, str, datetime]]:
    t = ws.table("events")
    t = t.filter(t.event_type.startswith("membership_")).order_by(["ts", "event_id"])
    return [
        (r["event_type"], r["user_id"], r["ts"])
        for r in t.select("event_type", "user_id", "ts").to_pyarrow().to_pylist()
    ]


def state_events(ws: Workspace) -> int:
    with ws.state.read() as s:
        return int(s.scalar(select(func.count()).select_from(LoyaltyMembershipEvent)) or 0)


# -- terms --------------------------------------------------------------------------------


def test_a_term_ends_by_calendar_months_in_the_program_time_zone(ws: Workspace) -> None:
    m = loyalty.join(ws, "u1", "monthly", key="join-u1")
    # joined 31 Jan 10:00 Shanghai; one calendar month later, clamped to February's last
    # day: 28 Feb 10:00 Shanghai = 02:00 UTC
    assert (m.status, m.term_start, m.term_end) == ("active", T0, local(2026, 2, 28, 10))
    assert (m.price, m.currency, m.auto_renew, m.renewals) == (15.0, "CNY", True, 0)


def test_the_local_calendar_decides_the_month_not_utc(ws: Workspace, clock: SimulatedClock) -> None:
    # 28 Feb 20:00 UTC is already 1 March 04:00 in Shanghai: the term runs to 1 April 04:00
    clock.set(datetime(2026, 2, 28, 20, tzinfo=UTC))
    m = loyalty.join(ws, "u1", "monthly", key="join-u1")
    assert m.term_end == local(2026, 4, 1, 4)


def test_renew_extends_from_the_term_end_not_from_now(ws: Workspace, clock: SimulatedClock) -> None:
    loyalty.join(ws, "u1", "monthly", key="join-u1")
    clock.set(local(2026, 2, 20, 9))  # eight days before the term ends
    m = loyalty.renew(ws, "u1", key="renew-u1-1")
    # the second term starts at the first one's end (28 Feb 10:00) and, anchored on the
    # join (31 Jan), ends on 31 March 10:00 — not 20 March, not 28 March
    assert (m.term_start, m.term_end, m.renewals) == (
        local(2026, 2, 28, 10),
        local(2026, 3, 31, 10),
        1,
    )
    m = loyalty.renew(ws, "u1", key="renew-u1-2")
    assert (m.term_start, m.term_end, m.renewals) == (
        local(2026, 3, 31, 10),
        local(2026, 4, 30, 10),
        2,
    )
    summary = loyalty.membership_summary(ws, as_of=local(2026, 2, 21))
    assert (summary.joined, summary.renewed, summary.revenue) == (1, 2, 45.0)


def test_day_terms_count_calendar_days(ws: Workspace) -> None:
    m = loyalty.join(ws, "u1", "trial", key="trial-u1")
    assert (m.term_end, m.price, m.auto_renew) == (local(2026, 2, 10, 10), 0.0, False)


# -- auto-renewal and lapse ---------------------------------------------------------------


def test_an_auto_renew_plan_renews_at_the_term_end_and_a_manual_plan_lapses(
    ws: Workspace, clock: SimulatedClock
) -> None:
    loyalty.join(ws, "auto", "monthly", key="j-auto")
    loyalty.join(ws, "manual", "yearly", key="j-manual")
    loyalty.join(ws, "quits", "monthly", key="j-quits")
    loyalty.cancel(ws, "quits", key="c-quits")
    # 1 April 2027: the monthly terms ended on 28 Feb, 31 Mar, 30 Apr 2026, … and the yearly
    # one on 31 Jan 2027 10:00
    clock.set(local(2027, 2, 1))
    before = loyalty.memberships(ws, user_id="quits")[0]
    assert (before.status, before.term_end) == ("cancelled", local(2026, 2, 28, 10))
    result = loyalty.lapse_due(ws, as_of=local(2027, 2, 1))
    auto = loyalty.memberships(ws, user_id="auto")[0]
    # twelve monthly renewals (Feb 2026 … Jan 2027), each charged 15 at its term start;
    # the current term is 31 Jan 2027 10:00 – 28 Feb 2027 10:00 (anchored on 31 Jan)
    assert (auto.status, auto.renewals) == ("active", 12)
    assert (auto.term_start, auto.term_end) == (local(2027, 1, 31, 10), local(2027, 2, 28, 10))
    assert len([e for e in result.renewed if e.user_id == "auto"]) == 12
    assert {e.amount for e in result.renewed} == {15.0}
    assert result.renewed[0].at == local(2026, 2, 28, 10)
    lapsed = {e.user_id: e.at for e in result.lapsed}
    assert lapsed == {"manual": local(2027, 1, 31, 10), "quits": local(2026, 2, 28, 10)}
    assert loyalty.memberships(ws, user_id="manual")[0].status == "lapsed"
    # the warehouse holds every event once: 3 joins, 1 cancel, 12 renewals, 2 lapses
    kinds = [k for k, _, _ in events_in_warehouse(ws)]
    assert (kinds.count("membership_joined"), kinds.count("membership_renewed")) == (3, 12)
    assert (kinds.count("membership_cancelled"), kinds.count("membership_lapsed")) == (1, 2)
    assert result.published == 14
    # a second run finds nothing; the warehouse gains nothing
    again = loyalty.lapse_due(ws, as_of=local(2027, 2, 1))
    assert (again.renewed, again.lapsed, again.published) == ((), (), 0)
    assert len(events_in_warehouse(ws)) == 18


def test_lapse_due_refuses_a_future_as_of(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="after now"):
        loyalty.lapse_due(ws, as_of=T0 + timedelta(days=1))


def test_a_cancelled_member_stays_active_to_the_term_end(
    ws: Workspace, clock: SimulatedClock
) -> None:
    loyalty.join(ws, "u1", "monthly", key="j")
    clock.set(local(2026, 2, 10))
    m = loyalty.cancel(ws, "u1", key="c")
    assert (m.status, m.auto_renew, m.term_end) == ("cancelled", False, local(2026, 2, 28, 10))
    # the day before the end: still a member; lapse_due at 28 Feb 09:59 changes nothing
    clock.set(local(2026, 2, 28, 9, 59))
    assert loyalty.lapse_due(ws).lapsed == ()
    assert loyalty.membership_summary(ws, as_of=local(2026, 2, 28, 9, 59)).active == 1
    clock.set(local(2026, 2, 28, 10))
    assert [e.user_id for e in loyalty.lapse_due(ws).lapsed] == ["u1"]
    assert loyalty.membership_summary(ws, as_of=local(2026, 2, 28, 10)).active == 0


# -- refusals -----------------------------------------------------------------------------


def test_an_unknown_plan_is_refused_with_the_nearest_id(ws: Workspace) -> None:
    with pytest.raises(MembershipRefused, match=r"no plan 'montly' \(did you mean 'monthly'\?\)"):
        loyalty.join(ws, "u1", "montly", key="j")
    assert state_events(ws) == 0


def test_joining_twice_is_refused(ws: Workspace) -> None:
    loyalty.join(ws, "u1", "monthly", key="j1")
    with pytest.raises(MembershipRefused, match=r"already a member of plan 'monthly'.*Renew"):
        loyalty.join(ws, "u1", "yearly", key="j2")
    with pytest.raises(MembershipRefused, match="already a member"):
        loyalty.join(ws, "u1", "monthly", key="j3")
    assert state_events(ws) == 1


def test_renewing_a_cancelled_or_lapsed_membership_says_to_join_again(
    ws: Workspace, clock: SimulatedClock
) -> None:
    loyalty.join(ws, "u1", "monthly", key="j1")
    loyalty.cancel(ws, "u1", key="c1")
    with pytest.raises(MembershipRefused, match=r"cancelled and stays active until 2026-02-28"):
        loyalty.renew(ws, "u1", key="r1")
    with pytest.raises(MembershipRefused, match="already cancelled"):
        loyalty.cancel(ws, "u1", key="c2")
    loyalty.join(ws, "u2", "yearly", key="j2")
    clock.set(local(2027, 2, 1))
    # no lapse_due ran: renew settles the ended term first (a lapse), then refuses
    with pytest.raises(MembershipRefused, match=r"lapsed on 2027-01-31 10:00.*join again"):
        loyalty.renew(ws, "u2", key="r2")
    with pytest.raises(MembershipRefused, match=r"not a member.*join first"):
        loyalty.renew(ws, "nobody", key="r3")
    # joining again after the lapse starts a new term from now
    m = loyalty.join(ws, "u2", "yearly", key="j2-again")
    assert (m.status, m.term_start, m.term_end, m.renewals) == (
        "active",
        local(2027, 2, 1),
        local(2028, 2, 1),
        0,
    )


def test_a_join_in_the_future_is_refused(ws: Workspace) -> None:
    with pytest.raises(MembershipRefused, match="not ahead of time"):
        loyalty.join(ws, "u1", "monthly", key="j", at=T0 + timedelta(hours=1))


# -- idempotency --------------------------------------------------------------------------


def test_replaying_a_key_returns_the_first_result_and_writes_nothing(ws: Workspace) -> None:
    first = loyalty.join(ws, "u1", "monthly", key="j1")
    again = loyalty.join(ws, "u1", "monthly", key="j1")
    assert again.replayed and not first.replayed
    assert (again.term_start, again.term_end) == (first.term_start, first.term_end)
    assert state_events(ws) == 1
    assert len(events_in_warehouse(ws)) == 1
    with pytest.raises(IdempotencyConflict, match="plan_id"):
        loyalty.join(ws, "u1", "yearly", key="j1")
    r1 = loyalty.renew(ws, "u1", key="r1")
    r2 = loyalty.renew(ws, "u1", key="r1")
    assert r2.replayed and r2.term_end == r1.term_end and state_events(ws) == 2


def test_a_replay_writes_the_warehouse_event_a_crash_lost(ws: Workspace) -> None:
    loyalty.join(ws, "u1", "monthly", key="j1", publish=False)
    assert events_in_warehouse(ws) == []
    loyalty.join(ws, "u1", "monthly", key="j1")
    assert events_in_warehouse(ws) == [("membership_joined", "u1", T0)]
    loyalty.join(ws, "u2", "monthly", key="j2", publish=False)
    assert loyalty.publish_membership_events(ws) == 1
    assert loyalty.publish_membership_events(ws) == 0


# -- reminders ----------------------------------------------------------------------------


def test_one_reminder_per_term_exactly_reminder_days_before(
    ws: Workspace, clock: SimulatedClock
) -> None:
    loyalty.join(ws, "u1", "monthly", key="j1")  # ends 28 Feb 10:00; reminder_days 3
    loyalty.join(ws, "u2", "trial", key="j2")  # reminder_days 0: never reminded
    # 25 Feb 09:59 Shanghai: 3 days and 1 minute before the end, not yet
    clock.set(local(2026, 2, 25, 9, 59))
    assert loyalty.renewal_reminders(ws).reminders == ()
    clock.set(local(2026, 2, 25, 10))
    first = loyalty.renewal_reminders(ws)
    assert [(e.user_id, e.at, e.term_end) for e in first.reminders] == [
        ("u1", local(2026, 2, 25, 10), local(2026, 2, 28, 10))
    ]
    clock.set(local(2026, 2, 27))
    again = loyalty.renewal_reminders(ws)
    assert (again.reminders, again.already) == ((), 1)
    due = [e for e in events_in_warehouse(ws) if e[0] == "membership_renewal_due"]
    assert due == [("membership_renewal_due", "u1", local(2026, 2, 25, 10))]
    # after the auto-renewal the next term (to 31 March 10:00) gets its own reminder on
    # 28 March 10:00
    clock.set(local(2026, 3, 28, 10))
    loyalty.lapse_due(ws)
    nxt = loyalty.renewal_reminders(ws)
    assert [(e.user_id, e.at) for e in nxt.reminders] == [("u1", local(2026, 3, 28, 10))]


def test_a_cancelled_member_gets_no_renewal_reminder(ws: Workspace, clock: SimulatedClock) -> None:
    loyalty.join(ws, "u1", "monthly", key="j1")
    loyalty.cancel(ws, "u1", key="c1")
    clock.set(local(2026, 2, 27))
    assert loyalty.renewal_reminders(ws).reminders == ()


def test_racing_joins_of_one_customer_make_one_membership(ws: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ws.state  # noqa: B018 - connect before the threads share it

    def attempt(i: int) -> str:
        try:
            loyalty.join(ws, "u1", "monthly" if i % 2 else "yearly", key=f"j{i}", publish=False)
        except MembershipRefused:
            return "refused"
        return "joined"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert sorted(outcomes) == ["joined"] + ["refused"] * 5
    assert state_events(ws) == 1
    assert len(loyalty.memberships(ws, user_id="u1", status="active")) == 1
