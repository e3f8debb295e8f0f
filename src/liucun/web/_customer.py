"""One customer for the cockpit: the 360 view and "start a journey" for them.

:func:`customer_360` is the one function the 360 page calls. Until the library's
``liucun.journeys.customer_view`` is on main it reads the warehouse's ``users`` row, the
latest scores, recent orders, the loyalty account, journeys, service tasks, tags and
consents itself; swap its body for that call when it lands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import pyarrow as pa
from sqlalchemy import select

from liucun import loyalty
from liucun.core import ConfigError, as_utc
from liucun.journeys import EnrolResult, active_journeys, enrol, list_tasks
from liucun.journeys._triggers import ENTRY_SCHEMA
from liucun.reports import latest_scores
from liucun.state import ConsentRecord, CustomerTag, JourneyEnrolment, record_audit
from liucun.workspace import Workspace

#: Recent orders shown on the 360 page.
RECENT_ORDERS = 10


@dataclass(frozen=True)
class Customer360:
    """What the 360 page shows of one customer (``found`` False: no such customer)."""

    user_id: str
    found: bool
    profile: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_count: int = 0
    revenue: dict[str, float] = field(default_factory=dict)
    loyalty: dict[str, Any] | None = None
    journeys: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[Any] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)


def _profile(ws: Workspace, user_id: str) -> dict[str, Any] | None:
    users = ws.customers()
    rows = users.filter(users.user_id == user_id).limit(1).to_pyarrow().to_pylist()
    if not rows:
        return None
    row = rows[0]
    for drop in ("ingested_at", "load_id", "raw_user_id"):
        row.pop(drop, None)
    attributes = row.pop("attributes", None)
    if attributes:
        try:
            extra = json.loads(attributes)
        except ValueError:
            extra = {}
        if isinstance(extra, dict):
            row.update({f"attributes.{k}": v for k, v in extra.items()})
    return {k: v for k, v in row.items() if v is not None and v != ""}


def _scores(ws: Workspace, user_id: str, end: datetime | None) -> dict[str, Any] | None:
    if end is None:
        return None
    scores, _card = latest_scores(ws, end)
    if scores is None:
        return None
    mine = scores[scores.user_id == user_id]
    if mine.empty:
        return None
    row = mine.iloc[0].to_dict()
    reasons = row.get("reasons")
    row["reasons"] = [] if reasons is None else [str(r) for r in reasons]
    row["value_at_risk"] = float(row["churn_risk"]) * float(row["clv_365d"])
    return row


def _orders(ws: Workspace, user_id: str) -> tuple[list[dict[str, Any]], int, dict[str, float]]:
    ev = ws.events()
    mine = ev.filter((ev.user_id == user_id) & (ev.event_type == "order"))
    recent = (
        mine.order_by(ibis.desc("ts"))
        .limit(RECENT_ORDERS)
        .select("ts", "order_id", "revenue", "currency", "channel", "category")
        .to_pyarrow()
        .to_pylist()
    )
    totals = mine.group_by("currency").aggregate(n=mine.count(), revenue=mine.revenue.sum())
    frame = totals.to_pyarrow().to_pylist()
    count = int(sum(r["n"] for r in frame))
    revenue = {str(r["currency"]): float(r["revenue"] or 0.0) for r in frame}
    return recent, count, revenue


def _loyalty(ws: Workspace, user_id: str) -> dict[str, Any] | None:
    acct = loyalty.account(ws, user_id)
    if acct.version == 0 and acct.tier is None and not acct.growth_value:
        return None
    return {
        "balance": acct.balance,
        "pending": acct.pending,
        "growth_value": acct.growth_value,
        "tier": acct.tier,
    }


def _state_rows(ws: Workspace, user_id: str) -> tuple[list[dict], list[dict], list[dict]]:
    E = JourneyEnrolment
    with ws.state.read() as s:
        journeys = [
            {
                "journey": e.journey,
                "version": e.version,
                "arm": e.arm,
                "node": e.node,
                "status": e.status,
                "entered_at": as_utc(e.entered_at),
                "exit_reason": e.exit_reason,
            }
            for e in s.scalars(
                select(E).where(E.user_id == user_id).order_by(E.entered_at.desc()).limit(20)
            )
        ]
        tags = [
            {"tag": t.tag, "value": t.value, "source": t.source, "set_at": as_utc(t.set_at)}
            for t in s.scalars(
                select(CustomerTag).where(CustomerTag.user_id == user_id).order_by(CustomerTag.tag)
            )
        ]
        latest: dict[tuple[str, str], ConsentRecord] = {}
        for c in s.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.user_id == user_id)
            .order_by(ConsentRecord.at, ConsentRecord.id)
        ):
            latest[(c.purpose, c.channel)] = c  # the latest per purpose and channel is in force
        consents = [
            {"purpose": p, "channel": ch, "status": c.status, "at": as_utc(c.at)}
            for (p, ch), c in sorted(latest.items())
        ]
    return journeys, tags, consents


def customer_360(ws: Workspace, user_id: str) -> Customer360:
    """Everything the cockpit's 360 page shows of ``user_id`` (see the module doc)."""
    profile = _profile(ws, user_id)
    if profile is None:
        return Customer360(user_id=user_id, found=False)
    end = ws.data_end()
    orders, count, revenue = _orders(ws, user_id)
    journeys, tags, consents = _state_rows(ws, user_id)
    return Customer360(
        user_id=user_id,
        found=True,
        profile=profile,
        scores=_scores(ws, user_id, end),
        orders=orders,
        order_count=count,
        revenue=revenue,
        loyalty=_loyalty(ws, user_id),
        journeys=journeys,
        tasks=list_tasks(ws, user_id=user_id),
        tags=tags,
        consents=consents,
    )


