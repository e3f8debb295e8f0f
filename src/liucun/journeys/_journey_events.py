"""liucun's journey events in the warehouse: ``journey_entered`` and ``journey_converted``
(docs/journeys.md, "Partner webhooks").

Each worker round (:func:`liucun.journeys._worker.work_once`) calls
:func:`collect_journey_events`, which turns the enrolments and goal conversions state
recorded since the last round into warehouse events ``journey_entered`` (event id
``liucun:journey_entered:<enrolment id>``, at the entry) and ``journey_converted``
(``liucun:journey_converted:<enrolment id>``, at the goal event), handed to the round's
one warehouse load; their cursors (the last state id published, in ``journey_cursors``)
are stored only once that load committed. On PostgreSQL the last :data:`OVERLAP_IDS`
ids are read again (a transaction that committed a lower id late), and those already in
the warehouse are left out; a repeat adds nothing anyway. Erased customers get none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.journeys._consent import suppressions_for
from liucun.state import JourneyCursor, JourneyEnrolment, JourneyStep

#: liucun's journey events in the warehouse.
JOURNEY_EVENT_TYPES: tuple[str, ...] = ("journey_entered", "journey_converted")
#: State ids read again below a journey-event cursor on PostgreSQL.
OVERLAP_IDS = 1_000
#: Most enrolments (or conversions) published per round; the rest go next round.
LIMIT = 50_000


def _iso(value: Any) -> str | None:
    return None if value is None else as_utc(value).isoformat()


@dataclass
class JourneyEvents:
    """What :func:`collect_journey_events` handed to the round's load, and the cursors
    to store once that load committed (:meth:`commit`)."""

    counts: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def commit(self, ws: Any, now: datetime) -> None:
        """Store the cursors (call after the load that took the events committed)."""
        if not self.cursors:
            return
        from liucun.journeys._engine import _store_cursor

        with ws.state.write() as s:
            for name, last in self.cursors.items():
                _store_cursor(s, name, json.dumps({"last_id": last}), now)


def _last_id(s: Session, name: str) -> int:
    text = s.scalar(select(JourneyCursor.position).where(JourneyCursor.name == name))
    try:
        return int(json.loads(text)["last_id"]) if text else 0
    except (ValueError, KeyError, TypeError):
        return 0


def _entered(s: Session, start: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    E = JourneyEnrolment
    rows = s.execute(
        select(E.id, E.journey, E.version, E.user_id, E.arm, E.entry_key, E.entered_at)
        .where(E.id > start)
        .order_by(E.id)
        .limit(limit)
    ).all()
    return [
        (
            r.id,
            {
                "event_id": f"liucun:journey_entered:{r.id}",
                "user_id": r.user_id,
                "event_type": "journey_entered",
                "ts": as_utc(r.entered_at),
                "properties": {
                    "source": "liucun",
                    "journey": r.journey,
                    "version": r.version,
                    "arm": r.arm,
                    "entry_key": r.entry_key,
                },
            },
        )
        for r in rows
    ]


def _converted(s: Session, start: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    St, E = JourneyStep, JourneyEnrolment
    rows = s.execute(
        select(
            St.id,
            St.enrolment_id,
            St.journey,
            St.version,
            St.user_id,
            St.reason,
            St.detail,
            St.at,
            E.arm,
            E.entered_at,
        )
        .join(E, E.id == St.enrolment_id, isouter=True)
        .where(St.id > start, St.kind == "converted")
        .order_by(St.id)
        .limit(limit)
    ).all()
    out = []
    for r in rows:
        try:
            detail = json.loads(r.detail) if r.detail else {}
        except ValueError:
            detail = {}
        out.append(
            (
                r.id,
                {
                    "event_id": f"liucun:journey_converted:{r.enrolment_id}",
                    "user_id": r.user_id,
                    "event_type": "journey_converted",
                    "ts": as_utc(r.at),
                    "properties": {
                        "source": "liucun",
                        "journey": r.journey,
                        "version": r.version,
                        "arm": r.arm,
                        "goal": r.reason,
                        "goal_event_id": (detail or {}).get("event_id"),
                        "entered_at": _iso(r.entered_at),
                    },
                },
            )
        )
    return out


_READERS = {"journey_entered": _entered, "journey_converted": _converted}


def collect_journey_events(ws: Any, *, limit: int = LIMIT) -> JourneyEvents:
    """Hand the ``journey_entered`` / ``journey_converted`` events of enrolments and
    conversions recorded since the last call to :func:`liucun.journeys._publish.
    publish_events` (inside the worker's round: collected for its one load); see the
    module docstring. Call :meth:`JourneyEvents.commit` once they are loaded."""
    from liucun.journeys._publish import publish_events

    out = JourneyEvents()
    found: list[dict[str, Any]] = []
    overlap: list[str] = []
    with ws.state.read() as s:
        late = OVERLAP_IDS if s.get_bind().dialect.name == "postgresql" else 0
        for kind, read in _READERS.items():
            name = f"events:{kind}"
            last = _last_id(s, name)
            if not read(s, last, 1):
                continue
            rows = read(s, max(0, last - late), limit)
            out.cursors[name] = max(last, rows[-1][0])
            overlap.extend(e["event_id"] for i, e in rows if i <= last)
            found.extend(e for _, e in rows)
        erased = _erased(s, {e["user_id"] for e in found})
    if overlap:
        present = _in_warehouse(ws, overlap)
        found = [e for e in found if e["event_id"] not in present]
    events = []
    for e in found:
        if e["user_id"] in erased:
            continue
        e["properties"] = json.dumps(e["properties"], ensure_ascii=False, sort_keys=True)
        events.append(e)
        out.counts[e["event_type"]] = out.counts.get(e["event_type"], 0) + 1
    publish_events(ws, events, source="liucun journeys")
    return out


def _erased(s: Session, users: set[str]) -> set[str]:
    found = suppressions_for(s, users) if users else {}
    return {u for u, rows in found.items() if any(kind == "erased" for _, kind in rows)}


def _in_warehouse(ws: Any, event_ids: list[str]) -> set[str]:
    import ibis
    import pyarrow as pa

    ev = ws.table("events")
    ids = ibis.memtable(pa.table({"_id": pa.array(event_ids, pa.string())}))
    hit = ev.filter(ev.event_type.isin(JOURNEY_EVENT_TYPES)).semi_join(ids, ev.event_id == ids._id)
    return set(hit.select("event_id").to_pyarrow().column("event_id").to_pylist())
