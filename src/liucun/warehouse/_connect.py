"""Open the warehouse a URL names."""

from __future__ import annotations

from pathlib import Path

from liucun.core import ConfigError
from liucun.warehouse._base import Warehouse

DUCKDB_FILE = "warehouse.duckdb"
PARQUET_DIR = "warehouse"
#: How long opening the warehouse waits for another process that holds it (seconds).
DEFAULT_WAIT_S = 30.0


def connect_warehouse(
    url: str, workspace: Path, *, read_only: bool = False, wait_s: float = DEFAULT_WAIT_S
) -> Warehouse:
    """Open the warehouse that ``url`` names (relative paths are inside ``workspace``).

    ``read_only`` opens it for reading only (many readers at once, never blocking each
    other); otherwise it is opened for writing, which one process at a time may do.
    Either waits up to ``wait_s`` seconds for a process that holds the file.
    """
    scheme, _, rest = url.partition("://")
    if scheme == "duckdb":
        from liucun.warehouse._duckdb import DuckDBWarehouse

        # duckdb:///abs/file.duckdb → /abs/file.duckdb; duckdb://rel.duckdb → in the workspace
        path = Path(rest) if rest else Path(DUCKDB_FILE)
        return DuckDBWarehouse(path if path.is_absolute() else workspace / path)
    if scheme == "pyspark":
        from liucun.warehouse._parquet import ParquetWarehouse

        return ParquetWarehouse(workspace / PARQUET_DIR, master=rest or "local[2]")
    raise ConfigError(
        f"unknown warehouse_url {url!r}; use 'duckdb', 'duckdb:///path/file.duckdb', "
        "'pyspark' or 'pyspark://MASTER'"
    )
