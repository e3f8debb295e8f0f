"""``loyalty_summary`` on SQLite and PostgreSQL: a small ledger (awards, a redemption, an
expiry, a reversal, a release, a lapsed lot, a lot older than the trailing year), coupons
issued and redeemed, tiers, tier history and paid memberships inserted with the ORM, and a
few orders. Every expected figure is worked out by hand from the definitions in
docs/loyalty.md ("Loyalty in the report")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.loyalty import loyalty_summary
from liucun.workspace import Workspace, init_workspace
from loyalty_scenario import AS_OF, START, build_scenario, t


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(START)) as w:
        yield w


@pytest.fixture
def full(ws: Workspace, tmp_path: Path) -> Workspace:
    return build_scenario(ws, tmp_path)


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
    # u2 earned 基础 but holds a temporary 进阶 until 1 April: counted at the tier in force
    assert s.tiers.to_dict("list") == {"tier": ["基础", "进阶", "尊享"], "members": [1, 2, 1]}
    assert s.boosted == 1
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
    got = {(r.group, r.days): (r.units, r.repeated) for r in rep.itertuples()}
    # units: a customer's order days whose window ended by the data end (21 March 2026),
    # in the group of whether they held a paid term that day (member_retention)
    assert got == {
        # u1 5 Jan 2026 (renewed term; repeats on day 15), u1 20 Jan, u2 1 Jun 2025
        ("member", 30): (3, 1),
        # u4 1 Dec (next on day 45) and 15 Jan (joined only on 1 March), u6 1 Oct (day 10)
        # and 11 Oct, u7 1 Nov, u8 10 Jan 2025, 1 May (day 19) and 20 May
        ("non-member", 30): (8, 2),
        ("member", 90): (1, 0),  # u2; u1's two January days are not 90 days old
        # u4 1 Dec (day 45), u6 1 Oct and u8 1 May repeat; u6 11 Oct, u7, u8 10 Jan (day
        # 111) and 20 May do not; u4 15 Jan is too recent
        ("non-member", 90): (7, 3),
    }
    row = rep[(rep.group == "non-member") & (rep.days == 90)].iloc[0]
    assert row.rate == pytest.approx(3 / 7)
    # Wilson 95 % interval of 3 / 7, as statsmodels' proportion_confint(3, 7, "wilson")
    assert (row.ci_low, row.ci_high) == pytest.approx((0.158220, 0.749542), abs=1e-5)


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


def test_a_history_ending_long_before_as_of(full: Workspace) -> None:
    s = loyalty_summary(full, as_of=t(2027, 6, 1))
    # a5 (10 April 2026) and a6 (20 March 2026) are past expiry, never swept; a0, a2 and
    # the released a3 never expire
    assert (s.available, s.pending, s.lapsed, s.expiring_soon) == (650 + 500 + 200, 0, 650, 0)
    assert s.issued_trailing == 0 and s.breakage_trailing is None
    assert s.breakage == pytest.approx(700 / 3000)
    # u1's term ended on 1 January 2027 and u4's on 1 March 2027, neither renewed
    assert (s.paid_members, s.renewals_due, s.renewed) == (0, 2, 0)
    # the repeat window is the year before the data end, whatever as_of
    assert s.member_repeat.equals(loyalty_summary(full, as_of=AS_OF).member_repeat)
