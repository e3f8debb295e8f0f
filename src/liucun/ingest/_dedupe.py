"""What a load adds: new events (deduplicated, conflicts rejected), users upserts, alias links."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import ibis
import ibis.expr.types as ir

from liucun.ingest._rules import fingerprint
from liucun.schema import column_names
from liucun.warehouse import LINE, Warehouse, Writer

#: Column telling which file of a load a row came from (files are deduplicated in order).
SRC = "_src"


_CONTENT = [c for c in column_names("events") if c not in ("event_id", "ingested_at", "load_id")]


def event_conflicts(wh: Warehouse, valid: ir.Table, *, repeats: bool) -> ir.Table | None:
    """Rows whose event_id is already used, in this load or in the warehouse, by a different
    event. They are rejected (``conflicting_event_id``) rather than counted as duplicates."""
    stored = wh.engine_table("events")
    clashing_ids = valid.select("event_id").semi_join(stored.select("event_id"), "event_id")
    if not repeats and int(clashing_ids.count().to_pyarrow().as_py()) == 0:
        return None
    rows = valid.mutate(
        _fp=fingerprint([valid[c] for c in _CONTENT]),
        _rank=ibis.row_number().over(group_by="event_id", order_by=[SRC, LINE]),
    )
    first = rows.filter(rows._rank == 0).select(
        "event_id", _first_fp=rows._fp, _first_line=rows[LINE]
    )
    later = rows.filter(rows._rank > 0)
    in_load = later.join(first, "event_id").filter(lambda t: t._fp != t._first_fp)
    in_load = in_load.mutate(
        _why=ibis.literal("' is already used on line ")
        + in_load._first_line.cast("string")
        + " of this load by a different event"
    )
    kept = stored.select(
        "event_id",
        _stored_fp=fingerprint([stored[c] for c in _CONTENT]),
        _stored_load=stored.load_id,
    )
    vs_stored = rows.join(kept, "event_id").filter(lambda t: t._fp != t._stored_fp)
    vs_stored = vs_stored.mutate(
        _why=ibis.literal("' is already stored (load ")
        + vs_stored._stored_load
        + ") for a different event"
    )
    cols = [SRC, LINE, "_why", *column_names("events")[:-2]]
    in_load = in_load.anti_join(vs_stored, [SRC, LINE])  # one reason per row is enough
    both = vs_stored.select(*cols).union(in_load.select(*cols))
    message = (
        ibis.literal("line ")
        + both[LINE].cast("string")
        + ", field 'event_id': '"
        + both.event_id
        + both._why
        + "; give every event its own id"
    )
    return both.select(
        SRC,
        line=both[LINE],
        raw=ibis.struct({c: both[c] for c in column_names("events")[:-2]})
        .cast("json")
        .cast("string"),
        reason_codes=ibis.array([ibis.literal("conflicting_event_id")]),
        reasons=ibis.array([message]),
    )


def new_events(wh: Warehouse, valid: ir.Table, *, repeats: bool) -> ir.Table:
    """Valid rows whose event_id is neither earlier in this load nor already stored."""
    first = valid
    if repeats:
        first = valid.mutate(
            _rank=ibis.row_number().over(group_by="event_id", order_by=[SRC, LINE])
        ).filter(ibis._["_rank"] == 0)
    existing = wh.engine_table("events").select("event_id")
    return first.anti_join(existing, "event_id").select(*column_names("events")[:-2])


_USER_VALUES = [c for c in column_names("users") if c not in ("ingested_at", "load_id")]


def write_users(
    wh: Warehouse, writer: Writer, valid: ir.Table, stamp: Mapping[str, ir.Value]
) -> tuple[int, int]:
    """Insert new users, replace changed ones; the last row of a user in the load wins."""
    last = (
        valid.mutate(
            _rank=ibis.row_number().over(
                group_by="user_id", order_by=[ibis.desc(SRC), ibis.desc(LINE)]
            )
        )
        .filter(ibis._["_rank"] == 0)
        .select(*_USER_VALUES)
    )
    current = wh.engine_table("users")
    current = current.select("user_id", _fp=fingerprint([current[c] for c in _USER_VALUES]))
    same = last.mutate(_fp=fingerprint([last[c] for c in _USER_VALUES])).semi_join(
        current, ["user_id", "_fp"]
    )  # identical rows: nothing to do
    changed_or_new = last.anti_join(same, "user_id")
    updated = int(changed_or_new.semi_join(current, "user_id").count().to_pyarrow().as_py())
    n = int(changed_or_new.count().to_pyarrow().as_py())
    if n:
        writer.upsert("users", changed_or_new.mutate(**stamp), key=["user_id"])
    return n - updated, updated


def event_links(valid: ir.Table) -> ir.Table:
    linked = valid.filter(valid.user_id.notnull() & valid.anonymous_id.notnull())
    return (
        linked.group_by(["user_id", "anonymous_id"])
        .aggregate(first_seen=linked.ts.min())
        .select(
            alias_type_a=ibis.literal("user_id"),
            alias_a=ibis._.user_id,
            alias_type_b=ibis.literal("anonymous_id"),
            alias_b=ibis._.anonymous_id,
            first_seen=ibis._.first_seen,
            source=ibis.literal("events"),
        )
    )


def user_links(valid: ir.Table, *, now: datetime) -> ir.Table:
    """Links from a user to each of its aliases; first seen at signup, else ``now`` (the
    load's time)."""
    parts = []
    for col in ("anonymous_id", "device_id", "email_hash", "phone_hash", "loyalty_card"):
        if col in valid.columns:
            rows = valid.filter(valid[col].notnull())
            parts.append(
                rows.select(
                    alias_type_a=ibis.literal("user_id"),
                    alias_a=rows.user_id,
                    alias_type_b=ibis.literal(col),
                    alias_b=rows[col],
                    first_seen=rows.signup_ts.fill_null(ibis.literal(now, "timestamp('UTC', 6)")),
                    source=ibis.literal("users"),
                )
            )
    if not parts:
        return valid.limit(0).select(
            alias_type_a=ibis.literal("user_id"),
            alias_a=valid.user_id,
            alias_type_b=ibis.literal("user_id"),
            alias_b=valid.user_id,
            first_seen=valid.signup_ts,
            source=ibis.literal("users"),
        )
    return parts[0] if len(parts) == 1 else ibis.union(*parts)
