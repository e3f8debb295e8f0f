"""Measurement of a journey against its control arm, node by node (docs/journeys.md).

Each enrolment is measured on the journey's goal within ``goal.window_days`` of entry:
conversions (a goal event in the window), revenue (the goal events' revenue) and margin
(``value.margin`` × revenue − ``value.cost`` × the enrolment's sent actions). The arms
are assigned per customer, so the customer is the unit of the comparison: at each node
the treatment customers that reached it are compared with the control customers that
reached it (the control arm walks the same nodes with every action withheld), each with
the sum of their enrolments' outcomes (:func:`per_customer`).
Effects come from the statistics engine: a CUPED-adjusted Welch t-test
(:func:`~liucun.experiments.stats.cuped_ttest`) with each unit's goal events in the
:data:`PRE_DAYS` before its entry as covariate; the per-unit effect and its interval are
scaled to totals by the number of treatment customers. ROI is
:func:`~liucun.experiments.campaign_roi` (Fieller interval, flagged below
:data:`~liucun.experiments.ROI_THRESHOLD`), payback the first day after entry on which
the cumulative incremental margin exceeds the cost. When the world that produced the
data is the simulated responding world, each node also carries the true incremental
margin (:meth:`liucun.simulate.ResponsiveWorld.truth`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from liucun.core import InvalidInput, LiucunError, as_utc
from liucun.experiments import ROI_THRESHOLD, campaign_roi
from liucun.experiments.stats import CupedStat, RatioStat, cuped_theta, cuped_ttest
from liucun.state import JourneyEnrolment, JourneyStep, JourneyVersion, OutboxMessage
from liucun.workspace import Workspace

#: Days before entry whose goal events are the CUPED covariate.
PRE_DAYS: Final = 90
#: Fewest units per arm at a node for an effect with an interval.
MIN_UNITS: Final = 30
ARMS: Final = ("treatment", "control")
_MEASURES: Final = ("conversions", "revenue", "margin")
_DAY: Final = timedelta(days=1)
#: The reason of an effect left out at a node whose arrivals depend on behaviour after
#: entry (:func:`selected_after_entry`).
SELECTED: Final = "selected_after_entry"


@dataclass(frozen=True)
class Effect:
    """An incremental total for the treatment arm: ``estimate`` with its ``1 − alpha``
    interval (None when the arms are too small: ``reason`` says why), the per-unit
    effect, its p-value, and the true value when the world is simulated."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    per_unit: float | None
    p_value: float | None
    reason: str
    truth: float | None = None


