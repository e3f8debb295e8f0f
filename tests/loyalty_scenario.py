"""A small loyalty scenario worked out by hand (tests/loyalty/test_loyalty_summary.py states the
figures): a ledger with awards, a redemption, an expiry, a reversal, a release, a lapsed
lot and a lot older than the trailing year; coupons issued and redeemed; tiers, tier
history and paid memberships inserted with the ORM; a few orders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import ingest_tables
from liucun.loyalty._coupons import issue_coupon, redeem_coupon
from liucun.state import (
    LoyaltyMembership,
    LoyaltyMembershipEvent,
    LoyaltyMemberTier,
    LoyaltyTierChange,
)
from liucun.workspace import Workspace

#: When the scenario's workspace clock starts.
START = datetime(2025, 1, 5, tzinfo=UTC)

PROGRAM_YAML = """\
name: summary shop
currency: CNY
timezone: UTC
points:
  point_value: 0.05
tiers:
  - {name: 基础, threshold: 0}
  - {name: 进阶, threshold: 1000}
  - {name: 尊享, threshold: 5000}
coupons:
  - {id: ten_off, kind: value, amount: 10, validity_days: 14, per_customer: 5}
  - {id: pct, kind: percent, amount: 10, validity_days: 30, per_customer: 5}
"""
AS_OF = datetime(2026, 3, 25, 12, tzinfo=UTC)


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def write_program(tmp_path: Path) -> Path:
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM_YAML, encoding="utf-8")
    return path


def build_ledger(ws: Workspace, program_file: Path) -> None:
    """The scenario of this file (see each step's comment)."""
    clock = ws.clock
    assert isinstance(clock, SimulatedClock)
    loyalty.award(ws, "u5", 650, key="a0")  # 2025-01-05: older than the trailing year
    clock.set(t(2026, 1, 10, 12))
    loyalty.apply_program(ws, program_file)
    loyalty.award(ws, "u1", 1000, key="a1", expires_at=t(2026, 3, 1))
    loyalty.award(ws, "u2", 500, key="a2")
    loyalty.award(ws, "u3", 200, key="a3", available_at=loyalty.ON_RELEASE)
    prog = loyalty.active_program(ws)
    c1 = issue_coupon(ws, "ten_off", "u1", key="c1", program=prog)
    issue_coupon(ws, "ten_off", "u2", key="c2", program=prog)  # valid to 25 Jan, unused
    issue_coupon(ws, "ten_off", "u3", key="c3", program=prog)  # valid to 25 Jan, unused
    clock.set(t(2026, 1, 11, 12))
    loyalty.redeem(ws, "u1", 300, key="r1")  # u1's lot: 700 left
    clock.set(t(2026, 1, 12, 12))
    loyalty.award(ws, "u2", 100, key="a4")
    loyalty.reverse(ws, "a4", key="rv1")  # issued net of the reversal: 0
    clock.set(t(2026, 1, 15, 12))
    redeem_coupon(ws, c1.code, order_id="o1", order_value=100.0, key="c1:o1")  # 10.00
    clock.set(t(2026, 2, 1, 12))
    loyalty.award(ws, "u1", 400, key="a5", expires_at=t(2026, 4, 10))  # expires in 30 days
    clock.set(t(2026, 3, 5, 12))
    loyalty.expire(ws, as_of=t(2026, 3, 5))  # a1's 700 expire
    clock.set(t(2026, 3, 10, 12))
    loyalty.award(ws, "u4", 250, key="a6", expires_at=t(2026, 3, 20))  # lapsed, not swept
    clock.set(t(2026, 3, 20, 12))
    issue_coupon(ws, "pct", "u4", key="c4", program=prog)  # still open on 25 March
    c5 = issue_coupon(ws, "pct", "u2", key="c5", program=prog)
    clock.set(t(2026, 3, 22, 12))
    redeem_coupon(ws, c5.code, order_id="o2", order_value=80.0, key="c5:o2")  # 8.00
    clock.set(t(2026, 3, 26, 12))
    loyalty.release(ws, "a3", key="rel3")  # after AS_OF: still pending then


def insert_members(ws: Workspace) -> None:
    """Tiers, tier history and memberships, as the tier and membership code store them."""
    now = t(2026, 3, 20)
    with ws.state.write() as s:
        for user, tier, boost in (
            ("u1", "进阶", None),
            ("u2", "基础", ("进阶", t(2026, 4, 1))),
            ("u3", "基础", None),
            ("u4", "尊享", None),
        ):
            s.add(
                LoyaltyMemberTier(
                    program="default",
                    user_id=user,
                    tier=tier,
                    growth_in_window=0.0,
                    tier_since=now,
                    updated_at=now,
                    boost_tier=boost[0] if boost else None,
                    boost_until=boost[1] if boost else None,
                )
            )
        s.add(  # another program's member is not counted
            LoyaltyMemberTier(
                program="other",
                user_id="u9",
                tier="基础",
                growth_in_window=0.0,
                tier_since=now,
                updated_at=now,
            )
        )
        for i, (user, before, after, when) in enumerate(
            (
                ("u2", None, "基础", t(2025, 11, 1)),  # before the 90 days
                ("u1", None, "基础", t(2026, 1, 10)),
                ("u1", "基础", "进阶", t(2026, 2, 15)),
                ("u3", None, "基础", t(2026, 1, 10)),
                ("u4", None, "进阶", t(2026, 1, 20)),
                ("u4", "进阶", "尊享", t(2026, 3, 1)),
                ("u4", "尊享", "进阶", t(2026, 3, 30)),  # after AS_OF
            )
        ):
            s.add(
                LoyaltyTierChange(
                    event_id=f"tier-{i}",
                    program="default",
                    user_id=user,
                    from_tier=before,
                    to_tier=after,
                    direction="up",
                    reason="test",
                    growth_in_window=0.0,
                    program_digest="x",
                    changed_at=when,
                )
            )
        plans = (
            # u1 joined for 2025, renewed for 2026 (the row holds the current term)
            ("u1", "active", t(2026, 1, 1), t(2027, 1, 1), [
                ("join", t(2025, 1, 1), t(2025, 1, 1), t(2026, 1, 1)),
                ("renewal", t(2025, 12, 25), t(2026, 1, 1), t(2027, 1, 1)),
            ]),
            # u2's term ended on 1 Feb 2026 without a renewal
            ("u2", "lapsed", t(2025, 2, 1), t(2026, 2, 1), [
                ("join", t(2025, 2, 1), t(2025, 2, 1), t(2026, 2, 1)),
                ("lapse", t(2026, 2, 1), None, None),
            ]),
            # u3 cancelled on 1 Sep 2025: the term ends there
            ("u3", "cancelled", t(2025, 3, 1), t(2026, 3, 1), [
                ("join", t(2025, 3, 1), t(2025, 3, 1), t(2026, 3, 1)),
                ("cancel", t(2025, 9, 1), None, None),
            ]),
            # u4 joined on 1 March 2026
            ("u4", "active", t(2026, 3, 1), t(2027, 3, 1), [
                ("join", t(2026, 3, 1), t(2026, 3, 1), t(2027, 3, 1)),
            ]),
        )  # fmt: skip
        for user, status, start, end, events in plans:
            m = LoyaltyMembership(
                program="default",
                user_id=user,
                plan_id="plus",
                status=status,
                joined_at=events[0][1],
                term_start=start,
                term_end=end,
                auto_renew=True,
                renewals=0,
                price=99.0,
                currency="CNY",
                version=1,
                updated_at=now,
            )
            s.add(m)
            s.flush()
            for kind, at, term_start, term_end in events:
                s.add(
                    LoyaltyMembershipEvent(
                        key=f"{user}:{kind}:{at.date()}",
                        request="{}",
                        membership_id=m.id,
                        kind=kind,
                        at=at,
                        term_start=term_start,
                        term_end=term_end,
                        amount=99.0 if kind in ("join", "renewal") else 0.0,
                        currency="CNY",
                    )
                )


def insert_orders(ws: Workspace) -> None:
    rows = [
        ("u1", "order", "2026-01-05 10:00", 50.0),  # member (2026 term): repeats on day 15
        ("u1", "order", "2026-01-20 10:00", 30.0),
        ("u2", "order", "2025-06-01 10:00", 40.0),  # member (2025 term): no repeat
        ("u4", "order", "2025-12-01 10:00", 60.0),  # not yet a member: repeats on day 45
        ("u4", "order", "2026-01-15 10:00", 20.0),
        ("u6", "order", "2025-10-01 10:00", 25.0),  # never a member: repeats on day 10
        ("u6", "order", "2025-10-11 10:00", 25.0),
        ("u6", "refund", "2025-10-12 10:00", -25.0),
        ("u7", "order", "2025-11-01 10:00", 15.0),  # never a member: no repeat
        ("u8", "order", "2025-01-10 10:00", 15.0),  # before the window
        ("u8", "order", "2025-05-01 10:00", 15.0),  # first in the window: repeats on day 19
        ("u8", "order", "2025-05-20 10:00", 15.0),
        ("u7", "visit", "2026-03-20 08:00", 0.0),  # the last event: data end 21 March
    ]
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts", "revenue"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["currency"] = "CNY"
    ingest_tables(ws.warehouse, events=pa.Table.from_pandas(df, preserve_index=False))


def build_scenario(ws: Workspace, tmp_path: Path) -> Workspace:
    """Everything above, in a workspace whose clock is a :class:`SimulatedClock` at
    :data:`START`."""
    build_ledger(ws, write_program(tmp_path))
    insert_members(ws)
    insert_orders(ws)
    return ws
