"""Settings, errors and small utilities shared by every layer."""

from liucun.core._errors import (
    ConfigError,
    InvalidInput,
    LiucunError,
    RejectRateExceeded,
    WarehouseError,
    WorkspaceError,
)
from liucun.core._settings import (
    SETTINGS_FILE,
    IngestSettings,
    Settings,
    check_timezone,
    load_settings,
)

__all__ = [
    "SETTINGS_FILE",
    "ConfigError",
    "IngestSettings",
    "InvalidInput",
    "LiucunError",
    "RejectRateExceeded",
    "Settings",
    "WarehouseError",
    "WorkspaceError",
    "check_timezone",
    "load_settings",
]
