"""What a load adds: new events (deduplicated, conflicts rejected), users upserts, alias links."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class UserWrite:
    """What :func:`write_users` did. ``repeated`` rows of a user repeat its kept row
    exactly; ``superseded`` rows differ from it and were replaced by it (``changes`` holds
    the first of them: the user, both rows and the columns that differ)."""

    inserted: int
    updated: int
    repeated: int = 0
    superseded: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)


#: at most this many changed rows are described one by one
MAX_CHANGES_SHOWN = 20


def write_users(
    wh: Warehouse, writer: Writer, valid: ir.Table, stamp: Mapping[str, ir.Value]
) -> UserWrite:
    """Insert new users, replace changed ones; the last row of a user in the load wins.

    Earlier rows of a user in the same load are not lost silently: identical ones are
    counted as repeated, different ones as superseded with what changed.
    """
    ranked = valid.mutate(
        _fp=fingerprint([valid[c] for c in _USER_VALUES]),
        _rank=ibis.row_number().over(
            group_by="user_id", order_by=[ibis.desc(SRC), ibis.desc(LINE)]
        ),
    )
    kept = ranked.filter(ranked._rank == 0)
    last = kept.select(*_USER_VALUES)
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
    repeated, superseded, changes = _earlier_rows(ranked, kept)
    return UserWrite(n - updated, updated, repeated, superseded, changes)


def _earlier_rows(ranked: ir.Table, kept: ir.Table) -> tuple[int, int, list[dict[str, Any]]]:
    """Earlier rows of users that appear more than once in the load, against the kept row."""
    earlier = ranked.filter(ranked._rank > 0)
    pairs = earlier.join(kept.select("user_id", _kept_fp=kept._fp), "user_id").mutate(
        _same=lambda t: t._fp == t._kept_fp
    )
    counts = (
        pairs.aggregate(n=pairs.count(), same=pairs._same.cast("int64").sum())
        .to_pyarrow()
        .to_pylist()[0]
    )
    total, same = int(counts["n"] or 0), int(counts["same"] or 0)
    if total == same:
        return same, 0, []
    cols = [c for c in _USER_VALUES if c != "user_id"]
    diff = earlier.join(kept, "user_id", rname="{name}__kept").filter(
        lambda t: t._fp != t._fp__kept
    )
    first = diff.order_by([SRC, LINE]).limit(MAX_CHANGES_SHOWN)
    rows = (
        first.select(
            "user_id",
            SRC,
            LINE,
            kept_src=first[f"{SRC}__kept"],
            kept_line=first[f"{LINE}__kept"],
            **{f"old__{c}": first[c] for c in cols},
            **{f"new__{c}": first[f"{c}__kept"] for c in cols},
        )
        .to_pyarrow()
        .to_pylist()
    )
    changes = []
    for r in rows:
        differ = {
            c: (r[f"old__{c}"], r[f"new__{c}"]) for c in cols if r[f"old__{c}"] != r[f"new__{c}"]
        }
        changes.append(
            {
                "user_id": r["user_id"],
                "src": int(r[SRC]),
                "line": int(r[LINE]),
                "kept_src": int(r["kept_src"]),
                "kept_line": int(r["kept_line"]),
                "differ": differ,
            }
        )
    return same, total - same, changes


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
