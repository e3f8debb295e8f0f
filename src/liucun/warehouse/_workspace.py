"""A workspace: a directory with ``liucun.toml``, the warehouse and room for models and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from liucun.core import SETTINGS_FILE, ConfigError, Settings, WorkspaceError, load_settings
from liucun.warehouse._base import Warehouse

DUCKDB_FILE = "warehouse.duckdb"
PARQUET_DIR = "warehouse"

_TEMPLATE = """\
# liucun workspace settings. Environment variables LIUCUN_* override them,
# e.g. LIUCUN_REPORTING_TIMEZONE=Asia/Shanghai or LIUCUN_INGEST__FUTURE_TOLERANCE_HOURS=48.

# Where the canonical tables live: "duckdb" (warehouse.duckdb in this directory),
# "duckdb:///path/to/file.duckdb", "pyspark" (Parquet tables here, Spark in local mode)
# or "pyspark://spark://host:7077".
warehouse_url = "{warehouse_url}"

# Time zone in which days, weeks and months are counted in reports.
reporting_timezone = "UTC"

# Your column name = canonical column name, applied to every ingested file.
[mapping]
# order_date = "ts"
# amount = "revenue"

[ingest]
# Reject timestamps later than now + this many hours.
future_tolerance_hours = 24
# Event types accepted besides the standard ones.
custom_event_types = []
# Time zone of timestamps that carry no offset.
source_timezone = "UTC"
# Fail a load when more than this share of rows is quarantined (1.0 = never).
max_reject_rate = 1.0
"""


@dataclass
class Workspace:
    """An opened workspace. Use :func:`open_workspace` (``liucun.open``) to get one."""

    path: Path
    settings: Settings
    _warehouse: Warehouse | None = field(default=None, repr=False)

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def reports_dir(self) -> Path:
        return self.path / "reports"

    @property
    def warehouse(self) -> Warehouse:
        """The workspace's warehouse, connected on first use."""
        if self._warehouse is None:
            self._warehouse = connect_warehouse(self.settings.warehouse_url, self.path)
        return self._warehouse

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_warehouse(url: str, workspace: Path) -> Warehouse:
    """Open the warehouse that ``url`` names (relative paths are inside ``workspace``)."""
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


def init_workspace(path: Path, *, warehouse_url: str = "duckdb") -> Workspace:
    """Create (or complete) a workspace at ``path`` and return it opened.

    Idempotent: an existing ``liucun.toml`` is kept as it is.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} exists and is not a directory; choose another path")
    path.mkdir(parents=True, exist_ok=True)
    settings_file = path / SETTINGS_FILE
    if not settings_file.exists():
        settings_file.write_text(_TEMPLATE.format(warehouse_url=warehouse_url), encoding="utf-8")
    ws = open_workspace(path)
    ws.models_dir.mkdir(exist_ok=True)
    ws.reports_dir.mkdir(exist_ok=True)
    ws.warehouse  # noqa: B018 - creates the warehouse and its tables
    return ws


def open_workspace(path: Path | str) -> Workspace:
    """Open the workspace at ``path``; raise :class:`WorkspaceError` when there is none."""
    path = Path(path)
    if not (path / SETTINGS_FILE).is_file():
        raise WorkspaceError(
            f"{path} is not a liucun workspace (no {SETTINGS_FILE}); create one with "
            f"`liucun init {path}` or point --workspace/-w at an existing one"
        )
    return Workspace(path=path.resolve(), settings=load_settings(path))
