"""The events liucun writes (task, tag, delivery outcomes) into the warehouse, one load
per worker round.

:func:`publish_events` loads a list of events at once; inside :func:`one_load` (the
worker's round) it only collects them, and the round loads everything it collected in one
``ingest`` when it ends — a tick that delivers ten batches and breaches tasks then costs
one load instead of a dozen. :func:`flush` loads what the round collected so far with
more events right away (the delivery outcomes use it, because they are marked published
only after their load committed). Event ids are stable, so a repeat adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from liucun.core import as_utc

_ROUND: ContextVar[list[dict] | None] = ContextVar("liucun_publish_round", default=None)


def publish_events(ws: Any, events: list[dict], *, source: str) -> int:
    """Ingest liucun-written events (``event_id``, ``user_id``, ``event_type``, ``ts``,
    ``properties`` as JSON text), or collect them for the round's load inside
    :func:`one_load`. Returns how many events were handed on."""
    if not events:
        return 0
    pending = _ROUND.get()
    if pending is not None:
        pending.extend(events)
    else:
        _load(ws, events, source)
    return len(events)


def flush(ws: Any, events: Sequence[dict] = (), *, source: str = "liucun journeys") -> int:
    """Load the events the current round collected so far together with ``events``, now;
    returns how many were loaded. When this returns, they are in the warehouse."""
    pending = _ROUND.get()
    batch = [*(pending or ()), *events]
    if pending:
        pending.clear()
    if batch:
        _load(ws, batch, source)
    return len(batch)


@contextmanager
def one_load(ws: Any, *, source: str = "liucun journeys") -> Iterator[None]:
    """Collect what :func:`publish_events` gets inside the block and load it in one
    ingest at the end, also when the block raises (what state recorded is published
    either way). Nested blocks leave the load to the outermost."""
    if _ROUND.get() is not None:
        yield
        return
    pending: list[dict] = []
    token = _ROUND.set(pending)
    try:
        yield
    finally:
        _ROUND.reset(token)
        if pending:
            _load(ws, pending, source)


def _load(ws: Any, events: Sequence[dict], source: str) -> None:
    import pyarrow as pa

    from liucun.ingest import IngestOptions, ingest_tables

    table = pa.table(
        {
            "event_id": [e["event_id"] for e in events],
            "user_id": [e["user_id"] for e in events],
            "event_type": [e["event_type"] for e in events],
            "ts": pa.array([as_utc(e["ts"]) for e in events], type=pa.timestamp("us", tz="UTC")),
            "properties": [e["properties"] for e in events],
        }
    )
    ingest_tables(ws.warehouse, events=table, source=source, options=IngestOptions(clock=ws.clock))
