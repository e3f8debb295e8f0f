"""The loyalty program's figures for the report: :func:`loyalty_summary`.

Everything is read from the state database as it stood at ``as_of`` (transactions,
coupon codes and redemptions booked by then), one small SQLAlchemy query per figure,
plus the paid-membership figures of :func:`~liucun.loyalty.membership_summary` and
:func:`~liucun.loyalty.member_retention` (members' vs non-members' repeat purchase).
Definitions: docs/loyalty.md, "Loyalty in the report".

- **Outstanding points** are the points left in lots at ``as_of`` (the sum of each lot's
  legs booked by then), split into *available* and *pending* (``available_at`` after
  ``as_of``, or waiting for a release); points past their expiry that :func:`expire` has
  not swept yet are *lapsed*, not outstanding. **Liability** is outstanding × the
  program's ``points.point_value``, in the program currency, with and without pending.
- **Breakage** is points expired (program accounts ``expired`` and, when present,
  ``decayed``) ÷ points issued (minus the ``issued`` program account: awards net of their
  reversals), both booked in the same period: the trailing :data:`TRAILING_DAYS` days and
  all time.
- **Coupon redemption rate** is codes redeemed ÷ codes *settled* (redeemed, or whose
  validity ended unredeemed) by ``as_of``; codes still open are left out. Its cost is the
  discount booked on the redemptions.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, or_, select

from liucun.core import ConfigError, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._ledger import DEFAULT_PROGRAM
from liucun.loyalty._member_stats import member_retention, membership_summary
from liucun.loyalty._program import Program
from liucun.loyalty._tier_store import tier_distribution
from liucun.models.evaluation import wilson_interval
from liucun.state import (
    CouponCode,
    CouponRedemption,
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyTierChange,
    LoyaltyTransaction,
)

#: The trailing period of breakage, of renewals due and of the repeat-purchase window.
TRAILING_DAYS = 365
#: Points whose lots expire within this many days after ``as_of`` are "expiring soon".
EXPIRING_DAYS = 30
#: Tier changes within this many days before ``as_of`` are the tier flows.
FLOW_DAYS = 90
#: Calendar months (program time zone) of points issued / redeemed / expired per month.
MONTHS = 12
#: Repeat purchase within N days of an order (members' vs non-members' order days).
REPEAT_DAYS = (30, 90)
#: Program accounts whose points left members by expiry (``decayed``: loss-aversion decay).
EXPIRY_ACCOUNTS = ("expired", "decayed")
#: How :func:`loyalty_summary` names the tier of a member who had none before a change.
JOINED = "(joined)"
MEMBER, NON_MEMBER = "member", "non-member"


@dataclass(frozen=True)
class LoyaltySummary:
    """The loyalty program at ``as_of`` (see the module docstring and docs/loyalty.md).

    Money is in ``currency`` (the program's; None, with the liabilities, when no program
    is in force). Frames: ``monthly`` (month, issued, redeemed, expired), ``coupons`` (one
    row per coupon), ``tiers`` (tier, members), ``tier_flows`` (from_tier, to_tier,
    changes), ``member_repeat`` (group, days, units = order days, repeated, rate,
    ci_low, ci_high).
    """

    program: str
    as_of: datetime
    in_force: bool
    currency: str | None
    point_value: float | None
    timezone: str
    members: int
    available: int
    pending: int
    lapsed: int
    debt: int
    liability_available: float | None
    liability_with_pending: float | None
    expiring_soon: int
    expiring_soon_value: float | None
    issued: int
    redeemed: int
    expired: int
    breakage: float | None
    issued_trailing: int
    expired_trailing: int
    breakage_trailing: float | None
    coupons_issued: int
    coupons_redeemed: int
    coupons_settled: int
    coupon_rate: float | None
    coupon_cost: float
    paid_members: int
    renewals_due: int
    renewed: int
    renewal_rate: float | None
    renewal_ci: tuple[float, float] | None
    boosted: int = 0
    monthly: pd.DataFrame = field(default_factory=pd.DataFrame)
    coupons: pd.DataFrame = field(default_factory=pd.DataFrame)
    tiers: pd.DataFrame = field(default_factory=pd.DataFrame)
    tier_flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    member_repeat: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def outstanding(self) -> int:
        """Points members hold at ``as_of``: available plus pending."""
        return self.available + self.pending

    @property
    def has_ledger(self) -> bool:
        return self.members > 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, pd.DataFrame):
                value = json.loads(value.to_json(orient="records", date_format="iso"))
            elif isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        out["outstanding"] = self.outstanding
        return out


def loyalty_summary(
    ws: Any, *, program: str = DEFAULT_PROGRAM, as_of: datetime | None = None
) -> LoyaltySummary:
    """The figures of the report's Loyalty section for ledger program ``program`` at
    ``as_of`` (default: the workspace clock's now; a naive instant is UTC).

    The program in force (:func:`active_program`) gives the point value, the currency,
    the time zone of the months and the order of the tiers; without one the point
    figures are still given, the money figures are None and coupons of every program
    are counted."""
    at = as_utc(as_of) if as_of is not None else as_utc(ws.clock.now())
    prog = _in_force(ws, program)
    tz = prog.timezone if prog is not None else "UTC"
    value = float(prog.points.point_value) if prog is not None else None
    trailing = at - timedelta(days=TRAILING_DAYS)
    months = _month_starts(at, tz)
    dist = tier_distribution(ws, program, as_of=at)
    tiers, boosted = dist[["tier", "members"]].copy(), int(dist.boosted.sum())
    with ws.state.read() as s:
        members = int(
            s.scalar(
                select(func.count(LoyaltyAccount.id)).where(
                    LoyaltyAccount.program == program, LoyaltyAccount.opened_at <= at
                )
            )
            or 0
        )
        lots = _lot_figures(s, program, at)
        flows = _flows(s, program, at, trailing, months)
        coupons = _coupons(s, prog.name if prog is not None else None, at)
        tier_flows = _tier_flows(s, program, at)
    issued, expired = flows["issued"]["all"], flows["expired"]["all"]
    issued_t, expired_t = flows["issued"]["trailing"], flows["expired"]["trailing"]
    settled = int(coupons.settled.sum()) if len(coupons) else 0
    redeemed_codes = int(coupons.redeemed.sum()) if len(coupons) else 0
    paid, due, renewed = _membership(ws, program, at, trailing, in_force=prog is not None)
    money = (lambda points: round(points * value, 2)) if value is not None else (lambda _: None)
    return LoyaltySummary(
        program=program,
        as_of=at,
        in_force=prog is not None,
        currency=prog.currency if prog is not None else None,
        point_value=value,
        timezone=tz,
        members=members,
        available=lots["available"],
        pending=lots["pending"],
        lapsed=lots["lapsed"],
        debt=lots["debt"],
        liability_available=money(lots["available"]),
        liability_with_pending=money(lots["available"] + lots["pending"]),
        expiring_soon=lots["expiring"],
        expiring_soon_value=money(lots["expiring"]),
        issued=issued,
        redeemed=flows["redeemed"]["all"],
        expired=expired,
        breakage=expired / issued if issued > 0 else None,
        issued_trailing=issued_t,
        expired_trailing=expired_t,
        breakage_trailing=expired_t / issued_t if issued_t > 0 else None,
        coupons_issued=int(coupons.issued.sum()) if len(coupons) else 0,
        coupons_redeemed=redeemed_codes,
        coupons_settled=settled,
        coupon_rate=redeemed_codes / settled if settled else None,
        coupon_cost=round(float(coupons.cost.sum()), 2) if len(coupons) else 0.0,
        paid_members=paid,
        renewals_due=due,
        renewed=renewed,
        renewal_rate=renewed / due if due else None,
        renewal_ci=_wilson(renewed, due),
        boosted=boosted,
        monthly=_monthly(flows, months, tz),
        coupons=coupons,
        tiers=tiers,
        tier_flows=tier_flows,
        member_repeat=_member_repeat(ws, program, at) if prog is not None else _no_repeat(),
    )


# -- points -------------------------------------------------------------------------------


def _in_force(ws: Any, program: str) -> Program | None:
    try:
        return active_program(ws, program)
    except ConfigError:
        return None


def _booked(program: str, at: datetime) -> Any:
    """The legs of ``program``'s transactions booked by ``at`` (a join condition)."""
    return and_(
        LoyaltyTransaction.id == LoyaltyEntry.transaction_id,
        LoyaltyTransaction.program == program,
        LoyaltyTransaction.created_at <= at,
        LoyaltyEntry.unit == "points",
    )


def _lot_figures(s: Any, program: str, at: datetime) -> dict[str, int]:
    """Points left in lots at ``at`` (each lot's member legs booked by then), by state;
    and the members' debt (member legs without a lot)."""
    left = (
        select(LoyaltyEntry.lot_id.label("lot_id"), func.sum(LoyaltyEntry.amount).label("left"))
        .join(LoyaltyTransaction, _booked(program, at))
        .where(LoyaltyEntry.account_id.is_not(None), LoyaltyEntry.lot_id.is_not(None))
        .group_by(LoyaltyEntry.lot_id)
        .subquery()
    )
    lot = LoyaltyLot
    lapsed = and_(lot.expires_at.is_not(None), lot.expires_at <= at)
    soon = at + timedelta(days=EXPIRING_DAYS)

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, left.c.left), else_=0)), 0)

    row = s.execute(
        select(
            total(and_(~lapsed, lot.available_at <= at)),
            total(and_(~lapsed, lot.available_at > at)),
            total(lapsed),
            total(and_(lot.expires_at > at, lot.expires_at <= soon)),
        ).select_from(left.join(lot, lot.id == left.c.lot_id))
    ).one()
    debt = s.scalar(
        select(func.coalesce(func.sum(LoyaltyEntry.amount), 0))
        .join(LoyaltyTransaction, _booked(program, at))
        .where(LoyaltyEntry.account_id.is_not(None), LoyaltyEntry.lot_id.is_(None))
    )
    available, pending, gone, expiring = (int(v) for v in row)
    return {
        "available": available,
        "pending": pending,
        "lapsed": gone,
        "expiring": expiring,
        "debt": -int(debt or 0),
    }


