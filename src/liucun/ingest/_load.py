"""Loading files into the warehouse: read, map, validate, deduplicate, quarantine, commit.

One call is one load: every file of it commits together or not at all. The counts always
add up: ``rows_read = accepted + updated + duplicates + quarantined``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from liucun.core import InvalidInput, RejectRateExceeded, Settings
from liucun.ingest._columns import looks_headerless, missing_column_error, plan_columns
from liucun.ingest._dedupe import (
    SRC,
    event_conflicts,
    event_links,
    new_events,
    user_links,
    write_users,
)
from liucun.ingest._links import update_identities
from liucun.ingest._rules import (
    OK,
    RuleOptions,
    RuleSet,
    checked_table,
    event_rules,
    identity_values,
    rejected_rows,
    user_rules,
)
from liucun.ingest._sources import Source, discover, sniff
from liucun.schema import column_names
from liucun.warehouse import LINE, EngineError, Warehouse, describe_read_error

Progress = Callable[[str], None]


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
            keep = {SRC: ibis.literal(i)}
            if target == "users":
                keep.update(identity_values(rules.table))
            try:
                chk = wh.materialize(checked_table(rules, keep), name=f"{view}_chk")
            except EngineError as exc:
                raise InvalidInput(describe_read_error(exc, src.path, src.format)) from None
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
            clash = event_conflicts(wh, valid, repeats=repeats)
            if clash is not None:
                clash = wh.materialize(clash, name=f"_clash_{load_id}".replace("-", "_"))
                names.append(clash.get_name())
                conflicts = int(clash.count().to_pyarrow().as_py())
                for j, src in enumerate(sources):
                    mine = clash.filter(clash[SRC] == j).drop(SRC)
                    rejected.append((src, mine))
        step("committing")
        with wh.transaction() as writer:
            if target == "events":
                new = new_events(wh, valid, repeats=repeats).mutate(**stamp)
                accepted, updated = writer.append("events", new), 0
                links.append(event_links(valid))
            else:
                accepted, updated = write_users(wh, writer, valid, stamp)
                links.append(user_links(valid))
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
    except EngineError as exc:
        raise InvalidInput(describe_read_error(exc, src.path, src.format)) from None


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


def _reason_counts(rej: ir.Table) -> dict[str, int]:
    codes = rej.select(code=rej.reason_codes.unnest())
    out = codes.group_by("code").aggregate(n=codes.count()).to_pyarrow().to_pylist()
    return {row["code"]: int(row["n"]) for row in out}