@dataclass(frozen=True)
class Roi:
    """Incremental margin ÷ incremental cost, with its interval and the below-threshold
    flag (None when the ROI is undefined, e.g. a journey without cost)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    below_threshold: bool | None
    threshold: float
    reason: str


@dataclass(frozen=True)
class NodeReport:
    """One node: who reached it, what happened there and what it earned."""

    node: str
    type: str
    entered: int
    entered_by_arm: dict[str, int]
    #: Distinct customers behind ``entered_by_arm`` (the units of the effects).
    customers_by_arm: dict[str, int]
    sent: int
    withheld: int
    suppressed: dict[str, int]
    held: int
    deferred: int
    converted: int
    converted_by_arm: dict[str, int]
    conversion_rate: dict[str, float | None]
    effects: dict[str, Effect]
    roi: Roi
    cost: float
    payback_days: int | None
    true_incremental_orders: float | None = None
    true_incremental_revenue: float | None = None
    true_incremental_margin: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class JourneyReport:
    """The measurement of one journey (see the module's text)."""

    journey: str
    version: int | None
    as_of: datetime | None
    goal_event: str
    window_days: float
    margin: float
    cost_per_send: float
    alpha: float
    units: dict[str, int]
    open_windows: int
    nodes: list[NodeReport]
    warnings: list[str] = field(default_factory=list)
    truth_source: str | None = None

    @property
    def true_incremental_margin(self) -> float | None:
        """The entry node's (the whole journey's) true incremental margin, when known."""
        return self.nodes[0].true_incremental_margin if self.nodes else None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the ``journeys report --format json`` contract)."""
        out = asdict(self)
        out["as_of"] = None if self.as_of is None else self.as_of.isoformat()
        out["true_incremental_margin"] = self.true_incremental_margin
        return _finite(out)


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _definition(ws: Workspace, name: str) -> tuple[int | None, dict[str, Any]]:
    with ws.state.read() as s:
        row = s.execute(
            select(JourneyVersion.version, JourneyVersion.definition)
            .where(JourneyVersion.journey == name)
            .order_by(JourneyVersion.version.desc())
            .limit(1)
        ).first()
        enrolled = s.scalar(
            select(func.count(JourneyEnrolment.id)).where(JourneyEnrolment.journey == name)
        )
    if row is None:
        if not enrolled:
            raise InvalidInput(
                f"there is no journey named {name!r}: `liucun journeys list` shows the "
                "journeys, `liucun journeys apply FILE.yaml` adds one"
            )
        return None, {}
    return int(row[0]), json.loads(row[1])


def _frames(
    ws: Workspace, name: str, end: datetime | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The journey's enrolments, steps and sent outbox rows before ``end`` (all if None)."""
    with ws.state.read() as s:
        enr = s.execute(
            select(
                JourneyEnrolment.id,
                JourneyEnrolment.user_id,
                JourneyEnrolment.arm,
                JourneyEnrolment.node,
                JourneyEnrolment.entered_at,
            ).where(JourneyEnrolment.journey == name)
        ).all()
        steps = s.execute(
            select(
                JourneyStep.enrolment_id,
                JourneyStep.node,
                JourneyStep.kind,
                JourneyStep.reason,
                JourneyStep.at,
            ).where(JourneyStep.journey == name)
        ).all()
        out = s.execute(
            select(OutboxMessage.enrolment_id, OutboxMessage.node, OutboxMessage.sent_at).where(
                OutboxMessage.journey == name, OutboxMessage.status == "sent"
            )
        ).all()
    enrolments = pd.DataFrame(enr, columns=["id", "user_id", "arm", "node", "entered_at"])
    enrolments["entered_at"] = pd.to_datetime(enrolments["entered_at"], utc=True)
    steps_frame = pd.DataFrame(steps, columns=["enrolment_id", "node", "kind", "reason", "at"])
    sent_frame = pd.DataFrame(out, columns=["enrolment_id", "node", "sent_at"])
    if end is not None:
        cut = pd.Timestamp(end)
        enrolments = enrolments[enrolments["entered_at"] < cut]
        steps_frame = steps_frame[pd.to_datetime(steps_frame["at"], utc=True) < cut]
        sent_frame = sent_frame[pd.to_datetime(sent_frame["sent_at"], utc=True) < cut]
    return enrolments, steps_frame, sent_frame


def _goal_events(
    ws: Workspace, event: str, start: datetime, end: datetime, users: set[str]
) -> pd.DataFrame:
    ev = ws.events()
    ev = ev.filter((ev.event_type == event) & (ev.ts >= start) & (ev.ts < end))
    frame = ev.select("user_id", "ts", "revenue").to_pandas()
    frame = frame[frame["user_id"].isin(users)]
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["revenue"] = frame["revenue"].fillna(0.0).astype(float)
    return frame


def _unit_outcomes(
    enrolments: pd.DataFrame, events: pd.DataFrame, window: timedelta, days: int
) -> pd.DataFrame:
    """Per enrolment: converted, revenue in the window, pre-period events, and the
    cumulative revenue by day since entry (columns ``day_1`` … ``day_{days}``)."""
    units = enrolments[["id", "user_id", "entered_at"]].reset_index(drop=True)
    m = units.merge(events, on="user_id", how="inner")
    since = m["ts"] - m["entered_at"]
    in_window = m[(since >= pd.Timedelta(0)) & (since < window)]
    pre = m[(since < pd.Timedelta(0)) & (since >= -pd.Timedelta(days=PRE_DAYS))]
    out = units[["id"]].copy()
    grouped = in_window.groupby("id")
    out["orders"] = out["id"].map(grouped.size()).fillna(0).astype(float)
    out["converted"] = (out["orders"] > 0).astype(float)
    out["revenue"] = out["id"].map(grouped["revenue"].sum()).fillna(0.0)
    out["pre"] = out["id"].map(pre.groupby("id").size()).fillna(0).astype(float)
    day = (in_window["ts"] - in_window["entered_at"]) // pd.Timedelta(days=1)
    by_day = in_window.assign(day=day).pivot_table(
        index="id", columns="day", values="revenue", aggfunc="sum", fill_value=0.0
    )
    by_day = by_day.reindex(columns=range(days), fill_value=0.0).cumsum(axis=1)
    cum = by_day.reindex(out["id"]).fillna(0.0).to_numpy()
    for d in range(days):
        out[f"day_{d + 1}"] = cum[:, d] if len(cum) else 0.0
    return out