def _month_starts(at: datetime, tz: str) -> list[datetime]:
    """The starts (UTC) of the :data:`MONTHS` local calendar months ending with the one
    holding ``at``, and the start of the next month."""
    local = at.astimezone(ZoneInfo(tz))
    y, m = local.year, local.month
    starts = []
    for k in range(MONTHS - 1, -2, -1):
        yy, mm = divmod((y * 12 + m - 1) - k, 12)
        starts.append(as_utc(datetime(yy, mm + 1, 1, tzinfo=ZoneInfo(tz))))
    return starts


def _flows(
    s: Any, program: str, at: datetime, trailing: datetime, months: list[datetime]
) -> dict[str, dict[str, int]]:
    """Points booked on the program accounts (``issued`` as points issued, the expiry
    accounts together as ``expired``): all time, in the trailing period and per month —
    of when they were earned (``earned_at``: an accrued order's time) where the write
    says, else of when they were booked, so that a backfill of a year of orders spreads
    over that year instead of landing in the month it ran."""
    created = func.coalesce(LoyaltyTransaction.earned_at, LoyaltyTransaction.created_at)
    windows: dict[str, Any] = {"all": True, "trailing": created > trailing}
    for start, end in itertools.pairwise(months):
        windows[start.isoformat()] = and_(created >= start, created < end)
    columns = [
        func.coalesce(func.sum(case((cond, LoyaltyEntry.amount), else_=0)), 0)
        if cond is not True
        else func.coalesce(func.sum(LoyaltyEntry.amount), 0)
        for cond in windows.values()
    ]
    rows = s.execute(
        select(LoyaltyEntry.program_account, *columns)
        .join(LoyaltyTransaction, _booked(program, at))
        .where(LoyaltyEntry.account_id.is_(None))
        .group_by(LoyaltyEntry.program_account)
    ).all()
    out = {name: dict.fromkeys(windows, 0) for name in ("issued", "redeemed", "expired")}
    for account, *sums in rows:
        name = "expired" if account in EXPIRY_ACCOUNTS else account
        if name not in out:
            continue
        sign = -1 if name == "issued" else 1  # issued is credited to members: negative legs
        for window, amount in zip(windows, sums, strict=True):
            out[name][window] += sign * int(amount)
    return out


