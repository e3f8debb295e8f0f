"""Open the warehouse a URL names."""

from __future__ import annotations

from pathlib import Path

from liucun.core import ConfigError
from liucun.warehouse._base import Warehouse
from liucun.warehouse._locks import DEFAULT_WAIT_S

DUCKDB_FILE = "warehouse.duckdb"
PARQUET_DIR = "warehouse"

__all__ = ["DEFAULT_WAIT_S", "DUCKDB_FILE", "PARQUET_DIR", "connect_warehouse"]


def connect_warehouse(
    url: str, workspace: Path, *, read_only: bool = False, wait_s: float = DEFAULT_WAIT_S
) -> Warehouse:
    """Open the warehouse that ``url`` names (relative paths are inside ``workspace``).

    ``read_only`` opens it for reading (many readers at once, never blocking each other)
    and takes it for writing only inside :meth:`Warehouse.writing` and
    :meth:`Warehouse.transaction`, so existing callers write through a reading handle
    transparently; otherwise it is held for writing, by one process at a time, until it
    is closed. Opening and each write wait up to ``wait_s`` seconds for a process that
    holds the warehouse, then raise :class:`~liucun.core.WarehouseBusy` naming it
    (docs/decisions/0006-warehouse-concurrency.md).
    """
    scheme, _, rest = url.partition("://")
    if scheme == "duckdb":
        from liucun.warehouse._duckdb import DuckDBWarehouse

        # duckdb:///abs/file.duckdb → /abs/file.duckdb; duckdb://rel.duckdb → in the workspace
        path = Path(rest) if rest else Path(DUCKDB_FILE)
        return DuckDBWarehouse(
            path if path.is_absolute() else workspace / path, read_only=read_only, wait_s=wait_s
        )
    if scheme == "pyspark":
        from liucun.warehouse._parquet import ParquetWarehouse

        return ParquetWarehouse(
            workspace / PARQUET_DIR, master=rest or "local[2]", read_only=read_only, wait_s=wait_s
        )
    raise ConfigError(
        f"unknown warehouse_url {url!r}; use 'duckdb', 'duckdb:///path/file.duckdb', "
        "'pyspark' or 'pyspark://MASTER'"
    )
