"""The exposure log: every assignment that reached a unit, in the warehouse's
``exposures`` table, with its probability so past decisions can be re-evaluated.

Writing is idempotent: a row's ``exposure_id`` is the md5 of (experiment, unit type,
unit id, time), so logging the same exposure again — a retried job, a replayed batch —
adds nothing. A later exposure of the same unit is a new row; analyses use each unit's
first exposure (:func:`first_exposures`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from liucun.core import ConfigError, InvalidInput
from liucun.experiments._assignment import ASSIGNMENT_SCHEMA
from liucun.ingest._rules import fingerprint
from liucun.schema import arrow_schema
from liucun.warehouse import Warehouse

TS = arrow_schema("exposures").field("ts").type


@dataclass(frozen=True)
class ExposureLog:
    """What one :func:`log_exposures` call wrote."""

    load_id: str
    logged: int
    duplicates: int


def _timestamps(ts: datetime | Sequence[datetime] | pa.Array | None, n: int) -> pa.Array:
    if ts is None:
        ts = datetime.now(UTC)
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ConfigError(
                f"exposure time {ts.isoformat()} has no time zone; pass an aware datetime, "
                "e.g. datetime(2026, 1, 31, 9, 0, tzinfo=UTC)"
            )
        return pa.array([ts.astimezone(UTC)] * n, TS)
    arr = ts if isinstance(ts, pa.Array) else pa.array(list(ts))
    if len(arr) != n:
        raise InvalidInput(f"{len(arr)} exposure times for {n} assignments; give one per row")
    if not pa.types.is_timestamp(arr.type) or arr.type.tz is None:
        raise ConfigError("exposure times must be time-zone-aware timestamps (UTC)")
    return arr.cast(TS)


def log_exposures(
    warehouse: Warehouse,
    assignments: pa.Table,
    *,
    ts: datetime | Sequence[datetime] | pa.Array | None = None,
) -> ExposureLog:
    """Append the assigned rows of ``assignments`` (from :func:`assign`) to ``exposures``.

    Units outside the experiment (null variant) are not exposed and not logged. ``ts``
    is when the units were exposed: one aware datetime for all (default: now) or one per
    row. Rows already in the log (same experiment, unit and time) are skipped.
    """
    missing = [c for c in ASSIGNMENT_SCHEMA.names if c not in assignments.column_names]
    if missing:
        raise InvalidInput(
            f"assignments lacks column(s) {', '.join(missing)}; pass the table assign() returns"
        )
    now = datetime.now(UTC)
    load_id = f"exp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    rows = assignments.select(ASSIGNMENT_SCHEMA.names).append_column(
        "ts", _timestamps(ts, assignments.num_rows)
    )
    rows = rows.filter(pc.is_valid(rows["variant"]))
    t = ibis.memtable(rows)
    t = t.mutate(
        exposure_id=fingerprint([t.experiment, t.unit_type, t.unit_id, t.ts]),
        load_id=ibis.literal(load_id),
    ).distinct(on="exposure_id", keep="first")
    new = t.anti_join(warehouse.engine_table("exposures"), "exposure_id")
    with warehouse.transaction() as writer:
        logged = writer.append("exposures", new)
    return ExposureLog(load_id=load_id, logged=logged, duplicates=rows.num_rows - logged)


def first_exposures(exposures: ir.Table, experiment: str) -> ir.Table:
    """Each unit's first exposure to ``experiment``: ``unit_type, unit_id, variant,
    probability, holdout, exposed_at``.

    A unit logged in two variants (a broken assignment) keeps its first one; check the
    log with :func:`liucun.experiments.stats.srm_test` before trusting an analysis.
    """
    e = exposures.filter(exposures.experiment == experiment)
    ranked = e.mutate(
        _n=ibis.row_number().over(group_by=["unit_type", "unit_id"], order_by=["ts", "variant"])
    )
    first = ranked.filter(ranked._n == 0)
    return first.select(
        "unit_type", "unit_id", "variant", "probability", "holdout", exposed_at=first.ts
    )
