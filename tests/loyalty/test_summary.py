"""``loyalty_summary`` on SQLite and PostgreSQL: a small ledger (awards, a redemption, an
expiry, a reversal, a release, a lapsed lot, a lot older than the trailing year), coupons
issued and redeemed, tiers, tier history and paid memberships inserted with the ORM, and a
few orders. Every expected figure is worked out by hand from the definitions in
docs/loyalty.md ("Loyalty in the report")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import ingest_tables
from liucun.loyalty import loyalty_summary
from liucun.loyalty._coupons import issue_coupon, redeem_coupon
from liucun.state import (
    LoyaltyMembership,
    LoyaltyMembershipEvent,
    LoyaltyMemberTier,
    LoyaltyTierChange,
)
from liucun.workspace import Workspace, init_workspace

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


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    clock = SimulatedClock(t(2025, 1, 5))
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=clock) as w:
        yield w


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
                ("renew", t(2025, 12, 25), t(2026, 1, 1), t(2027, 1, 1)),
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
                        amount=99.0 if kind in ("join", "renew") else 0.0,
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


@pytest.fixture
def full(ws: Workspace, tmp_path: Path) -> Workspace:
    build_ledger(ws, write_program(tmp_path))
    insert_members(ws)
    insert_orders(ws)
    return ws


def test_points_liability_expiring_and_breakage_by_hand(full: Workspace) -> None:
    s = loyalty_summary(full, as_of=AS_OF)
    assert (s.in_force, s.currency, s.point_value, s.members) == (True, "CNY", 0.05, 5)
    # available: u1's a5 400 + u2's a2 500 + u5's a0 650; pending: u3's a3 200 (released
    # on 26 March, after AS_OF); lapsed: u4's a6 250 (expired 20 March, not swept)
    assert (s.available, s.pending, s.lapsed, s.debt) == (1550, 200, 250, 0)
    assert s.outstanding == 1750
    assert s.liability_available == pytest.approx(77.50)  # 1550 × 0.05
    assert s.liability_with_pending == pytest.approx(87.50)  # 1750 × 0.05
    # a5's 400 expire on 10 April, within 30 days of 25 March; a3's in 2027
    assert (s.expiring_soon, s.expiring_soon_value) == (400, pytest.approx(20.0))
    # issued: 650 + 1000 + 500 + 200 + (100 − 100 reversed) + 400 + 250 = 3000
    assert (s.issued, s.redeemed, s.expired) == (3000, 300, 700)
    assert s.breakage == pytest.approx(700 / 3000)
    # the trailing 365 days leave out a0 (5 January 2025)
    assert (s.issued_trailing, s.expired_trailing) == (2350, 700)
    assert s.breakage_trailing == pytest.approx(700 / 2350)


def test_points_per_month_by_hand(full: Workspace) -> None:
    monthly = loyalty_summary(full, as_of=AS_OF).monthly.set_index("month")
    assert list(monthly.index) == [f"2025-{m:02d}" for m in range(4, 13)] + [
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert monthly.loc["2026-01"].tolist() == [1700, 300, 0]  # 1000+500+200+100−100
    assert monthly.loc["2026-02"].tolist() == [400, 0, 0]
    assert monthly.loc["2026-03"].tolist() == [250, 0, 700]
    assert monthly.drop(index=["2026-01", "2026-02", "2026-03"]).to_numpy().sum() == 0


def test_the_ledger_as_it_stood_at_an_earlier_instant(full: Workspace) -> None:
    # 11 January 23:00: after the redemption, before a4 and its reversal
    s = loyalty_summary(full, as_of=t(2026, 1, 11, 23))
    assert (s.members, s.available, s.pending, s.lapsed) == (4, 700 + 500 + 650, 200, 0)
    assert (s.issued, s.redeemed, s.expired) == (2350, 300, 0)
    # 27 March: a3 was released on 26 March
    later = loyalty_summary(full, as_of=t(2026, 3, 27))
    assert (later.available, later.pending) == (1750, 0)


def test_coupons_rate_over_settled_codes_and_cost(full: Workspace) -> None:
    s = loyalty_summary(full, as_of=AS_OF)
    by = s.coupons.set_index("coupon_id")
    # ten_off: 3 issued, c1 redeemed (10.00), c2 and c3 ran out on 25 January
    assert by.loc["ten_off", ["issued", "redeemed", "settled"]].tolist() == [3, 1, 3]
    assert by.loc["ten_off", "cost"] == pytest.approx(10.0)
    assert by.loc["ten_off", "rate"] == pytest.approx(1 / 3)
    # Wilson 95 % interval of 1 / 3 (z = 1.95996)
    assert by.loc["ten_off", "ci_low"] == pytest.approx(0.061492, abs=1e-5)
    assert by.loc["ten_off", "ci_high"] == pytest.approx(0.792340, abs=1e-5)
    # pct: c5 redeemed (10 % of 80 = 8.00), c4 still open (left out of the rate)
    assert by.loc["pct", ["issued", "redeemed", "settled"]].tolist() == [2, 1, 1]
    assert by.loc["pct", "cost"] == pytest.approx(8.0)
    assert (s.coupons_issued, s.coupons_redeemed, s.coupons_settled) == (5, 2, 4)
    assert s.coupon_rate == pytest.approx(0.5)
    assert s.coupon_cost == pytest.approx(18.0)
    # before c5 was redeemed: pct has nothing settled
    early = loyalty_summary(full, as_of=t(2026, 3, 21)).coupons.set_index("coupon_id")
    assert by.loc["pct", "issued"] == early.loc["pct", "issued"] == 2
    assert early.loc["pct", "settled"] == 0 and pd.isna(early.loc["pct", "rate"])


def test_tiers_and_flows_by_hand(full: Workspace) -> None:
    s = loyalty_summary(full, as_of=AS_OF)
    assert s.tiers.to_dict("list") == {"tier": ["基础", "进阶", "尊享"], "members": [2, 1, 1]}
    assert s.boosted == 1  # u2 holds 进阶 until 1 April
    flows = {(r.from_tier, r.to_tier): r.changes for r in s.tier_flows.itertuples()}
    assert flows == {
        ("(joined)", "基础"): 2,
        ("基础", "进阶"): 1,
        ("(joined)", "进阶"): 1,
        ("进阶", "尊享"): 1,
    }


def test_paid_membership_and_renewal_rate_by_hand(full: Workspace) -> None:
    s = loyalty_summary(full, as_of=AS_OF)
    assert s.paid_members == 2  # u1 (2026 term) and u4
    # terms ending in the trailing year: u1's 2025 (renewed), u2's (lapsed), u3's (cut
    # by the cancellation on 1 September 2025)
    assert (s.renewals_due, s.renewed) == (3, 1)
    assert s.renewal_rate == pytest.approx(1 / 3)
    assert s.renewal_ci == pytest.approx((0.061492, 0.792340), abs=1e-5)
    # on 1 August 2025 u1, u2 and u3 were members, u4 not yet
    assert loyalty_summary(full, as_of=t(2025, 8, 1)).paid_members == 3


def test_member_and_non_member_repeat_purchase_by_hand(full: Workspace) -> None:
    rep = loyalty_summary(full, as_of=AS_OF).member_repeat
    got = {(r.group, r.days): (r.customers, r.repeaters) for r in rep.itertuples()}
    # window: the 365 days before the data end (21 March 2026); first order in it
    assert got == {
        ("member", 30): (2, 1),  # u1 yes, u2 no
        ("non-member", 30): (4, 2),  # u4 no (day 45), u6 yes, u7 no, u8 yes
        ("member", 90): (1, 0),  # u2 (u1's 90 days are not over)
        ("non-member", 90): (4, 3),  # u4, u6, u8 yes; u7 no
    }
    row = rep[(rep.group == "non-member") & (rep.days == 90)].iloc[0]
    assert row.rate == pytest.approx(0.75)
    assert (row.ci_low, row.ci_high) == pytest.approx((0.300642, 0.954413), abs=1e-5)


def test_without_a_program_the_points_are_counted_and_money_is_unknown(
    ws: Workspace,
) -> None:
    empty = loyalty_summary(ws)
    assert (empty.in_force, empty.members, empty.outstanding, empty.issued) == (False, 0, 0, 0)
    assert empty.breakage is None and empty.coupon_rate is None and empty.renewal_rate is None
    assert empty.member_repeat.empty and empty.tiers.empty
    loyalty.award(ws, "u1", 120, key="k1")
    s = loyalty_summary(ws)
    assert (s.members, s.available, s.currency, s.liability_available) == (1, 120, None, None)
    assert s.to_dict()["outstanding"] == 120


def test_debt_is_reported_apart_from_the_outstanding_points(ws: Workspace) -> None:
    loyalty.set_policy(ws, allow_negative=True)
    loyalty.award(ws, "u1", 100, key="k1")
    loyalty.redeem(ws, "u1", 80, key="k2")
    loyalty.reverse(ws, "k1", key="k3")  # takes 100: 20 from the lot, 80 as debt
    s = loyalty_summary(ws)
    assert (s.available, s.debt, s.issued, s.redeemed) == (0, 80, 0, 80)