def journey_report(
    ws: Workspace,
    name: str,
    *,
    truth: Any | None = None,
    alpha: float = 0.05,
    as_of: datetime | None = None,
) -> JourneyReport:
    """Per-node measurement of journey ``name`` against its control arm.

    ``truth`` is the simulated world the data came from (an object with
    ``truth(journey, windows=…, ws=…)``, e.g. :class:`liucun.simulate.ResponsiveWorld`);
    ``"auto"`` uses the world that ran in the workspace (``<ws>/world/``) when there is
    one. ``as_of`` leaves out what happened from then on (enrolments, steps, sends, goal
    events); goal windows end at it or at the data end, whichever is first, and windows
    still open then are counted in ``open_windows``.

    Raises
    ------
    InvalidInput
        There is no journey of that name.
    """
    version, definition = _definition(ws, name)
    goal, value = definition.get("goal", {}), definition.get("value", {})
    event = str(goal.get("event", "order"))
    window_days = float(goal.get("window_days", 14))
    margin, cost = float(value.get("margin", 0.3)), float(value.get("cost", 0.0))
    window = timedelta(days=window_days)
    data_end = ws.data_end()
    end = data_end if as_of is None or data_end is None else min(as_utc(as_of), data_end)
    enrolments, steps, sent = _frames(ws, name, None if as_of is None else as_utc(as_of))
    warnings: list[str] = []
    truth = _resolve_truth(ws, truth, warnings)
    order, first, node_types = _node_order(definition, steps, enrolments)
    units = {arm: int((enrolments["arm"] == arm).sum()) for arm in ARMS}
    if enrolments.empty or end is None:
        return JourneyReport(
            name, version, end, event, window_days, margin, cost, alpha, units, 0, [],
            ["No customer has entered this journey yet."],
        )  # fmt: skip
    open_windows = int((enrolments["entered_at"] + window > end).sum())
    if open_windows:
        warnings.append(
            f"{open_windows} enrolment(s) entered less than {window_days:g} days before "
            f"{end:%Y-%m-%d}: their goal window is still open and counts only what happened so far."
        )
    outcome = _outcomes(ws, enrolments, sent, (event, window, end, margin, cost))
    days = max(1, math.ceil(window_days))
    selected = selected_after_entry(definition)
    nodes = [
        _node(
            node,
            node_types.get(node, ""),
            _reached(node, node == first, enrolments, steps),
            outcome,
            steps[steps["node"] == node],
            sent[sent["node"] == node],
            (margin, alpha, days),
            selected.get(node),
        )
        for node in order
    ]
    source = None
    if truth is not None:
        nodes = [_with_truth(n, truth, ws, name, outcome, steps, enrolments, margin, window,
                             n.node == first) for n in nodes]  # fmt: skip
        source = type(truth).__name__
    return JourneyReport(
        name, version, end, event, window_days, margin, cost, alpha, units, open_windows,
        nodes, warnings, source,
    )  # fmt: skip


def _resolve_truth(ws: Workspace, truth: Any | None, warnings: list[str]) -> Any | None:
    """``truth`` itself, or for ``"auto"`` the world that ran in ``ws`` (None if none or
    unreadable, with a warning)."""
    if not (isinstance(truth, str) and truth == "auto"):
        return truth
    from liucun.simulate import load_world

    try:
        return load_world(ws)
    except (LiucunError, OSError) as exc:
        warnings.append(f"The simulated world that ran here cannot be read ({exc}).")
        return None


