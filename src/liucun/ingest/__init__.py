"""Ingestion: read files, map columns, validate, quarantine, deduplicate, resolve identities."""

from liucun.ingest._columns import normalize_name, parse_mapping
from liucun.ingest._currencies import ISO_4217
from liucun.ingest._event_types import declare_event_types, parse_event_types
from liucun.ingest._fx import FxLoadResult, load_fx_rates, read_fx_rates
from liucun.ingest._identity import IdentityChanges, identity_changes, resolve_identities
from liucun.ingest._inbox import (
    Accepted,
    ConflictingRecords,
    InboxLoad,
    InvalidRecords,
    accept_events,
    accept_users,
    inbox_counts,
    load_inbox,
)
from liucun.ingest._inspect import (
    WarehouseStatus,
    open_quarantine,
    quarantined_rows,
    warehouse_status,
)
from liucun.ingest._load import (
    IngestOptions,
    IngestResult,
    ingest_events,
    ingest_tables,
    ingest_users,
)
from liucun.ingest._records import (
    MAX_ID,
    EventBatch,
    EventRecord,
    RecordContext,
    RecordProblem,
    UserBatch,
    UserRecord,
    record_context,
    record_problems,
)
from liucun.ingest._sources import Source, discover, file_format, sniff

__all__ = [
    "ISO_4217",
    "MAX_ID",
    "Accepted",
    "ConflictingRecords",
    "EventBatch",
    "EventRecord",
    "FxLoadResult",
    "IdentityChanges",
    "InboxLoad",
    "IngestOptions",
    "IngestResult",
    "InvalidRecords",
    "RecordContext",
    "RecordProblem",
    "Source",
    "UserBatch",
    "UserRecord",
    "WarehouseStatus",
    "accept_events",
    "accept_users",
    "declare_event_types",
    "discover",
    "file_format",
    "identity_changes",
    "inbox_counts",
    "ingest_events",
    "ingest_tables",
    "ingest_users",
    "load_fx_rates",
    "load_inbox",
    "normalize_name",
    "open_quarantine",
    "parse_event_types",
    "parse_mapping",
    "quarantined_rows",
    "read_fx_rates",
    "record_context",
    "record_problems",
    "resolve_identities",
    "sniff",
    "warehouse_status",
]