def _monthly(flows: dict[str, dict[str, int]], months: list[datetime], tz: str) -> pd.DataFrame:
    rows = [
        {
            "month": start.astimezone(ZoneInfo(tz)).strftime("%Y-%m"),
            **{name: flows[name][start.isoformat()] for name in ("issued", "redeemed", "expired")},
        }
        for start in months[:-1]
    ]
    return pd.DataFrame(rows, columns=["month", "issued", "redeemed", "expired"])


# -- coupons ------------------------------------------------------------------------------


def _coupons(s: Any, program_name: str | None, at: datetime) -> pd.DataFrame:
    """Per coupon: codes issued by ``at``, redeemed by then, settled (redeemed, or whose
    validity ended unredeemed), the redemption rate over settled codes with its Wilson
    interval, and the discount booked (program currency)."""
    red = CouponRedemption
    done = and_(red.id.is_not(None), red.redeemed_at <= at)
    query = (
        select(
            CouponCode.coupon_id,
            func.min(CouponCode.currency),
            func.count(CouponCode.id),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((or_(done, CouponCode.valid_until <= at), 1), else_=0)),
            func.coalesce(func.sum(case((done, red.discount), else_=0.0)), 0.0),
        )
        .select_from(CouponCode)
        .outerjoin(red, red.code_id == CouponCode.id)
        .where(CouponCode.issued_at <= at)
        .group_by(CouponCode.coupon_id)
        .order_by(CouponCode.coupon_id)
    )
    if program_name is not None:
        query = query.where(CouponCode.program == program_name)
    frame = pd.DataFrame(
        s.execute(query).all(),
        columns=["coupon_id", "currency", "issued", "redeemed", "settled", "cost"],
    )
    for col in ("issued", "redeemed", "settled"):
        frame[col] = frame[col].astype(int)
    frame["cost"] = frame.cost.astype(float).round(2)
    settled = frame.settled.where(frame.settled > 0)
    frame["rate"] = (frame.redeemed / settled).astype(float)
    low, high = _wilson_arrays(frame.redeemed, frame.settled)
    frame["ci_low"], frame["ci_high"] = low, high
    return frame


