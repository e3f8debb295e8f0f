"""The exposure log in state: idempotent bulk inserts and reads by id for the sync."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from liucun.state._models import Exposure

#: The columns of an exposure row, in the warehouse's order (``id`` is state's own).
EXPOSURE_COLUMNS = (
    "exposure_id",
    "experiment",
    "layer",
    "unit_type",
    "unit_id",
    "variant",
    "probability",
    "holdout",
    "ts",
    "load_id",
)
_BATCH = 5_000


def insert_exposures(session: Session, rows: pa.Table) -> int:
    """Insert ``rows`` (the :data:`EXPOSURE_COLUMNS`), skipping exposure ids already
    logged; return how many were new. The caller commits."""
    table = Exposure.__table__
    dialect = session.get_bind().dialect.name
    stmt = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    stmt = stmt.on_conflict_do_nothing(index_elements=["exposure_id"])
    before = count_exposures(session)
    records = rows.select(list(EXPOSURE_COLUMNS)).to_pylist()
    for start in range(0, len(records), _BATCH):
        session.execute(stmt, records[start : start + _BATCH])
    return count_exposures(session) - before


def count_exposures(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Exposure)) or 0)


def max_exposure_id(session: Session) -> int:
    """The highest ``id`` in the log (0 when it is empty)."""
    return int(session.scalar(select(func.max(Exposure.id))) or 0)


def exposures_after(session: Session, after_id: int, *, schema: pa.Schema) -> pa.Table:
    """Rows with ``id > after_id`` as Arrow with ``schema`` plus ``id``, oldest first."""
    cols = [Exposure.__table__.c[name] for name in ("id", *EXPOSURE_COLUMNS)]
    result = session.execute(select(*cols).where(Exposure.id > after_id).order_by(Exposure.id))
    records = [dict(row._mapping) for row in result]
    full = schema.append(pa.field("id", pa.int64(), nullable=False))
    return pa.Table.from_pylist(records, schema=full)
