"""Operational rows reach analytics by copy: state → warehouse, by id, idempotently.

State is the source of truth for operational tables (today ``exposures``). The
warehouse keeps a read-only copy, so every analysis stays one Ibis expression on one
backend (DuckDB or Spark) and no always-on process ever writes the DuckDB file. The
copy is incremental: the warehouse's ``sync_cursors`` row remembers the highest state
id copied and the state table's row count at that time; when both still match, the
sync opens nothing for writing. Each copy re-reads the last :data:`OVERLAP` ids and
skips exposure ids already present, so a PostgreSQL transaction that committed a lower
id late is still copied, and a repeated or interrupted sync adds nothing twice.
See docs/decisions/0005-workspace-and-state.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from liucun.schema import arrow_schema
from liucun.state import (
    EXPOSURE_COLUMNS,
    StateStore,
    count_exposures,
    exposures_after,
    insert_exposures,
    max_exposure_id,
)

if TYPE_CHECKING:
    from liucun.warehouse import Warehouse
    from liucun.workspace._workspace import Workspace

#: State ids re-read below the cursor at each copy (late commits on PostgreSQL).
OVERLAP = 10_000


@dataclass(frozen=True)
class SyncResult:
    """Rows copied per operational table (0 everywhere for a no-op)."""

    copied: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.copied.values())


def _cursor(wh: Warehouse, table: str) -> tuple[int, int]:
    """``(last_id, state_rows)`` of the last copy of ``table`` (``(0, 0)``: never)."""
    cursors = wh.table("sync_cursors")
    row = (
        cursors.filter(cursors.table_name == table)
        .select("last_id", "state_rows")
        .to_pyarrow()
        .to_pylist()
    )
    return (int(row[0]["last_id"]), int(row[0]["state_rows"])) if row else (0, 0)


def sync(ws: Workspace) -> SyncResult:
    """Copy new ``exposures`` rows from state into the warehouse; see the module doc."""
    with ws.state.read() as session:
        top, rows = max_exposure_id(session), count_exposures(session)
    if _cursor(ws.warehouse, "exposures") == (top, rows):
        return SyncResult(copied={"exposures": 0})
    schema = arrow_schema("exposures")
    with ws.writing() as wh:
        last_id, _ = _cursor(wh, "exposures")
        with ws.state.read() as session:
            fresh = exposures_after(session, max(0, last_id - OVERLAP), schema=schema)
            top, rows = max_exposure_id(session), count_exposures(session)
        copied = _copy(wh, fresh, top=top, rows=rows, now=ws.clock.now())
    if copied:
        ws.audit("sync", target="exposures", copied=copied, last_id=top)
    return SyncResult(copied={"exposures": copied})


def _copy(wh: Warehouse, fresh: pa.Table, *, top: int, rows: int, now: object) -> int:
    staged = wh.read_arrow(fresh.drop(["id"]), name="_sync_exposures")
    try:
        new = staged.anti_join(wh.engine_table("exposures"), "exposure_id")
        cursor = ibis.memtable(
            pa.table(
                {
                    "table_name": ["exposures"],
                    "last_id": [top],
                    "state_rows": [rows],
                    "synced_at": [now],
                },
                schema=arrow_schema("sync_cursors"),
            )
        )
        with wh.transaction() as writer:
            copied = writer.append("exposures", new)
            writer.upsert(
                "sync_cursors", wh.materialize(cursor, name="_sync_cursor"), ["table_name"]
            )
    finally:
        wh.forget("_sync_exposures")
        wh.forget("_sync_cursor")
    return copied


def adopt_warehouse_exposures(wh: Warehouse, store: StateStore) -> int:
    """Move the exposures a pre-state workspace kept in its warehouse into ``store``.

    The warehouse rows stay as the copy; the next sync finds them present and only
    records its cursor. Returns how many rows state received.
    """
    rows = wh.table("exposures").select(*EXPOSURE_COLUMNS).order_by("ts", "exposure_id")
    table = rows.to_pyarrow()
    if table.num_rows == 0:
        return 0
    with store.write() as session:
        return insert_exposures(session, table)
