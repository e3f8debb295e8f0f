"""Membership analytics on SQLite and PostgreSQL: the renewal rate and the period's
counts on a small hand-made history, and members' vs non-members' repeat purchase on
hand-made orders (with a merged identity, a refund, an incomplete window). Every figure
is worked out by hand from the definitions in docs/loyalty.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from test_membership import program_file

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 1, 31, 2, tzinfo=UTC)  # 31 Jan 10:00 Shanghai


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def ws(tmp_path: Path, state_url: str, clock: SimulatedClock) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as w:
        loyalty.apply_program(w, program_file(tmp_path))
        yield w


def test_renewal_rate_and_the_period_counts(ws: Workspace, clock: SimulatedClock) -> None:
    loyalty.join(ws, "a", "monthly", key="ja")  # auto: renews 28 Feb and 31 Mar
    loyalty.join(ws, "b", "yearly", key="jb")  # ends 31 Jan 2027: not due in the period
    loyalty.join(ws, "c", "monthly", key="jc")
    loyalty.cancel(ws, "c", key="cc")  # lapses 28 Feb
    clock.set(local(2026, 2, 10, 10))
    loyalty.join(ws, "d", "monthly", key="jd")  # 10 Feb – 10 Mar
    clock.set(local(2026, 3, 1, 10))
    loyalty.cancel(ws, "d", key="cd")  # lapses 10 Mar
    clock.set(local(2026, 4, 1))
    loyalty.lapse_due(ws)
    s = loyalty.membership_summary(ws, since=local(2026, 2, 1), as_of=local(2026, 4, 1))
    # due in [1 Feb, 1 Apr): a's terms ending 28 Feb and 31 Mar (both renewed), c's
    # (28 Feb) and d's (10 Mar) not: 2 of 4
    assert (s.terms_due, s.terms_renewed, s.renewal_rate) == (4, 2, 0.5)
    assert (s.joined, s.renewed, s.auto_renewed, s.cancelled, s.lapsed) == (1, 2, 2, 1, 2)
    # d's join 15 + a's two renewals 2 × 15
    assert (s.revenue, s.currency) == (45.0, "CNY")
    # at 1 April: a (31 Mar – 30 Apr) and b hold a term
    assert s.active == 2
    everything = loyalty.membership_summary(ws, as_of=local(2026, 4, 1))
    # joins 15 + 99 + 15 + 15, renewals 30
    assert (everything.joined, everything.cancelled, everything.revenue) == (4, 2, 174.0)
    assert everything.to_dict()["renewal_rate"] == 0.5


def test_no_term_due_gives_no_rate(ws: Workspace) -> None:
    loyalty.join(ws, "a", "yearly", key="ja")
    s = loyalty.membership_summary(ws, as_of=T0 + timedelta(days=1))
    assert (s.active, s.joined, s.terms_due, s.renewal_rate, s.revenue) == (1, 1, 0, None, 99.0)


def test_members_and_non_members_repeat_rates(ws: Workspace, clock: SimulatedClock) -> None:
    # m1 and m1b are one customer (same e-mail): canonical m1; the membership was bought
    # under m1b on 31 Jan 10:00 (yearly, to 31 Jan 2027)
    loyalty.join(ws, "m1b", "yearly", key="j-m1b")
    loyalty.join(ws, "m2", "yearly", key="j-m2")
    clock.set(local(2026, 6, 1))
    ingest_tables(
        ws.warehouse,
        users=pa.table(
            {
                "user_id": ["m1", "m1b", "m2", "n1", "n2", "n3"],
                "email": ["m1@x.cn", "M1@x.cn ", "m2@x.cn", "n1@x.cn", "n2@x.cn", "n3@x.cn"],
            }
        ),
        options=IngestOptions(hash_key=ws.hash_key, clock=ws.clock),
    )
    orders = [
        ("m1", local(2026, 1, 20, 12), "order", 50.0),  # before joining: a non-member's
        ("m1", local(2026, 2, 1, 12), "order", 80.0),
        ("m1b", local(2026, 2, 10, 12), "order", 30.0),  # day 9 after 1 Feb: a repeat
        ("m1", local(2026, 4, 20, 12), "order", 60.0),
        ("m2", local(2026, 2, 5, 12), "order", 40.0),
        ("n1", local(2026, 2, 3, 12), "order", 20.0),
        ("n1", local(2026, 3, 1, 12), "order", 25.0),  # day 26 after 3 Feb: a repeat
        ("n2", local(2026, 2, 4, 12), "order", 35.0),
        ("n2", local(2026, 2, 10, 12), "refund", 35.0),  # a refund is not an order
        ("n3", local(2026, 5, 12, 12), "order", 10.0),  # window ends after as_of
        ("n3", local(2026, 5, 20, 12), "order", 0.0),
    ]
    ingest_tables(
        ws.warehouse,
        events=pa.table(
            {
                "event_id": [f"e{i}" for i in range(len(orders))],
                "user_id": [o[0] for o in orders],
                "event_type": [o[2] for o in orders],
                "ts": pa.array([o[1] for o in orders], type=pa.timestamp("us", tz="UTC")),
                "revenue": [o[3] for o in orders],
                "currency": ["CNY"] * len(orders),
            }
        ),
        options=IngestOptions(clock=ws.clock),
    )
    r = loyalty.member_retention(ws, as_of=local(2026, 6, 1), days=30)
    # complete units: order days up to 1 May (the day + 30 days ended by 1 June 00:00)
    # members: m1 1 Feb (repeat 10 Feb), m1 10 Feb (next 20 Apr, day 69), m1 20 Apr,
    # m2 5 Feb → 1 of 4
    assert (r.members.units, r.members.repeated, r.members.rate) == (4, 1, 0.25)
    # non-members: m1 20 Jan (repeat 1 Feb, day 12), n1 3 Feb (repeat), n1 1 Mar,
    # n2 4 Feb → 2 of 4; n3's days are incomplete
    assert (r.non_members.units, r.non_members.repeated, r.non_members.rate) == (4, 2, 0.5)
    assert (r.days, r.timezone) == (30, "Asia/Shanghai")


def test_member_retention_without_memberships_or_orders(ws: Workspace) -> None:
    r = loyalty.member_retention(ws, as_of=T0, days=90)
    assert (r.members.units, r.members.rate, r.non_members.units) == (0, None, 0)