def _node_order(
    definition: dict[str, Any], steps: pd.DataFrame, enrolments: pd.DataFrame
) -> tuple[list[str], str | None, dict[str, str]]:
    """The nodes in the definition's order with the start node first, the start node, and
    each node's type (nodes seen only in steps when there is no definition)."""
    node_types = {n["id"]: n.get("type", "") for n in definition.get("nodes", [])}
    order = list(node_types) or sorted(set(steps["node"]) | set(enrolments["node"]))
    first = definition.get("start") or (order[0] if order else None)
    if first in order:
        order.remove(first)
        order.insert(0, first)
    return order, first, node_types


def _outcomes(
    ws: Workspace,
    enrolments: pd.DataFrame,
    sent: pd.DataFrame,
    opts: tuple[str, timedelta, datetime, float, float],
) -> pd.DataFrame:
    """Per enrolment: its arm, goal outcomes (:func:`_unit_outcomes`), sends, cost and margin."""
    event, window, end, margin, cost = opts
    lo = enrolments["entered_at"].min() - pd.Timedelta(days=PRE_DAYS)
    hi = min(enrolments["entered_at"].max() + window, pd.Timestamp(end))
    users = set(enrolments.user_id)
    events = _goal_events(ws, event, lo.to_pydatetime(), hi.to_pydatetime(), users)
    events = events[events["ts"] < pd.Timestamp(end)]
    outcome = _unit_outcomes(enrolments, events, window, max(1, math.ceil(window / _DAY)))
    sends = sent.groupby("enrolment_id").size()
    outcome["sends"] = outcome["id"].map(sends).fillna(0).astype(float)
    outcome["cost"] = cost * outcome["sends"]
    outcome["margin"] = margin * outcome["revenue"] - outcome["cost"]
    return outcome.merge(enrolments[["id", "arm", "user_id", "entered_at"]], on="id")


def selected_after_entry(definition: dict[str, Any]) -> dict[str, str]:
    """The nodes whose arrivals depend on what customers did after entry, each with why.

    The arms are comparable at a node only when who reaches it is settled at entry
    (attributes, hashed splits). Past a ``wait_for`` the treated who reach a branch are
    those the actions did not move and the control those who did not move by themselves;
    past an action followed by a wait, when the goal exits the journey, customers the
    action converted have left the treatment arm only. Comparing the arms there measures
    the selection, not the action (the journey as a whole is still measured at its entry
    node; a split placed at such a node measures what follows it)."""
    nodes = {n["id"]: n for n in definition.get("nodes", []) if "id" in n}
    if not nodes:
        return {}
    from liucun.journeys._spec import ACTION_TYPES

    exits = bool(definition.get("goal", {}).get("exit", True))
    start = definition.get("start") or next(iter(nodes))
    found: dict[str, str] = {}
    seen: set[tuple[str, bool, str | None]] = set()
    todo: list[tuple[str, bool, str | None]] = [(start, False, None)]
    while todo:
        state = todo.pop()
        node_id, acted, why = state
        if state in seen or node_id not in nodes:
            continue
        seen.add(state)
        if why is not None:
            found.setdefault(node_id, why)
        node = nodes[node_id]
        kind = node.get("type")
        if kind == "wait_for":
            what = node.get("event") or "its filter"
            why = (
                f"it comes after wait_for {node_id!r}: who reaches it depends on {what} after entry"
            )
        elif kind == "wait" and acted and exits and why is None:
            why = (
                f"it comes after an action and the wait {node_id!r}: customers the action "
                "converted left the treatment arm before it"
            )
        acted = acted or kind in ACTION_TYPES
        todo += [(nxt, acted, why) for nxt in _next_ids(node)]
    return found


def _next_ids(node: dict[str, Any]) -> list[str]:
    """The ids a node (as stored in its version's definition) can go to next."""
    out = [node.get(k) for k in ("next", "on_event", "on_timeout", "otherwise", "holdout_next")]
    out += [b.get("next") for b in node.get("branches", []) or []]
    out += [v.get("next") for v in node.get("variants", []) or []]
    return [str(x) for x in out if x]


def _reached(node: str, is_first: bool, enrolments: pd.DataFrame, steps: pd.DataFrame) -> set[int]:
    if is_first:
        return set(enrolments["id"])
    ids = set(steps.loc[steps["node"] == node, "enrolment_id"])
    return ids | set(enrolments.loc[enrolments["node"] == node, "id"])


