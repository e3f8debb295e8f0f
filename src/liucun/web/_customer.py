"""One customer for the cockpit: the 360 view and "start a journey" for them.

:func:`customer_360` is what the 360 page calls: the library's
:func:`liucun.journeys.customer_view` (attributes, identities, lifecycle, RFM, latest
scores with reasons, loyalty, consents, journeys, open tasks, recent orders and events),
plus the value at risk the at-risk list orders by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy import select

from liucun.core import ConfigError, NotFound, as_utc
from liucun.journeys import CustomerView, EnrolResult, active_journeys, customer_view, enrol
from liucun.journeys._triggers import ENTRY_SCHEMA
from liucun.state import JourneyEnrolment, record_audit
from liucun.workspace import Workspace


def customer_360(ws: Workspace, user_id: str) -> CustomerView | None:
    """The 360 view of ``user_id`` now (an alias opens its customer), or None when no
    user row and no event knows the id. Its scores carry ``value_at_risk`` (churn risk
    × expected 365-day value), as the at-risk list ranks customers."""
    try:
        view = customer_view(ws, user_id)
    except NotFound:
        return None
    s = view.scores
    if s and s.get("churn_risk") is not None and s.get("clv_365d") is not None:
        s["value_at_risk"] = float(s["churn_risk"]) * float(s["clv_365d"])
    return view


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
