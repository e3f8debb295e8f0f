"""The exposure log: every assignment that reached a unit, in the state database's
``exposures`` table, with its probability so past decisions can be re-evaluated.

State is the log's source of truth, so an always-on process (a decision API, a journey
worker) and the CLI can log at once; analyses read the warehouse's copy, which
:func:`liucun.workspace.sync` brings up to date (``Workspace.sync``; the experiment
analysis and uplift call it first).

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

from liucun.core import Clock, ConfigError, InvalidInput, SystemClock
from liucun.experiments._assignment import ASSIGNMENT_SCHEMA
from liucun.ingest._rules import fingerprint
from liucun.schema import arrow_schema
from liucun.state import EXPOSURE_COLUMNS, StateStore, insert_exposures

TS = arrow_schema("exposures").field("ts").type


@dataclass(frozen=True)
class ExposureLog:
    """What one :func:`log_exposures` call wrote."""

    load_id: str
    logged: int
    duplicates: int


def _timestamps(ts: datetime | Sequence[datetime] | pa.Array, n: int) -> pa.Array:
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
    state: StateStore,
    assignments: pa.Table,
    *,
    ts: datetime | Sequence[datetime] | pa.Array | None = None,
    clock: Clock | None = None,
) -> ExposureLog:
    """Append the assigned rows of ``assignments`` (from :func:`assign`) to the log in
    ``state`` (``ws.state``), in one transaction.

    Units outside the experiment (null variant) are not exposed and not logged. ``ts``
    is when the units were exposed: one aware datetime for all (default: ``clock``'s
    now) or one per row. Rows already in the log (same experiment, unit and time) are
    skipped.
    """
    missing = [c for c in ASSIGNMENT_SCHEMA.names if c not in assignments.column_names]
    if missing:
        raise InvalidInput(
            f"assignments lacks column(s) {', '.join(missing)}; pass the table assign() returns"
        )
    now = (clock or SystemClock()).now()
    load_id = f"exp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    rows = assignments.select(ASSIGNMENT_SCHEMA.names).append_column(
        "ts", _timestamps(now if ts is None else ts, assignments.num_rows)
    )
    rows = rows.filter(pc.is_valid(rows["variant"]))
    t = ibis.memtable(rows)
    t = t.mutate(
        exposure_id=fingerprint([t.experiment, t.unit_type, t.unit_id, t.ts]),
        load_id=ibis.literal(load_id),
    ).distinct(on="exposure_id", keep="first")
    new = t.select(*EXPOSURE_COLUMNS).to_pyarrow()
    with state.write() as session:
        logged = insert_exposures(session, new)
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


def experiment_summary(exposures: ir.Table) -> ir.Table:
    """One row per experiment in the exposure log, the most recently exposed first:
    ``experiment, unit_type, units`` (distinct units exposed), ``variants`` (how many),
    ``exposures`` (rows, repeats included), ``first_exposure`` and ``last_exposure``.

    An experiment that logged several unit types has one row per type.
    """
    units = exposures.group_by(["experiment", "unit_type", "unit_id"]).aggregate(
        _rows=exposures.count(), _first=exposures.ts.min(), _last=exposures.ts.max()
    )
    per = units.group_by(["experiment", "unit_type"]).aggregate(
        units=units.count(),
        exposures=units._rows.sum(),
        first_exposure=units._first.min(),
        last_exposure=units._last.max(),
    )
    arms = (
        exposures.select("experiment", "unit_type", "variant")
        .distinct()
        .group_by(["experiment", "unit_type"])
        .aggregate(variants=ibis._.count())
    )
    joined = per.join(arms, ["experiment", "unit_type"])
    return joined.select(
        "experiment",
        "unit_type",
        "units",
        "variants",
        "exposures",
        "first_exposure",
        "last_exposure",
    ).order_by([ibis.desc("last_exposure"), "experiment", "unit_type"])
