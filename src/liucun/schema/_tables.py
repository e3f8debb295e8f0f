"""The canonical tables (ARCHITECTURE §4), defined once.

Each table is a tuple of :class:`Column`; Arrow and Ibis schemas are derived from it, so
the warehouse, the validators, the simulator and the docs cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.schema as sch
import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

Sensitivity = Literal["public", "internal", "sensitive"]
"""How a field may be shown and stored.

``public``: codes and categories that identify no one (event types, currencies,
countries); ``internal``: business and pseudonymous data, stored in its column and shown
to the team (ids, amounts, times, birthdays, keyed hashes); ``sensitive``: contact data,
which liucun never stores in clear — only its keyed hash (see :mod:`liucun.schema._privacy`).
"""


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    type: pa.DataType
    required: bool
    description: str
    sensitivity: Sensitivity = "internal"


EVENTS: tuple[Column, ...] = (
    Column("event_id", pa.string(), True, "Unique id; taken from input or derived from the row."),
    Column("user_id", pa.string(), False, "Known customer id (required unless anonymous_id)."),
    Column("anonymous_id", pa.string(), False, "Cookie / device / app-instance id before login."),
    Column("account_id", pa.string(), False, "B2B: the buyer's company account."),
    Column(
        "event_type", pa.string(), True, "One of the standard types or a configured one.", "public"
    ),
    Column("ts", TS, True, "When it happened, stored in UTC."),
    Column(
        "channel",
        pa.string(),
        False,
        "app, web, mini_program, offline_store, marketplace…",
        "public",
    ),
    Column("region", pa.string(), False, "Sales region.", "public"),
    Column("country", pa.string(), False, "ISO 3166-1 alpha-2 country code.", "public"),
    Column("revenue", pa.float64(), False, "Order/refund amount ≥ 0 in `currency`."),
    Column("currency", pa.string(), False, "ISO 4217 code (three upper-case letters).", "public"),
    Column("order_id", pa.string(), False, "Order this event belongs to."),
    Column("category", pa.string(), False, "Product category.", "public"),
    Column("properties", pa.string(), False, "JSON object with every other input column."),
    Column("ingested_at", TS, True, "When liucun accepted the row."),
    Column("load_id", pa.string(), True, "The load that accepted the row."),
)

USERS: tuple[Column, ...] = (
    Column("user_id", pa.string(), True, "Customer id."),
    Column("signup_ts", TS, False, "Registration time, UTC."),
    Column("customer_type", pa.string(), False, "b2c or b2b.", "public"),
    Column("account_id", pa.string(), False, "B2B company account."),
    Column(
        "company_size",
        pa.string(),
        False,
        "B2B size band, e.g. 1-9, 10-49, 50-249, 250+.",
        "public",
    ),
    Column("industry", pa.string(), False, "B2B industry.", "public"),
    Column("country", pa.string(), False, "ISO 3166-1 alpha-2 country code.", "public"),
    Column("region", pa.string(), False, "Sales region.", "public"),
    Column("language", pa.string(), False, "BCP 47 language tag, e.g. zh-CN.", "public"),
    Column("timezone", pa.string(), False, "IANA time zone of the customer."),
    Column(
        "acquisition_channel",
        pa.string(),
        False,
        "organic, paid_search, social, referral…",
        "public",
    ),
    Column("acquisition_cost", pa.float64(), False, "What acquiring the customer cost (≥ 0)."),
    Column("birthday", pa.date32(), False, "Date of birth."),
    Column("attributes", pa.string(), False, "JSON object with every other input column."),
    Column("ingested_at", TS, True, "When liucun accepted this version of the row."),
    Column("load_id", pa.string(), True, "The load that accepted it."),
)

IDENTITIES: tuple[Column, ...] = (
    Column("alias", pa.string(), True, "The alias value (an id, or a hash)."),
    Column("alias_type", pa.string(), True, "user_id, anonymous_id, device_id, email_hash, …"),
    Column("user_id", pa.string(), True, "Canonical user the alias belongs to."),
    Column("valid_from", TS, True, "When this mapping started."),
    Column("valid_to", TS, False, "When a merge replaced it; null for the current mapping."),
    Column("load_id", pa.string(), True, "The load that produced this mapping."),
)

IDENTITY_LINKS: tuple[Column, ...] = (
    Column("alias_type_a", pa.string(), True, "Type of the first alias."),
    Column("alias_a", pa.string(), True, "First alias."),
    Column("alias_type_b", pa.string(), True, "Type of the second alias."),
    Column("alias_b", pa.string(), True, "Second alias."),
    Column("first_seen", TS, True, "When the link was first observed."),
    Column("source", pa.string(), True, "events or users: where the link was observed."),
    Column("load_id", pa.string(), True, "The load that observed it first."),
)

QUARANTINE: tuple[Column, ...] = (
    Column("load_id", pa.string(), True, "The load that rejected the row."),
    Column("target", pa.string(), True, "events or users."),
    Column("source", pa.string(), True, "File (or other source) the row came from."),
    Column("line", pa.int64(), False, "Line number in the source (1-based; CSV header = 1)."),
    Column("raw", pa.string(), True, "The row as read, as JSON text."),
    Column("reason_codes", pa.list_(pa.string()), True, "Machine-readable reason codes."),
    Column("reasons", pa.list_(pa.string()), True, "Every reason, in words a user can act on."),
    Column("quarantined_at", TS, True, "When it was rejected."),
)

LOADS: tuple[Column, ...] = (
    Column("load_id", pa.string(), True, "Unique id of one ingest run."),
    Column("target", pa.string(), True, "events or users."),
    Column("sources", pa.string(), True, "JSON list of the files read."),
    Column("rows_read", pa.int64(), True, "Rows read."),
    Column("accepted", pa.int64(), True, "Rows added."),
    Column("updated", pa.int64(), True, "users only: existing rows whose values changed."),
    Column("duplicates", pa.int64(), True, "Rows already present (same event_id / same row)."),
    Column("quarantined", pa.int64(), True, "Rows rejected to the quarantine."),
    Column("started_at", TS, True, "Start of the load."),
    Column("finished_at", TS, True, "Commit time."),
)

EXPOSURES: tuple[Column, ...] = (
    Column("exposure_id", pa.string(), True, "Unique id: hash of experiment, unit and time."),
    Column("experiment", pa.string(), True, "Experiment or campaign key."),
    Column("layer", pa.string(), False, "Mutually exclusive layer the experiment lives in."),
    Column("unit_type", pa.string(), True, "user or account."),
    Column("unit_id", pa.string(), True, "The user_id or account_id assigned."),
    Column("variant", pa.string(), True, "Variant (arm) the unit was assigned to."),
    Column("probability", pa.float64(), True, "Probability of that assignment, for re-weighting."),
    Column("holdout", pa.bool_(), True, "The unit is in a global or campaign holdout."),
    Column("ts", TS, True, "When the unit was exposed."),
    Column("load_id", pa.string(), True, "The write that logged it."),
)

SCORES: tuple[Column, ...] = (
    Column("user_id", pa.string(), True, "Canonical customer id."),
    Column("as_of", TS, True, "Scoring cut-off: only data before it was used."),
    Column("model", pa.string(), True, "Model name, e.g. churn."),
    Column("model_version", pa.string(), True, "Version of the saved model that scored."),
    Column("p_alive", pa.float64(), False, "BTYD probability the customer is still active."),
    Column("churn_risk", pa.float64(), False, "Calibrated probability of no order in H days."),
    Column("expected_orders_30d", pa.float64(), False, "Expected orders in the next 30 days."),
    Column("expected_orders_90d", pa.float64(), False, "Expected orders in the next 90 days."),
    Column("expected_orders_365d", pa.float64(), False, "Expected orders in the next 365 days."),
    Column("clv_30d", pa.float64(), False, "Expected spend in the next 30 days."),
    Column("clv_90d", pa.float64(), False, "Expected spend in the next 90 days."),
    Column("clv_365d", pa.float64(), False, "Expected spend in the next 365 days."),
    Column("reasons", pa.list_(pa.string()), False, "Top reasons for the risk, as sentences."),
    Column("stage", pa.string(), False, "Lifecycle stage at as_of."),
    Column("segment", pa.string(), False, "RFM segment at as_of."),
    Column("scored_at", TS, True, "When the row was written."),
)

SYNC_CURSORS: tuple[Column, ...] = (
    Column("table_name", pa.string(), True, "Operational table copied from state."),
    Column("last_id", pa.int64(), True, "Highest state id copied so far."),
    Column("state_rows", pa.int64(), True, "Rows the state table held at that sync."),
    Column("synced_at", TS, True, "When the copy committed."),
)

FX_RATES: tuple[Column, ...] = (
    Column("date", pa.date32(), True, "Day the rate applies from (until the next rate's day)."),
    Column("currency", pa.string(), True, "ISO 4217 code of the currency converted."),
    Column("quote", pa.string(), True, "ISO 4217 code the rate is expressed in."),
    Column("rate", pa.float64(), True, "Units of quote one unit of currency buys that day."),
    Column("source", pa.string(), True, "File the rate was loaded from."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "events": EVENTS,
    "users": USERS,
    "identities": IDENTITIES,
    "identity_links": IDENTITY_LINKS,
    "quarantine": QUARANTINE,
    "loads": LOADS,
    "exposures": EXPOSURES,
    "scores": SCORES,
    "sync_cursors": SYNC_CURSORS,
    "fx_rates": FX_RATES,
}


def columns(table: str) -> tuple[Column, ...]:
    """The columns of canonical table ``table``."""
    return TABLES[table]


def column_names(table: str) -> tuple[str, ...]:
    """Column names of canonical table ``table``, in storage order."""
    return tuple(c.name for c in TABLES[table])


def arrow_schema(table: str) -> pa.Schema:
    """Arrow schema of canonical table ``table``."""
    return pa.schema([pa.field(c.name, c.type, nullable=True) for c in TABLES[table]])


def ibis_schema(table: str) -> sch.Schema:
    """Ibis schema of canonical table ``table``."""
    return ibis.schema(arrow_schema(table))