# -- tiers --------------------------------------------------------------------------------


def _tier_flows(s: Any, program: str, at: datetime) -> pd.DataFrame:
    """Tier changes in the :data:`FLOW_DAYS` days before ``at`` (``loyalty_tier_history``),
    counted per (from, to); a member's first tier comes from :data:`JOINED`."""
    change = LoyaltyTierChange
    rows = s.execute(
        select(change.from_tier, change.to_tier, func.count(change.id))
        .where(
            change.program == program,
            change.changed_at > at - timedelta(days=FLOW_DAYS),
            change.changed_at <= at,
        )
        .group_by(change.from_tier, change.to_tier)
    ).all()
    return pd.DataFrame(
        [(JOINED if f is None else f, t, int(n)) for f, t, n in rows],
        columns=["from_tier", "to_tier", "changes"],
    )


# -- paid membership ----------------------------------------------------------------------


def _membership(
    ws: Any, program: str, at: datetime, trailing: datetime, *, in_force: bool
) -> tuple[int, int, int]:
    """Paid members at ``at``, terms that ended in the trailing period and those renewed
    (:func:`~liucun.loyalty.membership_summary`); zeros without a program in force."""
    if not in_force:
        return 0, 0, 0
    m = membership_summary(ws, as_of=at, since=trailing, program=program)
    return m.active, m.terms_due, m.terms_renewed


_REPEAT_COLUMNS = ["group", "days", "units", "repeated", "rate", "ci_low", "ci_high"]


def _no_repeat() -> pd.DataFrame:
    return pd.DataFrame(columns=_REPEAT_COLUMNS)


def _member_repeat(ws: Any, program: str, at: datetime) -> pd.DataFrame:
    """Members' vs non-members' repeat purchase within each of :data:`REPEAT_DAYS`
    (:func:`~liucun.loyalty.member_retention` at the data end, at most ``at``): units are
    a customer's order days, in the group of whether they held a paid term then."""
    end = ws.data_end()
    if end is None:
        return _no_repeat()
    end = min(end, at)
    rows = []
    for days in REPEAT_DAYS:
        r = member_retention(ws, as_of=end, days=days, program=program)
        for group, g in ((MEMBER, r.members), (NON_MEMBER, r.non_members)):
            rows.append((group, days, g.units, g.repeated))
    out = pd.DataFrame(rows, columns=["group", "days", "units", "repeated"])
    out = out[out.units > 0].reset_index(drop=True)
    out["rate"] = out.repeated / out.units
    out["ci_low"], out["ci_high"] = _wilson_arrays(out.repeated, out.units)
    return out[_REPEAT_COLUMNS]


def _wilson(k: int, n: int) -> tuple[float, float] | None:
    if n <= 0:
        return None
    low, high = wilson_interval(np.array([float(k)]), np.array([float(n)]))
    return float(low[0]), float(high[0])


def _wilson_arrays(k: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95 % intervals of ``k / n``; NaN where ``n`` is 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    low, high = np.full(len(n), np.nan), np.full(len(n), np.nan)
    ok = n > 0
    if ok.any():
        low[ok], high[ok] = wilson_interval(k[ok], n[ok])
    return low, high