def _node(
    node: str,
    kind: str,
    reached: set[int],
    outcome: pd.DataFrame,
    steps: pd.DataFrame,
    sent: pd.DataFrame,
    opts: tuple[float, float, int],
    selected: str | None = None,
) -> NodeReport:
    margin, alpha, days = opts
    here = outcome[outcome["id"].isin(reached)]
    by_enrolment = {a: here[here["arm"] == a] for a in ARMS}
    n = {a: len(by_enrolment[a]) for a in ARMS}
    arm = per_customer(here)
    customers = {a: len(arm[a]) for a in ARMS}
    counts = steps.groupby("kind").size()
    suppressed = steps[steps["kind"] == "suppressed"].groupby(steps["reason"].fillna("unknown"))
    small = min(customers.values()) < MIN_UNITS
    note = None
    if small:
        note = (
            f"Too few units for an interval: {customers['treatment']} treatment and "
            f"{customers['control']} control customers reached this node (at least "
            f"{MIN_UNITS} each are needed)."
        )
    if selected is not None:
        small, note = True, f"No comparison of the arms here: {selected}."
    effects = {m: _effect(arm, m, alpha, small) for m in _MEASURES}
    roi = _roi(arm, margin, alpha, small)
    if selected is not None:
        effects = {m: replace(e, reason=SELECTED) for m, e in effects.items()}
        roi = replace(roi, reason=SELECTED)
    total_cost = float(arm["treatment"]["cost"].sum())
    return NodeReport(
        node=node,
        type=kind,
        entered=len(here),
        entered_by_arm=n,
        sent=len(sent),
        withheld=int(counts.get("withheld", 0)),
        suppressed={str(k): int(v) for k, v in suppressed.size().items()},
        held=int(counts.get("held", 0)),
        deferred=int(counts.get("deferred", 0)),
        customers_by_arm=customers,
        converted=int(here["converted"].sum()),
        converted_by_arm={a: int(by_enrolment[a]["converted"].sum()) for a in ARMS},
        conversion_rate={
            a: float(by_enrolment[a]["converted"].mean()) if n[a] else None for a in ARMS
        },
        effects=effects,
        roi=roi,
        cost=total_cost,
        payback_days=None if small else _payback(arm, margin, total_cost, days),
        note=note,
    )


