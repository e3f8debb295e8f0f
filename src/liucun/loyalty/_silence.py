"""Silence warnings in the warehouse: the ``points_silence_warning`` event of each warning
notice, written after the notice and rebuilt from it, so that a run killed between the
state commit and the warehouse write is repaired by the next one with the very same row."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from liucun.core import NothingLoaded
from liucun.loyalty._boost import notice_json
from liucun.loyalty._idle import SILENCE_WARNING
from liucun.state import LoyaltyNotice

log = logging.getLogger("liucun.loyalty")

#: ``loyalty_notices.kind`` of a silence warning.
WARNING_NOTICE = "silence_warning"


def sync_warnings(ws: Any, program: str, *, dry_run: bool, planned: list[str]) -> int:
    """Write the ``points_silence_warning`` event of every warning notice of ``program``
    that the warehouse lacks (this run's, and any a crash left behind): the event is
    rebuilt from the notice, so a repair writes exactly the row the first try would
    have. Returns how many were written; in a dry run (nothing written), how many would
    be, ``planned`` being the keys of the warnings the dry run would add."""
    with ws.state.read() as s:
        notices = s.scalars(
            select(LoyaltyNotice).where(
                LoyaltyNotice.program == program, LoyaltyNotice.kind == WARNING_NOTICE
            )
        ).all()
    ev = ws.table("events")
    stored = set(
        ev.filter(ev.event_type == SILENCE_WARNING)
        .select("event_id")
        .to_pyarrow()
        .column(0)
        .to_pylist()
    )
    missing = [n for n in notices if n.event_id not in stored]
    if dry_run:
        return len(missing) + sum(1 for key in planned if key not in stored)
    if not missing:
        return 0
    from liucun.ingest import IngestOptions, ingest_tables

    table = pa.table(
        {
            "event_id": [n.event_id for n in missing],
            "user_id": [n.user_id for n in missing],
            "event_type": [SILENCE_WARNING] * len(missing),
            "ts": pa.array(
                [datetime.fromisoformat(json.loads(n.details)["as_of"]) for n in missing],
                pa.timestamp("us", tz="UTC"),
            ),
            "properties": [_event_properties(program, n) for n in missing],
        }
    )
    custom = (*ws.settings.ingest.custom_event_types, SILENCE_WARNING)
    options = IngestOptions.from_settings(ws.settings, custom_event_types=custom, clock=ws.clock)
    try:
        (result,) = ingest_tables(
            ws.warehouse, events=table, source="loyalty loss aversion", options=options
        )
    except NothingLoaded as exc:  # every row quarantined: the load committed that much
        result = exc.result  # type: ignore[attr-defined]
    if result.quarantined:
        log.warning(
            "%d silence-warning event(s) of program %s were quarantined (%s); the notices "
            "stay in state and the next run tries again",
            result.quarantined,
            program,
            result.by_reason,
        )
    return int(result.accepted)


def _event_properties(program: str, notice: LoyaltyNotice) -> str:
    d = json.loads(notice.details)
    return notice_json(
        {
            "program": program,
            "points_at_stake": d["points_at_stake"],
            "decay_points": d["decay_points"],
            "decay_on": d["decay_on"],
            "decay_at": d["decay_at"],
            "idle_days": d["idle_days"],
            "last_activity": d["last_activity"],
            "notice_key": notice.key,
        }
    )