def startable_journeys(ws: Workspace) -> list[tuple[str, int]]:
    """The active journeys a customer can be started in: (name, version)."""
    return sorted((spec.name, version) for version, spec in active_journeys(ws))


@dataclass(frozen=True)
class Started:
    """What starting a journey for one customer did."""

    user_id: str
    journey: str
    version: int
    result: EnrolResult
    arm: str | None
    audience: str | None
    reentry: str


def start_journey(ws: Workspace, user_id: str, journey: str, *, by: str) -> Started:
    """Enrol ``user_id`` in the active journey ``journey`` now, through the engine's
    :func:`liucun.journeys.enrol` (audience, re-entry rule, control arm and exposure log
    as for a trigger's entries); the context records that ``by`` started it from the
    cockpit. Refused (:class:`ConfigError`) when the journey is not active."""
    found = {spec.name: (version, spec) for version, spec in active_journeys(ws)}
    if journey not in found:
        names = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"journey {journey!r} is not active (active: {names}); an admin activates it first"
        )
    version, spec = found[journey]
    now = as_utc(ws.clock.now())
    entries = pa.table(
        {
            "user_id": [user_id],
            "key": [f"cockpit:{now.isoformat()}"],
            "at": pa.array([now], pa.timestamp("us", tz="UTC")),
            "context": [json.dumps({"source": "cockpit", "by": by}, sort_keys=True)],
        },
        schema=ENTRY_SCHEMA,
    )
    result = enrol(ws, journey, version, spec, entries, now=now)
    arm = None
    with ws.state.write() as s:
        if result.enrolled:
            arm = s.scalar(
                select(JourneyEnrolment.arm)
                .where(JourneyEnrolment.journey == journey, JourneyEnrolment.user_id == user_id)
                .order_by(JourneyEnrolment.id.desc())
                .limit(1)
            )
        record_audit(
            s,
            at=now,
            actor=by,
            action="web.journey.start",
            target=journey,
            details={"user_id": user_id, "version": version, "enrolled": result.enrolled},
        )
    rule = spec.reentry.mode + (f" {spec.reentry.days:g} days" if spec.reentry.days else "")
    return Started(user_id, journey, version, result, arm, spec.audience, rule)