def per_customer(outcome: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The enrolments' outcomes summed per customer, by arm: the arms are assigned per
    customer, so the customer is the unit of the comparison (a customer who entered
    three times is one unit with three windows' outcomes, not three independent ones).
    The CUPED covariate is the pre-period of the customer's first enrolment, the one
    before any action."""
    if outcome.empty:
        return {a: outcome for a in ARMS}
    ordered = outcome.sort_values(["user_id", "entered_at"])
    sums = [c for c in ordered.columns if c in _SUMMED or c.startswith("day_")]
    grouped = ordered.groupby(["user_id", "arm"], sort=False)
    units = grouped[sums].sum()
    units["pre"] = grouped["pre"].first()
    units = units.reset_index()
    return {a: units[units["arm"] == a] for a in ARMS}


#: The per-enrolment outcomes a customer's unit adds up.
_SUMMED: Final = ("orders", "converted", "revenue", "sends", "cost", "margin")


def _column(measure: str) -> str:
    return {"conversions": "converted", "revenue": "revenue", "margin": "margin"}[measure]


def _effect(arm: dict[str, pd.DataFrame], measure: str, alpha: float, small: bool) -> Effect:
    col = _column(measure)
    if small:
        return Effect(None, None, None, None, None, "too_few_units")
    stats = {
        a: CupedStat.from_values(arm[a][col].to_numpy(), arm[a]["pre"].to_numpy()) for a in ARMS
    }
    r = cuped_ttest(stats["control"], stats["treatment"], alpha=alpha)
    n_t = len(arm["treatment"])

    def total(x: Any) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x) * n_t

    return Effect(
        estimate=total(r.estimate),
        ci_low=total(r.ci_low),
        ci_high=total(r.ci_high),
        per_unit=None if r.estimate is None else float(r.estimate),
        p_value=None if r.p_value is None else float(r.p_value),
        reason=str(r.reason),
    )


def _roi(arm: dict[str, pd.DataFrame], margin: float, alpha: float, small: bool) -> Roi:
    if small:
        return Roi(None, None, None, None, ROI_THRESHOLD, "too_few_units")
    if margin <= 0:
        return Roi(None, None, None, None, ROI_THRESHOLD, "zero_margin")
    revenue = _cuped_adjusted(arm, "revenue")
    stats = {a: RatioStat.from_values(revenue[a], arm[a]["cost"].to_numpy()) for a in ARMS}
    r = campaign_roi(stats["control"], stats["treatment"], margin=margin, alpha=alpha)
    defined = r.roi is not None
    return Roi(
        estimate=None if r.roi is None else float(r.roi),
        ci_low=None if r.ci_low is None else float(r.ci_low),
        ci_high=None if r.ci_high is None else float(r.ci_high),
        below_threshold=bool(r.flagged) if defined else None,
        threshold=ROI_THRESHOLD,
        reason=str(r.reason),
    )


def _cuped_adjusted(arm: dict[str, pd.DataFrame], col: str) -> dict[str, np.ndarray]:
    """``col`` per unit adjusted as CUPED does (``y − θ(x − x̄)``, θ pooled over both arms,
    x̄ the pooled pre-period mean): the ROI's numerator then rests on the same estimate
    and variance as the margin effect, so the two intervals cannot disagree about the
    sign because one of them ignored the pre-period (a few heavy buyers who landed in one
    arm by chance are what CUPED corrects)."""
    stats = {
        a: CupedStat.from_values(arm[a][col].to_numpy(), arm[a]["pre"].to_numpy()) for a in ARMS
    }
    theta = float(cuped_theta(stats["control"], stats["treatment"]))
    pre = np.concatenate([arm[a]["pre"].to_numpy(dtype=float) for a in ARMS])
    centre = float(pre.mean()) if len(pre) else 0.0
    return {
        a: arm[a][col].to_numpy(dtype=float)
        - theta * (arm[a]["pre"].to_numpy(dtype=float) - centre)
        for a in ARMS
    }


def _payback(arm: dict[str, pd.DataFrame], margin: float, cost: float, days: int) -> int | None:
    """First day after entry on which margin × cumulative incremental revenue (treatment
    mean − control mean, × treatment units) exceeds the treatment arm's cost."""
    n_t = len(arm["treatment"])
    for d in range(1, days + 1):
        col = f"day_{d}"
        gain = margin * (arm["treatment"][col].mean() - arm["control"][col].mean()) * n_t
        if gain > cost:
            return d
    return None


def _with_truth(
    node: NodeReport,
    truth: Any,
    ws: Workspace,
    name: str,
    outcome: pd.DataFrame,
    steps: pd.DataFrame,
    enrolments: pd.DataFrame,
    margin: float,
    window: timedelta,
    is_first: bool,
) -> NodeReport:
    """``node`` with the world's true incremental orders, revenue and margin over the
    goal windows of the treatment enrolments that reached it."""
    reached = _reached(node.node, is_first, enrolments, steps)
    treated = outcome[outcome["id"].isin(reached) & (outcome["arm"] == "treatment")]
    windows = pd.DataFrame(
        {
            "user_id": treated["user_id"],
            "start": treated["entered_at"].dt.to_pydatetime(),
            "end": (treated["entered_at"] + window).dt.to_pydatetime(),
        }
    )
    table = truth.truth(name, windows=windows, ws=ws).to_pandas()
    orders = float(table["incremental_orders"].sum())
    revenue = float(table["incremental_revenue"].sum())
    true_margin = margin * revenue - float(treated["cost"].sum())
    effects = dict(node.effects)
    effects["margin"] = _replace(effects["margin"], true_margin)
    effects["revenue"] = _replace(effects["revenue"], revenue)
    return _replace_node(node, effects, orders, revenue, true_margin)


def _replace(e: Effect, truth: float) -> Effect:
    return replace(e, truth=truth)


def _replace_node(
    node: NodeReport, effects: dict[str, Effect], orders: float, revenue: float, margin: float
) -> NodeReport:
    return replace(
        node,
        effects=effects,
        true_incremental_orders=orders,
        true_incremental_revenue=revenue,
        true_incremental_margin=margin,
    )
