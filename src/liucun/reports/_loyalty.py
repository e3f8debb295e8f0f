"""The report's "Loyalty" section: the points liability and what expires soon, breakage,
points per month, tiers and their flows, coupons, and paid membership (renewals, and the
repeat purchase of members against everybody else) — from
:func:`liucun.loyalty.loyalty_summary`.

The section is there only when the workspace has a loyalty program in force (``liucun
loyalty program apply``) or ledger accounts in the default program; otherwise the builder
returns None and the report has no Loyalty section. The ledger lives in the state
database and is read as it stood at :attr:`ReportContext.state_as_of` (the report's
``as_of`` when one was given, else the workspace clock's now).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import func, select

from liucun.loyalty import DEFAULT_PROGRAM, LoyaltySummary, loyalty_summary
from liucun.loyalty._summary import EXPIRING_DAYS, FLOW_DAYS, JOINED, TRAILING_DAYS
from liucun.reports._analytics import ReportContext, _formatted
from liucun.reports._render import Kpi, Section, number, pct
from liucun.state import LoyaltyAccount, LoyaltyProgramVersion
from liucun.workspace import Workspace

#: Series of the points-per-month chart: column, legend, colour.
_FLOW_SERIES = (
    ("issued", "issued", "#2f855a"),
    ("redeemed", "redeemed", "#3182ce"),
    ("expired", "expired", "#c05621"),
)
_GROUP_COLORS = {"member": "#805ad5", "non-member": "#a0aec0"}


def has_loyalty(ws: Workspace, program: str = DEFAULT_PROGRAM) -> bool:
    """Whether ``program`` has a version in force or at least one ledger account."""
    with ws.state.read() as s:
        versions = s.scalar(
            select(func.count(LoyaltyProgramVersion.id)).where(
                LoyaltyProgramVersion.program == program
            )
        )
        accounts = s.scalar(
            select(func.count(LoyaltyAccount.id)).where(LoyaltyAccount.program == program)
        )
    return bool(versions) or bool(accounts)


def loyalty_section(ctx: ReportContext) -> Section | None:
    """The Loyalty section, or None when the workspace runs no loyalty program."""
    ws = ctx.workspace
    if ws is None or not has_loyalty(ws):
        return None
    at = ctx.state_as_of or ctx.as_of
    summary = loyalty_summary(ws, as_of=at)
    sec = Section("loyalty", "Loyalty")
    sec.kpis = _kpis(summary)
    if not summary.in_force:
        sec.warnings.append(
            "No loyalty program is in force, so a point's value and the program currency are "
            "unknown and the liability is not priced: apply the program file with "
            "`liucun loyalty program apply FILE.yaml`."
        )
    if summary.lapsed:
        sec.warnings.append(
            f"{number(summary.lapsed)} points are past their expiry but not yet expired in "
            "the ledger: run `liucun loyalty expire --as-of DAY` (they are left out of the "
            "outstanding points and of breakage until then)."
        )
    if summary.tiers.members.sum() > 0:
        sec.add_figure(_tier_figure(summary))
    if not summary.tier_flows.empty:
        sec.add_figure(_flow_figure(summary))
    if summary.issued or summary.redeemed or summary.expired:
        sec.add_figure(_monthly_figure(summary), wide=True)
    if not summary.coupons.empty:
        sec.add_figure(_coupon_figure(summary))
    if not summary.member_repeat.empty:
        sec.add_figure(_repeat_figure(summary))
    if not summary.coupons.empty:
        sec.add_table(_coupon_table(summary))
    if summary.renewals_due or summary.paid_members:
        sec.add_table(_membership_table(summary))
    sec.lead = _lead(summary)
    return sec


def _money(value: float | None, currency: str | None) -> str:
    return "—" if value is None else f"{currency} {number(value, 2)}"


def _kpis(s: LoyaltySummary) -> list[Kpi]:
    cur = s.currency or "unpriced"
    value = "" if s.point_value is None else f"{s.point_value:g} {s.currency} a point"
    return [
        Kpi("Points outstanding", number(s.outstanding), f"{number(s.pending)} of them pending"),
        Kpi(
            f"Points liability ({cur})",
            "—" if s.liability_available is None else number(s.liability_available, 2),
            f"{number(s.liability_with_pending, 2)} with pending; {value}"
            if s.liability_with_pending is not None
            else "no program in force",
        ),
        Kpi(
            f"Expiring in {EXPIRING_DAYS} days",
            number(s.expiring_soon),
            _money(s.expiring_soon_value, s.currency) if s.currency else "points",
        ),
        Kpi(
            "Breakage",
            pct(s.breakage_trailing),
            f"expired ÷ issued, last {TRAILING_DAYS} days ({pct(s.breakage)} all time)",
        ),
        Kpi(
            "Coupon redemption",
            pct(s.coupon_rate),
            f"of {number(s.coupons_settled)} settled codes; cost "
            f"{_money(s.coupon_cost, s.currency or '')}".rstrip(),
        ),
        Kpi(
            "Paid members",
            number(s.paid_members),
            f"renewal rate {pct(s.renewal_rate)} of {number(s.renewals_due)} terms ended",
        ),
    ]


def _lead(s: LoyaltySummary) -> str:
    cur = s.currency
    text = (
        f"Ledger as of {s.as_of:%Y-%m-%d %H:%M} UTC: {number(s.members)} members hold "
        f"{number(s.outstanding)} points ({number(s.available)} available, "
        f"{number(s.pending)} pending)"
    )
    if s.liability_available is not None:
        text += (
            f", a liability of {_money(s.liability_available, cur)} at {s.point_value:g} "
            f"{cur} a point ({_money(s.liability_with_pending, cur)} counting pending points)"
        )
    text += (
        f". {number(s.expiring_soon)} points"
        + (f" ({_money(s.expiring_soon_value, cur)})" if cur else "")
        + f" expire in the next {EXPIRING_DAYS} days."
    )
    rep = s.member_repeat
    if not rep.empty:
        first = rep[rep.days == rep.days.min()].set_index("group")
        if {"member", "non-member"} <= set(first.index):
            days = int(rep.days.min())
            text += (
                f" Paid members ordered again within {days} days after "
                f"{pct(first.loc['member', 'rate'])} of their order days, the others after "
                f"{pct(first.loc['non-member', 'rate'])} (members chose to join: this is "
                "not the membership's effect)."
            )
    return text


def _tier_figure(s: LoyaltySummary) -> go.Figure:
    tiers = s.tiers
    total = max(int(tiers.members.sum()), 1)
    fig = go.Figure(
        go.Bar(
            x=tiers.tier,
            y=tiers.members,
            text=[f"{number(n)} ({pct(n / total, 0)})" for n in tiers.members],
            textposition="outside",
            cliponaxis=False,
            marker_color="#2b6cb0",
            hovertemplate="%{x}: %{y:,} members<extra></extra>",
        )
    )
    boosted = f"; {number(s.boosted)} hold a temporary upgrade" if s.boosted else ""
    fig.update_layout(
        title=f"Members by tier in force{boosted}",
        xaxis={"type": "category"},
        yaxis={"title": "members", "rangemode": "tozero"},
        height=360,
    )
    return fig


def _flow_figure(s: LoyaltySummary) -> go.Figure:
    """A from → to matrix of tier changes (a Sankey is too crowded on a phone)."""
    flows = s.tier_flows
    tiers = list(s.tiers.tier)
    tiers += sorted((set(flows.from_tier) | set(flows.to_tier)) - {JOINED, *tiers})
    rows, cols = [JOINED, *tiers], tiers
    grid = flows.pivot_table(
        index="from_tier", columns="to_tier", values="changes", aggfunc="sum", fill_value=0
    ).reindex(index=rows, columns=cols, fill_value=0)
    cells = grid.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=cells,
            x=cols,
            y=rows,
            colorscale="Blues",
            zmin=0,
            zmax=max(float(cells.max()), 1.0),
            text=[[number(v) if v else "" for v in row] for row in cells],
            texttemplate="%{text}",
            hovertemplate="%{y} → %{x}: %{z:,} changes<extra></extra>",
            showscale=False,
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        title=f"Tier changes in the last {FLOW_DAYS} days: from (rows) → to (columns)",
        xaxis={"type": "category", "side": "top", "title": "to"},
        yaxis={"type": "category", "autorange": "reversed", "title": "from"},
        height=140 + 44 * len(rows),
    )
    return fig


def _monthly_figure(s: LoyaltySummary) -> go.Figure:
    monthly = s.monthly
    months = pd.to_datetime(monthly.month + "-01")
    fig = go.Figure()
    for column, name, color in _FLOW_SERIES:
        fig.add_trace(
            go.Bar(
                x=months,
                y=monthly[column],
                name=name,
                marker_color=color,
                hovertemplate=f"%{{x|%Y-%m}}: %{{y:,}} points {name}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title=f"Points issued, redeemed and expired per month ({s.timezone} months, "
        "net of reversals)",
        xaxis={"type": "date", "tickformat": "%Y-%m", "dtick": "M2"},
        yaxis={"title": "points", "rangemode": "tozero"},
        height=380,
    )
    return fig


def _coupon_figure(s: LoyaltySummary) -> go.Figure:
    """Redemption rate per coupon with its interval; the counts sit in the category
    labels (a label above the bar would collide with the interval's whisker)."""
    c = s.coupons
    rate = c.rate.fillna(0)
    labels = [
        f"{cid}<br>{number(k)} of {number(n)}"
        for cid, k, n in zip(c.coupon_id, c.redeemed, c.settled, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=rate,
            error_y=_error_bars(rate, c.ci_low, c.ci_high),
            customdata=np.stack([c.cost, c.issued], axis=1),
            hovertemplate="%{x}: %{y:.1%} redeemed; %{customdata[1]:,} codes issued, cost "
            f"%{{customdata[0]:,.2f}} {s.currency or ''}<extra></extra>",
            marker_color="#dd6b20",
        )
    )
    top = float(np.nanmax(c.ci_high.to_numpy(dtype=float))) if c.ci_high.notna().any() else 1.0
    fig.update_layout(
        title="Coupon redemption rate: codes redeemed of those redeemed or run out (95 % interval)",
        xaxis={"type": "category"},
        yaxis={"tickformat": ".0%", "range": [0, min(1.0, top) * 1.15 + 0.01], "title": "redeemed"},
        height=380,
    )
    return fig


def _repeat_figure(s: LoyaltySummary) -> go.Figure:
    rep = s.member_repeat
    fig = go.Figure()
    for group, color in _GROUP_COLORS.items():
        part = rep[rep.group == group]
        if part.empty:
            continue
        rate = part.rate.fillna(0)
        fig.add_trace(
            go.Bar(
                x=[f"within {d} days" for d in part.days],
                y=rate,
                name=f"{group}s" if group == "member" else "non-members",
                marker_color=color,
                # inside, at the base: a label above the bar would cross the whisker
                text=[
                    f"{pct(r, 0)}<br>of {number(n)}"
                    for r, n in zip(part.rate, part.units, strict=True)
                ],
                textposition="inside",
                insidetextanchor="start",
                textangle=0,
                error_y=_error_bars(rate, part.ci_low, part.ci_high),
            )
        )
    top = float(np.nanmax(rep.ci_high.to_numpy(dtype=float))) if len(rep) else 1.0
    fig.update_layout(
        barmode="group",
        title="Another order within N days of an order day: paid members at that order vs "
        "the others (95 % interval)",
        xaxis={"type": "category"},
        yaxis={
            "tickformat": ".0%",
            "range": [0, min(1.0, top) * 1.2 + 0.02],
            "title": "ordered again",
        },
        height=380,
    )
    return fig


def _error_bars(rate: pd.Series, low: pd.Series, high: pd.Series) -> dict[str, object]:
    """Plotly error bars from ``rate`` to its interval ``[low, high]`` (none where unknown)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": (high - rate).fillna(0),
        "arrayminus": (rate - low).fillna(0),
        "color": "#4a5568",
    }


def _coupon_table(s: LoyaltySummary) -> pd.DataFrame:
    c = s.coupons.copy()
    c["95 % interval"] = [
        "—" if pd.isna(lo) else f"{pct(lo)} – {pct(hi)}"
        for lo, hi in zip(c.ci_low, c.ci_high, strict=True)
    ]
    c = c.rename(
        columns={"coupon_id": "coupon", "cost": f"cost ({s.currency or c.currency.iloc[0]})"}
    )
    cost = c.columns[c.columns.str.startswith("cost")][0]
    table = c[["coupon", "issued", "redeemed", "settled", "rate", "95 % interval", cost]]
    return _formatted(
        table, rates=("rate",), counts=("issued", "redeemed", "settled"), money=(cost,)
    )


def _membership_table(s: LoyaltySummary) -> pd.DataFrame:
    """Paid membership as two columns (reads on a phone): figure, value."""
    low, high = s.renewal_ci or (None, None)
    rows = [
        ("paid members now", number(s.paid_members)),
        (f"terms that ended in the last {TRAILING_DAYS} days", number(s.renewals_due)),
        ("renewed", number(s.renewed)),
        ("renewal rate", pct(s.renewal_rate)),
        ("95 % interval", "—" if low is None else f"{pct(low)} – {pct(high)}"),
    ]
    return pd.DataFrame(rows, columns=["paid membership", ""])
