"""The warehouse: one Ibis connection per workspace; the only layer that names a backend.

The default store is one DuckDB file; ``warehouse_url = "pyspark"`` keeps Parquet tables
read by Spark. Input files are always parsed by the in-process DuckDB engine.
"""

from liucun.warehouse._base import Warehouse, Writer
from liucun.warehouse._duckdb import DuckDBWarehouse
from liucun.warehouse._engine import (
    LINE,
    EngineError,
    FileFormat,
    describe_read_error,
    epoch_us,
    from_utc_timestamp,
    json_merge_patch,
    json_valid,
    local_to_utc,
    new_engine,
    read_arrow,
    try_strptime,
)
from liucun.warehouse._parquet import ParquetWarehouse
from liucun.warehouse._views import current_identities, resolved_events, resolved_users
from liucun.warehouse._workspace import (
    Workspace,
    connect_warehouse,
    init_workspace,
    open_workspace,
)

__all__ = [
    "LINE",
    "DuckDBWarehouse",
    "EngineError",
    "FileFormat",
    "ParquetWarehouse",
    "Warehouse",
    "Workspace",
    "Writer",
    "connect_warehouse",
    "current_identities",
    "describe_read_error",
    "epoch_us",
    "from_utc_timestamp",
    "init_workspace",
    "json_merge_patch",
    "json_valid",
    "local_to_utc",
    "new_engine",
    "open_workspace",
    "read_arrow",
    "resolved_events",
    "resolved_users",
    "try_strptime",
]
