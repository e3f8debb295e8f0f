"""The canonical data model: tables, columns and event types (ARCHITECTURE §4)."""

from liucun.schema._event_types import (
    EVENT_TYPE_GROUPS,
    MONETARY_EVENT_TYPES,
    STANDARD_EVENT_TYPES,
)
from liucun.schema._tables import (
    EVENTS,
    EXPOSURES,
    IDENTITIES,
    IDENTITY_LINKS,
    LOADS,
    QUARANTINE,
    SCORES,
    TABLES,
    USERS,
    Column,
    arrow_schema,
    column_names,
    columns,
    ibis_schema,
)

__all__ = [
    "EVENTS",
    "EVENT_TYPE_GROUPS",
    "EXPOSURES",
    "IDENTITIES",
    "IDENTITY_LINKS",
    "LOADS",
    "MONETARY_EVENT_TYPES",
    "QUARANTINE",
    "SCORES",
    "STANDARD_EVENT_TYPES",
    "TABLES",
    "USERS",
    "Column",
    "arrow_schema",
    "column_names",
    "columns",
    "ibis_schema",
]
