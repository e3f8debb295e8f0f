"""Loss aversion on SQLite and PostgreSQL: who is idle, the silence warning (day 30, once
per idle spell), the decay (10 % of the available points, rounded down, FIFO by expiry,
never pending points; once per idle month counted from the warning; no catch-up), the
recall package (coupon and tier upgrade), idempotent re-runs, repaired warehouse events,
and a dry run that writes nothing and predicts the real run.

The program is examples/loyalty/program.yaml (time zone Asia/Shanghai, UTC+8; a warning
after 30 days, 10 % decay after one idle month, recall_10 coupon of 10 CNY with
per_customer 1, a one-month upgrade; tiers 基础 (0) / 进阶 / 尊享). Every figure below is
worked out by hand from the definitions in docs/loyalty.md, "Loss aversion".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import ConfigError
from liucun.ingest import IngestOptions, ingest_tables
from liucun.state import LoyaltyEntry, LoyaltyMemberTier
from liucun.workspace import Workspace
from loss_support import (
    T0,
    events,
    local,
    lots,
    notices,
    program_workspace,
    run,
    table_rows,
    warnings_in_warehouse,
)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with program_workspace(tmp_path / "ws", state_url) as w:
        yield w


# -- who is idle --------------------------------------------------------------------------


def test_idle_days_count_program_calendar_days_since_the_latest_activity(ws: Workspace) -> None:
    for user in ("u1", "u2", "u5", "u6", "u7"):
        loyalty.award(ws, user, 100, key=f"{user}:a")
    loyalty.award(ws, "u3", 50, key="u3:a", available_at=timedelta(days=90))  # pending
    loyalty.award(ws, "u4", 50, key="u4:a")
    loyalty.redeem(ws, "u4", 50, key="u4:r")  # nothing left
    ws.clock.set(local(2026, 1, 10, 9))
    loyalty.redeem(ws, "u5", 10, key="u5:r")  # spending is activity: 10 January
    ws.clock.set(local(2026, 2, 3, 23))
    events(
        ws,
        ("u1", "order", local(2026, 1, 5, 23, 30), 88.0),  # 15:30 UTC, 5 January in Shanghai
        ("u1", "delivery", local(2026, 1, 7, 10), None),  # the shop's doing
        ("u1", "message_opened", local(2026, 1, 20, 10), None),  # a reaction to a message
        ("u6", "refund", local(2026, 1, 20, 10), 30.0),  # a refund is the member's doing
        ("u7", "order", local(2026, 1, 25, 8), 0.0),  # a zero-value order counts too
        ("u9", "order", local(2026, 1, 1, 8), 50.0),  # no account: not a member
    )
    ws.clock.set(local(2026, 2, 4, 12))
    got = {m.user_id: (m.available, m.idle_days, m.spell) for m in loyalty.idle_members(ws)}
    # as of 4 February (local midnight): u1 last ordered 5 Jan (30 days), u2 only earned on
    # 1 Jan (34), u5 redeemed on 10 Jan (25), u6 refunded on 20 Jan (15), u7 on 25 Jan (10)
    assert got == {
        "u1": (100, 30, date(2026, 1, 5)),
        "u2": (100, 34, date(2026, 1, 1)),
        "u5": (90, 25, date(2026, 1, 10)),
        "u6": (100, 15, date(2026, 1, 20)),
        "u7": (100, 10, date(2026, 1, 25)),
    }
    # as of 1 February the order of 5 Jan is 27 days old; 4 Jan: the order is in the future,
    # so u1's last activity is the award on 1 Jan (3 days)
    early = {m.user_id: m.idle_days for m in loyalty.idle_members(ws, as_of=date(2026, 2, 1))}
    assert early["u1"] == 27
    assert loyalty.idle_members(ws, as_of=date(2026, 1, 4))[0].idle_days == 3
    with pytest.raises(ConfigError, match="ahead of time"):
        loyalty.idle_members(ws, as_of=date(2026, 3, 1))


def test_an_account_under_a_merged_id_is_active_with_its_customer(ws: Workspace) -> None:
    """u_b's account; the users u_b and u_a share an e-mail, so the identity merge makes
    u_a (the smaller id) the customer: u_a's order of 25 Feb is u_b's activity too."""
    loyalty.award(ws, "u_b", 100, key="u_b:a")
    ws.clock.set(local(2026, 2, 26))
    options = IngestOptions(clock=ws.clock, hash_key=ws.hash_key)
    ingest_tables(
        ws.warehouse,
        users=pa.table({"user_id": ["u_a", "u_b"], "email": ["same@example.com"] * 2}),
        options=options,
    )
    events(ws, ("u_b", "visit", local(2026, 1, 1, 12), None))
    events(ws, ("u_a", "order", local(2026, 2, 25, 9), 42.0))
    ws.clock.set(local(2026, 3, 2, 12))
    (member,) = loyalty.idle_members(ws)
    assert (member.user_id, member.idle_days, member.spell) == ("u_b", 5, date(2026, 2, 25))
    assert run(ws, date(2026, 3, 2)).rows == []  # 5 days idle, not 60


# -- the silence warning ------------------------------------------------------------------


def test_the_warning_comes_at_day_30_not_29_once_per_idle_spell(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 105, key="u1:a")  # 1 January, 10:00 local
    assert run(ws, date(2026, 1, 30)).counts == {"warn": 0, "decay": 0, "recall": 0}  # day 29
    first = run(ws, date(2026, 1, 31))  # day 30
    assert first.counts == {"warn": 1, "decay": 0, "recall": 0}
    (row,) = first.rows
    assert (row.rule, row.user_id, row.key, row.points, row.idle_days) == (
        "warn",
        "u1",
        "loss:warn:default:u1:2026-01-01",
        105,
        30,
    )
    # warned on 31 Jan: the first decay is one idle month later, 28 Feb (clamped), of
    # floor(10 % of 105) = 10 points
    assert (row.details["decay_on"], row.details["decay_points"]) == ("2026-02-28", 10)
    assert first.events == 1
    assert run(ws, date(2026, 1, 31)).counts["warn"] == 0  # the same spell: no second one
    assert run(ws, date(2026, 2, 20)).counts["warn"] == 0
    (event,) = warnings_in_warehouse(ws)
    assert event["event_id"] == "loss:warn:default:u1:2026-01-01"
    assert event["ts"] == local(2026, 1, 31)
    props = json.loads(event["properties"])
    assert (props["points_at_stake"], props["decay_on"], props["decay_points"]) == (
        105,
        "2026-02-28",
        10,
    )
    assert props["decay_at"] == local(2026, 2, 28).isoformat()
    # a new order on 21 Feb starts a new spell: the next warning is due 30 days after it
    ws.clock.set(local(2026, 2, 21, 12))
    events(ws, ("u1", "order", local(2026, 2, 21, 9), 66.0))
    assert run(ws, date(2026, 3, 22)).counts["warn"] == 0  # day 29 of the new spell
    second = run(ws, date(2026, 3, 23))  # day 30
    assert [r.key for r in second.rows] == ["loss:warn:default:u1:2026-02-21"]
    assert second.counts["decay"] == 0  # the old spell's decay (due 28 Feb) never ran
    assert len(notices(ws, "silence_warning")) == 2
    assert [e["event_id"] for e in warnings_in_warehouse(ws)] == [
        "loss:warn:default:u1:2026-01-01",
        "loss:warn:default:u1:2026-02-21",
    ]
    # the warning is not activity: the first spell's own event did not reset it
    assert loyalty.idle_members(ws)[0].spell == date(2026, 2, 21)


def test_members_with_nothing_to_lose_are_never_warned(ws: Workspace) -> None:
    loyalty.award(ws, "spent", 20, key="spent:a")
    loyalty.redeem(ws, "spent", 20, key="spent:r")
    loyalty.award(ws, "pending", 50, key="pending:a", available_at=timedelta(days=365))
    loyalty.award(ws, "lapsed", 40, key="lapsed:a", expires_at=local(2026, 1, 15))
    loyalty.award(ws, "held", 7, key="held:a")
    events(ws, ("stranger", "order", local(2026, 1, 1, 12), 20.0))
    result = run(ws, date(2026, 3, 1))
    # only 'held' has available points (7); the lapsed lot is not spendable even before
    # `expire` sweeps it
    assert (result.members, result.idle) == (1, 1)
    assert [(r.rule, r.user_id, r.points) for r in result.rows] == [("warn", "held", 7)]


# -- decay and recall ---------------------------------------------------------------------


def _three_lots(ws: Workspace) -> None:
    """u1: 57 points expiring 1 Dec 2026 (FIFO first), 48 that never expire, 30 pending
    until 20 July; 105 available."""
    loyalty.award(ws, "u1", 57, key="A", expires_at=local(2026, 12, 1))
    loyalty.award(ws, "u1", 48, key="B")
    loyalty.award(ws, "u1", 30, key="C", available_at=T0 + timedelta(days=200))


def test_decay_takes_a_tenth_of_the_available_points_rounded_down_fifo(ws: Workspace) -> None:
    _three_lots(ws)
    assert run(ws, date(2026, 1, 31)).counts["warn"] == 1
    assert run(ws, date(2026, 2, 27)).counts == {"warn": 0, "decay": 0, "recall": 0}
    result = run(ws, date(2026, 2, 28))  # one idle month after the warning of 31 Jan
    assert result.counts == {"warn": 0, "decay": 1, "recall": 1}
    assert result.points_decayed == 10  # floor(0.1 × 105); the 30 pending points do not count
    assert lots(ws, "u1") == {"A": 47, "B": 48, "C": 30}  # taken from the first to expire
    acct = loyalty.account(ws, "u1")
    assert (acct.balance, acct.pending) == (95, 30)
    decay = acct.entries[-1]
    assert (decay.kind, decay.points, decay.key) == (
        "decay",
        -10,
        "loss:decay:default:u1:2026-01-01:1",
    )
    with ws.state.read() as s:
        decayed = s.scalar(
            select(func.sum(LoyaltyEntry.amount)).where(LoyaltyEntry.program_account == "decayed")
        )
    assert decayed == 10
    assert loyalty.check(ws).ok
    # the recall package: the 10 CNY recall_10 coupon and 进阶 (the tier above the lowest,
    # 基础, which a member without a stored tier holds) until the end of 27 March local
    recall = next(r for r in result.rows if r.rule == "recall")
    assert recall.details["coupon_value"] == 10.0 and recall.details["coupon_code"]
    assert (result.coupons, result.coupon_value, result.boosts) == (1, 10.0, 1)
    (code,) = loyalty.list_coupons(ws, "u1")
    assert (code.coupon_id, code.amount, code.code) == (
        "recall_10",
        10.0,
        recall.details["coupon_code"],
    )
    with ws.state.read() as s:
        row = s.scalar(select(LoyaltyMemberTier).where(LoyaltyMemberTier.user_id == "u1"))
        assert row is not None
        assert (row.tier, row.growth_in_window, row.boost_tier, row.boost_until) == (
            "基础",
            0.0,
            "进阶",
            local(2026, 3, 28),
        )


def test_reruns_add_nothing_and_later_idle_months_decay_again_without_catch_up(
    ws: Workspace,
) -> None:
    _three_lots(ws)
    run(ws, date(2026, 1, 31))
    run(ws, date(2026, 2, 28))
    before = table_rows(ws)
    again = run(ws, date(2026, 2, 28))
    assert (again.rows, again.events) == ([], 0)
    assert table_rows(ws) == before
    # the second idle month ends on 31 March (31 Jan + 2 months), not on 28 March
    assert run(ws, date(2026, 3, 30)).rows == []
    second = run(ws, date(2026, 3, 31))
    assert [(r.rule, r.key, r.points) for r in second.rows] == [
        ("decay", "loss:decay:default:u1:2026-01-01:2", 9)  # floor(0.1 × 95); no 2nd recall
    ]
    assert lots(ws, "u1") == {"A": 38, "B": 48, "C": 30}
    # no run in April or May: on 15 June periods 3 (30 Apr) and 4 (31 May) are due, and
    # only the latest is booked — floor(0.1 × 86) = 8, not three decays at once
    late = run(ws, date(2026, 6, 15))
    assert [(r.rule, r.key, r.points) for r in late.rows] == [
        ("decay", "loss:decay:default:u1:2026-01-01:4", 8)
    ]
    assert lots(ws, "u1") == {"A": 30, "B": 48, "C": 30}
    assert len(notices(ws, "decay")) == 3 and len(notices(ws, "recall")) == 1
    assert loyalty.check(ws).ok
    # a decay is a ledger write like any other: reversing it puts its points back
    loyalty.reverse(ws, "loss:decay:default:u1:2026-01-01:4", key="goodwill-1", reason=None)
    assert lots(ws, "u1") == {"A": 38, "B": 48, "C": 30}
    assert loyalty.check(ws).ok


def test_a_history_ending_long_before_as_of_is_warned_first_and_decayed_a_month_later(
    ws: Workspace,
) -> None:
    loyalty.award(ws, "u1", 200, key="u1:a")
    ws.clock.set(local(2026, 1, 3))
    events(ws, ("u1", "order", local(2026, 1, 2, 15), 200.0))
    first = run(ws, date(2026, 7, 1))  # 180 days idle, never run before
    assert [(r.rule, r.idle_days, r.points) for r in first.rows] == [("warn", 180, 200)]
    assert first.rows[0].details["decay_on"] == "2026-08-01"
    assert loyalty.account(ws, "u1").balance == 200  # no decay without a month's notice
    assert run(ws, date(2026, 7, 31)).rows == []
    later = run(ws, date(2026, 8, 1))
    assert [(r.rule, r.points) for r in later.rows] == [("decay", 20), ("recall", 0)]
    assert loyalty.account(ws, "u1").balance == 180
