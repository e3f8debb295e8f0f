"""Loading files into the warehouse: read, map, validate, deduplicate, quarantine, commit.

One call is one load: every file of it commits together or not at all. The counts always
add up: ``rows_read = accepted + updated + duplicates + quarantined``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from liucun.core import InvalidInput, RejectRateExceeded, Settings
from liucun.ingest._columns import looks_headerless, missing_column_error, plan_columns
from liucun.ingest._links import update_identities
from liucun.ingest._rules import (
    OK,
    RuleOptions,
    RuleSet,
    checked_table,
    event_rules,
    fingerprint,
    identity_values,
    rejected_rows,
    user_rules,
)
from liucun.ingest._sources import Source, discover, sniff
from liucun.schema import column_names
from liucun.warehouse import LINE, Warehouse, Writer

Progress = Callable[[str], None]
_SRC = "_src"


@dataclass(frozen=True)
class IngestOptions:
    """Options of one load; :meth:`from_settings` fills them from a workspace's settings."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    event_type: str | None = None
    timestamp_format: str | None = None
    source_timezone: str = "UTC"
    future_tolerance_hours: float = 24.0
    custom_event_types: tuple[str, ...] = ()
    default_currency: str | None = None
    max_reject_rate: float = 1.0
    now: datetime | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IngestOptions:
        ing = settings.ingest
        base = cls(
            mapping=dict(settings.mapping),
            timestamp_format=ing.timestamp_format,
            source_timezone=ing.source_timezone,
            future_tolerance_hours=ing.future_tolerance_hours,
            custom_event_types=tuple(ing.custom_event_types),
            max_reject_rate=ing.max_reject_rate,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "mapping" in given:
            given["mapping"] = {**base.mapping, **given["mapping"]}  # type: ignore[dict-item]
        return replace(base, **given)  # type: ignore[arg-type]

    def rule_options(self, now: datetime) -> RuleOptions:
        return RuleOptions(
            now=now,
            future_tolerance=timedelta(hours=self.future_tolerance_hours),
            timestamp_format=self.timestamp_format,
            source_timezone=self.source_timezone,
            event_type=self.event_type,
            custom_event_types=self.custom_event_types,
            default_currency=self.default_currency,
        )


@dataclass(frozen=True)
class IngestResult:
    """What one load did."""

    load_id: str
    target: str
    sources: tuple[str, ...]
    rows_read: int
    accepted: int
    updated: int
    duplicates: int
    quarantined: int
    by_reason: dict[str, int]
    identity_links: int = 0
    identity_merges: int = 0
    seconds: float = 0.0

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.rows_read if self.rows_read else 0.0


def ingest_events(
    warehouse: Warehouse,
    paths: Sequence[str | Path],
    options: IngestOptions | None = None,
    *,
    on_step: Progress | None = None,
) -> IngestResult:
    """Load event files (CSV, TSV, Parquet, JSON Lines, gzip'd, globs, directories)."""
    return _ingest(warehouse, "events", discover(list(paths)), options or IngestOptions(), on_step)


def ingest_users(
    warehouse: Warehouse,
    paths: Sequence[str | Path],
    options: IngestOptions | None = None,
    *,
    on_step: Progress | None = None,
) -> IngestResult:
    """Load user files; a changed user row replaces the stored one (counted as updated)."""
    return _ingest(warehouse, "users", discover(list(paths)), options or IngestOptions(), on_step)


def ingest_tables(
    warehouse: Warehouse,
    *,
    users: pa.Table | None = None,
    events: pa.Table | None = None,
    source: str = "memory",
    options: IngestOptions | None = None,
    on_step: Progress | None = None,
) -> list[IngestResult]:
    """Load in-memory Arrow tables (users first, then events) through the same checks."""
    opts = options or IngestOptions()
    out = []
    if users is not None:
        out.append(_ingest(warehouse, "users", [Source.from_arrow(users, source)], opts, on_step))
    if events is not None:
        out.append(_ingest(warehouse, "events", [Source.from_arrow(events, source)], opts, on_step))
    return out


def _ingest(
    wh: Warehouse,
    target: str,
    sources: list[Source],
    options: IngestOptions,
    on_step: Progress | None,
) -> IngestResult:
    started = time.perf_counter()
    now = (options.now or datetime.now(UTC)).astimezone(UTC)
    load_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    step = on_step or (lambda _msg: None)
    opts = options.rule_options(now)
    names: list[str] = []
    try:
        checked_parts: list[ir.Table] = []
        rejected: list[tuple[Source, ir.Table]] = []
        links: list[ir.Table] = []
        for i, src in enumerate(sources):
            step(f"reading {src.path.name}")
            sniff(src)
            view = f"_in_{load_id}_{i}".replace("-", "_")
            names.append(view)
            raw = _read(wh, src, view)
            rules = _apply_rules(raw, target, options, opts, source=str(src.path))
            keep = {_SRC: ibis.literal(i)}
            if target == "users":
                keep.update(identity_values(rules.table))
            try:
                chk = wh.materialize(checked_table(rules, keep), name=f"{view}_chk")
            except duckdb.Error as exc:
                raise InvalidInput(_duckdb_message(exc, src)) from None
            names.append(f"{view}_chk")
            checked_parts.append(chk)
            if int(chk.filter(~chk[OK]).count().to_pyarrow().as_py()) > 0:
                step(f"collecting rejected rows of {src.path.name}")
                rej = wh.materialize(rejected_rows(rules), name=f"{view}_rej")
                names.append(f"{view}_rej")
                rejected.append((src, rej))
            wh.forget(view)  # the file's copy is no longer needed: free its memory now
        checked = checked_parts[0] if len(checked_parts) == 1 else ibis.union(*checked_parts)
        rows_read = int(checked.count().to_pyarrow().as_py())
        valid = checked.filter(checked[OK])
        n_valid = int(valid.count().to_pyarrow().as_py())
        stamp = {"ingested_at": ibis.literal(now), "load_id": ibis.literal(load_id)}
        conflicts = 0
        if target == "events":
            repeats = int(valid.event_id.nunique().to_pyarrow().as_py()) < n_valid
            clash = _event_conflicts(wh, valid, repeats=repeats)
            if clash is not None:
                clash = wh.materialize(clash, name=f"_clash_{load_id}".replace("-", "_"))
                names.append(clash.get_name())
                conflicts = int(clash.count().to_pyarrow().as_py())
                for j, src in enumerate(sources):
                    mine = clash.filter(clash[_SRC] == j).drop(_SRC)
                    rejected.append((src, mine))
        step("committing")
        with wh.transaction() as writer:
            if target == "events":
                new = _new_events(wh, valid, repeats=repeats).mutate(**stamp)
                accepted, updated = writer.append("events", new), 0
                links.append(_event_links(valid))
            else:
                accepted, updated = _write_users(wh, writer, valid, stamp)
                links.append(_user_links(valid))
            quarantined, by_reason = 0, dict[str, int]()
            for src, rej in rejected:
                quarantined += int(rej.count().to_pyarrow().as_py())
                for code, n in _reason_counts(rej).items():
                    by_reason[code] = by_reason.get(code, 0) + n
                rows = rej.mutate(
                    load_id=ibis.literal(load_id),
                    target=ibis.literal(target),
                    source=ibis.literal(str(src.path)),
                    quarantined_at=ibis.literal(now),
                )
                # a row rejected by an earlier load of the same file is not stored twice
                writer.append(
                    "quarantine",
                    rows.anti_join(
                        wh.engine_table("quarantine"), ["target", "source", "line", "raw"]
                    ),
                )
            n_links, merges = update_identities(wh, writer, links, now=now, load_id=load_id)
            duplicates = n_valid - accepted - updated - conflicts
            writer.append(
                "loads",
                ibis.memtable(
                    {
                        "load_id": [load_id],
                        "target": [target],
                        "sources": [json.dumps([str(s.path) for s in sources])],
                        "rows_read": [rows_read],
                        "accepted": [accepted],
                        "updated": [updated],
                        "duplicates": [duplicates],
                        "quarantined": [quarantined],
                        "started_at": [now],
                        "finished_at": [datetime.now(UTC)],
                    }
                ),
            )
            result = IngestResult(
                load_id=load_id,
                target=target,
                sources=tuple(str(s.path) for s in sources),
                rows_read=rows_read,
                accepted=accepted,
                updated=updated,
                duplicates=duplicates,
                quarantined=quarantined,
                by_reason=dict(sorted(by_reason.items())),
                identity_links=n_links,
                identity_merges=merges,
                seconds=time.perf_counter() - started,
            )
            if result.reject_rate > options.max_reject_rate:
                top = ", ".join(
                    f"{code} {n:,}"
                    for code, n in sorted(by_reason.items(), key=lambda kv: -kv[1])[:3]
                )
                raise RejectRateExceeded(
                    f"{result.quarantined:,} of {rows_read:,} rows ({result.reject_rate:.1%}) "
                    f"were rejected (most: {top}), above --max-reject-rate "
                    f"{options.max_reject_rate:.1%}; nothing was loaded. Fix the input or "
                    "raise the limit"
                )
        return result
    finally:
        for name in reversed(names):
            wh.forget(name)


def _read(wh: Warehouse, src: Source, view: str) -> ir.Table:
    if src.data is not None:
        return wh.read_arrow(src.data, name=view)
    try:
        return wh.read_file(src.path, src.format, name=view)
    except duckdb.Error as exc:
        raise InvalidInput(_duckdb_message(exc, src)) from None


def _apply_rules(
    raw: ir.Table, target: str, options: IngestOptions, opts: RuleOptions, *, source: str
) -> RuleSet:
    canonical = column_names(target)
    inputs = [c for c in raw.columns if c != LINE]
    plan = plan_columns(inputs, options.mapping, canonical, source=source)
    table = raw.rename({new: old for old, new in plan.items() if new != old})
    required = ["ts"] + ([] if options.event_type else ["event_type"])
    if target == "users":
        required = ["user_id"]
    missing = [c for c in required if c not in table.columns]
    if (
        target == "events"
        and "user_id" not in table.columns
        and "anonymous_id" not in table.columns
    ):
        missing.insert(0, "user_id")
    if missing:
        if looks_headerless(inputs):
            raise InvalidInput(
                f"{source}: the first line ({', '.join(inputs[:4])} …) looks like data, not "
                "column names; add a header line naming the columns (see docs/data-model.md)"
            )
        hint = " (or pass --event-type TYPE)" if missing[0] == "event_type" else ""
        raise missing_column_error(missing[0], inputs, source=source, hint=hint)
    return event_rules(table, opts) if target == "events" else user_rules(table, opts)


_CONTENT = [c for c in column_names("events") if c not in ("event_id", "ingested_at", "load_id")]


def _event_conflicts(wh: Warehouse, valid: ir.Table, *, repeats: bool) -> ir.Table | None:
    """Rows whose event_id is already used, in this load or in the warehouse, by a different
    event. They are rejected (``conflicting_event_id``) rather than counted as duplicates."""
    stored = wh.engine_table("events")
    clashing_ids = valid.select("event_id").semi_join(stored.select("event_id"), "event_id")
    if not repeats and int(clashing_ids.count().to_pyarrow().as_py()) == 0:
        return None
    rows = valid.mutate(
        _fp=fingerprint([valid[c] for c in _CONTENT]),
        _rank=ibis.row_number().over(group_by="event_id", order_by=[_SRC, LINE]),
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
    cols = [_SRC, LINE, "_why", *column_names("events")[:-2]]
    in_load = in_load.anti_join(vs_stored, [_SRC, LINE])  # one reason per row is enough
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
        _SRC,
        line=both[LINE],
        raw=ibis.struct({c: both[c] for c in column_names("events")[:-2]})
        .cast("json")
        .cast("string"),
        reason_codes=ibis.array([ibis.literal("conflicting_event_id")]),
        reasons=ibis.array([message]),
    )


def _new_events(wh: Warehouse, valid: ir.Table, *, repeats: bool) -> ir.Table:
    """Valid rows whose event_id is neither earlier in this load nor already stored."""
    first = valid
    if repeats:
        first = valid.mutate(
            _rank=ibis.row_number().over(group_by="event_id", order_by=[_SRC, LINE])
        ).filter(ibis._["_rank"] == 0)
    existing = wh.engine_table("events").select("event_id")
    return first.anti_join(existing, "event_id").select(*column_names("events")[:-2])


_USER_VALUES = [c for c in column_names("users") if c not in ("ingested_at", "load_id")]


def _write_users(
    wh: Warehouse, writer: Writer, valid: ir.Table, stamp: Mapping[str, ir.Value]
) -> tuple[int, int]:
    """Insert new users, replace changed ones; the last row of a user in the load wins."""
    last = (
        valid.mutate(
            _rank=ibis.row_number().over(
                group_by="user_id", order_by=[ibis.desc(_SRC), ibis.desc(LINE)]
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


def _event_links(valid: ir.Table) -> ir.Table:
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


def _user_links(valid: ir.Table) -> ir.Table:
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
                    first_seen=rows.signup_ts.fill_null(ibis.now().cast("timestamp('UTC', 6)")),
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


def _reason_counts(rej: ir.Table) -> dict[str, int]:
    codes = rej.select(code=rej.reason_codes.unnest())
    out = codes.group_by("code").aggregate(n=codes.count()).to_pyarrow().to_pylist()
    return {row["code"]: int(row["n"]) for row in out}


_LINE_RE = re.compile(r"line:?\s*(\d+)", re.IGNORECASE)


def _duckdb_message(exc: Exception, src: Source) -> str:
    """One sentence for a file DuckDB could not read, naming the file, the line and the fix."""
    text = " ".join(str(exc).split())
    low = text.lower()
    m = _LINE_RE.search(text)
    line = int(m.group(1)) - (1 if src.format == "jsonl" else 0) if m else None
    at = f" line {line}" if line is not None else ""
    where = f"{src.path}{':' if at else ''}{at}"
    if "expected number of columns" in low or "too many columns" in low:
        return (
            f"{where}: a row has a different number of fields than the header; check quoting "
            "and delimiters (a value with a comma must be in double quotes)"
        )
    if "unterminated quote" in low:
        return f"{where}: a quoted value is never closed; check for a stray double quote"
    if "line size" in low and "exceed" in low:
        return f"{where}: a line is longer than 8 MB; this is not a usable line-based file"
    if "invalid state" in low:
        return (
            f"{src.path}: cannot be parsed as {src.format.upper()}; it may mix Windows (CRLF) "
            "and Unix (LF) line endings or hold stray quotes: re-export it, or convert the "
            "line endings (e.g. dos2unix)"
        )
    if "unicode" in low or "utf-8" in low or "utf8" in low:
        return f"{where}: not valid UTF-8 text; convert the file to UTF-8 (e.g. with iconv)"
    if src.format == "jsonl" and ("json" in low or "malformed" in low):
        return f"{where}: not valid JSON Lines (one JSON object per line); fix that line"
    first = text.split(" LINE ")[0][:240]
    return f"cannot read {where}: {first}"
