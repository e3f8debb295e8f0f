"""The warehouse: one Ibis connection per workspace; the only layer that names a backend.

The default store is one DuckDB file; ``warehouse_url = "pyspark"`` keeps Parquet tables
read by Spark. Input files are always parsed by the in-process DuckDB engine.
"""

from liucun.warehouse._base import Warehouse, Writer
from liucun.warehouse._connect import DEFAULT_WAIT_S, DUCKDB_FILE, PARQUET_DIR, connect_warehouse
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
from liucun.warehouse._hashing import hmac_sha256
from liucun.warehouse._parquet import ParquetWarehouse
from liucun.warehouse._views import (
    canonical_customers,
    current_identities,
    resolved_events,
    resolved_users,
)

__all__ = [
    "DEFAULT_WAIT_S",
    "DUCKDB_FILE",
    "LINE",
    "PARQUET_DIR",
    "DuckDBWarehouse",
    "EngineError",
    "FileFormat",
    "ParquetWarehouse",
    "Warehouse",
    "Writer",
    "canonical_customers",
    "connect_warehouse",
    "current_identities",
    "describe_read_error",
    "epoch_us",
    "from_utc_timestamp",
    "hmac_sha256",
    "json_merge_patch",
    "json_valid",
    "local_to_utc",
    "new_engine",
    "read_arrow",
    "resolved_events",
    "resolved_users",
    "try_strptime",
]
