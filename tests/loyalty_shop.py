"""Loyalty data over a simulated shop, for the report's browser test and screenshots.

Not the accrual, tier review or membership code (other modules build those): a test
stand-in that writes what they will write, so every chart of the Loyalty section has data.
The example program is applied; a sample of customers earns one point and one growth per
order's currency unit (points valid 6 months), redeems now and then, gets coupons (some
redeemed at a later order); tiers are evaluated monthly with
:func:`liucun.loyalty.evaluate_tiers` and every change is kept in the tier history; a
share of customers joins the paid plan at its first order for 6-month terms, most renew.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.loyalty._coupons import CouponRefused, issue_coupon, redeem_coupon
from liucun.state import (
    LoyaltyMembership,
    LoyaltyMembershipEvent,
    LoyaltyMemberTier,
    LoyaltyTierChange,
)
from liucun.workspace import open_workspace

EXAMPLE = Path(__file__).parents[1] / "examples" / "loyalty" / "program.yaml"
TERM = timedelta(days=182)


def shop_loyalty(path: Path, *, customers: int = 250, seed: int = 5) -> None:
    """Write the loyalty data described above into the workspace at ``path``; the clock
    ends at the system's now (the report reads the state at the clock's now)."""
    rng = np.random.default_rng(seed)
    with open_workspace(path) as probe:
        events = probe.events()
        orders = (
            events.filter((events.event_type == "order") & (events.revenue > 0))
            .select("event_id", "user_id", "ts", "revenue")
            .to_pandas()
        )
    users = np.sort(orders.user_id.dropna().unique())
    chosen = set(rng.choice(users, size=min(customers, len(users)), replace=False))
    orders = orders[orders.user_id.isin(chosen)].copy()
    orders["ts"] = pd.to_datetime(orders.ts, utc=True)
    orders = orders.sort_values(["ts", "event_id"]).reset_index(drop=True)
    start = orders.ts.iloc[0].to_pydatetime()
    clock = SimulatedClock(start)
    with open_workspace(path, clock=clock) as ws:
        loyalty.apply_program(ws, EXAMPLE)
        prog = loyalty.active_program(ws)
        balance: dict[str, int] = {}
        open_codes: dict[str, tuple[str, datetime]] = {}
        members = set(rng.choice(sorted(chosen), size=len(chosen) // 6, replace=False))
        first_order: dict[str, datetime] = {}
        growth_rows: list[tuple[str, datetime, int]] = []
        next_review = _month_after(start)
        previous: pd.DataFrame | None = None
        history: list[dict[str, object]] = []
        for row in orders.itertuples():
            ts = row.ts.to_pydatetime()
            while ts >= next_review:  # the month's expiry and tier review first
                clock.set(next_review)
                loyalty.expire(ws, as_of=next_review)
                previous = _review(prog, growth_rows, next_review, previous, history)
                next_review = _month_after(next_review)
            clock.set(ts)
            user, points = str(row.user_id), math.floor(row.revenue)
            first_order.setdefault(user, ts)
            loyalty.award(
                ws,
                user,
                max(points, 1),
                key=f"order:{row.event_id}",
                expires_at=ts + TERM,
                growth=max(points, 1),
                earned_at=ts,
            )
            growth_rows.append((user, ts, max(points, 1)))
            balance[user] = balance.get(user, 0) + max(points, 1)
            if user in open_codes:
                code, until = open_codes.pop(user)
                if ts < until and rng.random() < 0.6:
                    # below the minimum order the code stays open
                    with contextlib.suppress(CouponRefused):
                        redeem_coupon(
                            ws,
                            code,
                            order_id=str(row.event_id),
                            order_value=float(row.revenue),
                            key=f"coupon:{row.event_id}",
                            at=ts,
                        )
            elif rng.random() < 0.35:
                coupon = str(rng.choice(["recall_10", "birthday_coupon", "frequent_buyer"]))
                try:
                    issued = issue_coupon(
                        ws, coupon, user, key=f"issue:{row.event_id}", program=prog
                    )
                    open_codes[user] = (issued.code, issued.valid_until)
                except CouponRefused:
                    pass  # a per-customer limit or the monthly cap
            if rng.random() < 0.25:
                spend = int(loyalty.account(ws, user).balance * rng.uniform(0.3, 0.9))
                if spend > 0:
                    loyalty.redeem(ws, user, spend, key=f"redeem:{row.event_id}")
        now = datetime.now(UTC).replace(microsecond=0)
        while next_review <= now:
            clock.set(next_review)
            loyalty.expire(ws, as_of=next_review)
            previous = _review(prog, growth_rows, next_review, previous, history)
            next_review = _month_after(next_review)
        clock.set(now)
        _store_tiers(ws, previous, history, now)
        _store_memberships(ws, {u: first_order[u] for u in members if u in first_order}, rng, now)


def _month_after(at: datetime) -> datetime:
    y, m = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return datetime(y, m, 1, tzinfo=UTC)


def _review(
    prog: loyalty.Program,
    growth_rows: list[tuple[str, datetime, int]],
    at: datetime,
    previous: pd.DataFrame | None,
    history: list[dict[str, object]],
) -> pd.DataFrame:
    growth = pd.DataFrame(growth_rows, columns=["user_id", "ts", "growth"])
    result = loyalty.evaluate_tiers(growth, prog, as_of=at, previous=previous)
    for r in result[result.changed].itertuples():
        history.append(
            {
                "user_id": r.user_id,
                "from_tier": None if pd.isna(r.previous_tier) else r.previous_tier,
                "to_tier": r.tier,
                "direction": r.direction,
                "reason": r.reason,
                "growth_in_window": float(r.growth_in_window),
                "changed_at": at,
            }
        )
    return result


def _store_tiers(
    ws: object, tiers: pd.DataFrame | None, history: list[dict[str, object]], now: datetime
) -> None:
    if tiers is None:
        return
    with ws.state.write() as s:  # type: ignore[attr-defined]
        for r in tiers.itertuples():
            s.add(
                LoyaltyMemberTier(
                    program="default",
                    user_id=r.user_id,
                    tier=r.tier,
                    growth_in_window=float(r.growth_in_window),
                    tier_since=pd.Timestamp(r.tier_since).to_pydatetime(),
                    updated_at=now,
                )
            )
        for i, h in enumerate(history):
            s.add(
                LoyaltyTierChange(event_id=f"tier:{i}", program="default", program_digest="t", **h)
            )


def _store_memberships(
    ws: object, joins: dict[str, datetime], rng: np.random.Generator, now: datetime
) -> None:
    with ws.state.write() as s:  # type: ignore[attr-defined]
        for user, joined in sorted(joins.items()):
            terms = [(joined, joined + TERM)]
            while terms[-1][1] <= now and rng.random() < 0.7:
                terms.append((terms[-1][1], terms[-1][1] + TERM))
            status = "active" if terms[-1][1] > now else "lapsed"
            m = LoyaltyMembership(
                program="default",
                user_id=user,
                plan_id="plus_yearly",
                status=status,
                joined_at=joined,
                term_start=terms[-1][0],
                term_end=terms[-1][1],
                auto_renew=True,
                renewals=len(terms) - 1,
                price=99.0,
                currency="CNY",
                version=len(terms),
                updated_at=now,
            )
            s.add(m)
            s.flush()
            for i, (begin, end) in enumerate(terms):
                s.add(
                    LoyaltyMembershipEvent(
                        key=f"plus:{user}:{i}",
                        request="{}",
                        membership_id=m.id,
                        kind="join" if i == 0 else "renew",
                        at=begin,
                        term_start=begin,
                        term_end=end,
                        amount=99.0,
                        currency="CNY",
                    )
                )
