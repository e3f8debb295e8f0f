"""Loading files into the warehouse: read, map, validate, deduplicate, quarantine, commit.

One call is one load: every file of it commits together or not at all. The counts always
add up: ``rows_read = accepted + updated + duplicates + quarantined``.

A load in which some input had no acceptable row still commits — its rejected rows go to
the quarantine, where the user finds out why — and then raises :class:`NothingLoaded`
naming the main reason and its fix (docs/data-model.md, "Quarantine and loads").
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from liucun.core import (
    Clock,
    ConfigError,
    Hint,
    InvalidInput,
    RejectRateExceeded,
    Settings,
    SimulatedClock,
    SystemClock,
)
from liucun.ingest._columns import looks_headerless, missing_column_error, plan_columns
from liucun.ingest._currencies import ISO_4217
from liucun.ingest._dedupe import (
    SRC,
    UserWrite,
    event_conflicts,
    event_links,
    new_events,
    user_links,
    write_users,
)
from liucun.ingest._links import update_identities
from liucun.ingest._nothing import nothing_loaded
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
from liucun.schema import STANDARD_EVENT_TYPES, column_names, contact_kind
from liucun.warehouse import LINE, EngineError, Warehouse, Writer, describe_read_error

log = logging.getLogger("liucun.ingest")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IngestOptions:
    """Options of one load; :meth:`from_settings` fills them from a workspace's settings.

    ``hash_key`` is the workspace secret (``ws.hash_key``): contact data (e-mail, phone)
    is stored only as its keyed hash, so a load of an input that holds any needs it.
    ``clock`` (``ws.clock``) says when the load happens; ``now`` fixes that instant
    instead. ``default_currency`` fills the currency of rows that have revenue but none.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    event_type: str | None = None
    timestamp_format: str | None = None
    source_timezone: str = "UTC"
    future_tolerance_hours: float = 24.0
    custom_event_types: tuple[str, ...] = ()
    allow_new_event_types: bool = False
    default_currency: str | None = None
    max_reject_rate: float = 1.0
    max_order_value: float = 1e9
    now: datetime | None = None
    clock: Clock | None = None
    hash_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.default_currency is not None:
            code = self.default_currency.strip().upper()
            if code not in ISO_4217:
                raise ConfigError(
                    f"the default currency {self.default_currency!r} is not an ISO 4217 code; "
                    "use three letters such as CNY, USD or EUR",
                    hint=Hint(option="currency", example="CNY", setting="ingest.currency"),
                )
            object.__setattr__(self, "default_currency", code)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IngestOptions:
        """Options from ``settings``; ``overrides`` that are not None win."""
        ing = settings.ingest
        given = {k: v for k, v in overrides.items() if v is not None}
        if "mapping" in given:
            given["mapping"] = {**settings.mapping, **given["mapping"]}  # type: ignore[dict-item]
        base = {
            "mapping": dict(settings.mapping),
            "timestamp_format": ing.timestamp_format,
            "source_timezone": ing.source_timezone,
            "future_tolerance_hours": ing.future_tolerance_hours,
            "custom_event_types": tuple(ing.custom_event_types),
            "default_currency": ing.currency,
            "max_reject_rate": ing.max_reject_rate,
            "max_order_value": ing.max_order_value,
        }
        return cls(**{**base, **given})  # type: ignore[arg-type]

    def load_clock(self) -> Clock:
        """The clock of the load: ``clock``, else one stopped at ``now``, else the system's."""
        if self.clock is not None:
            return self.clock
        return SimulatedClock(self.now) if self.now is not None else SystemClock()

    def rule_options(self, now: datetime) -> RuleOptions:
        return RuleOptions(
            now=now,
            future_tolerance=timedelta(hours=self.future_tolerance_hours),
            timestamp_format=self.timestamp_format,
            source_timezone=self.source_timezone,
            event_type=self.event_type,
            # event types are compared lower-cased, as ingest stores them
            custom_event_types=tuple(t.strip().lower() for t in self.custom_event_types),
            allow_new_event_types=self.allow_new_event_types,
            default_currency=self.default_currency,
            max_order_value=self.max_order_value,
            hash_key=self.hash_key,
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
    #: of the duplicates: rows that repeat an earlier row of this same load exactly
    repeated: int = 0
    #: of the duplicates: users rows replaced by a different, later row of the same user in
    #: this load (``notes`` says which user, which columns and which row was kept)
    superseded: int = 0
    #: sentences about the load that are not errors (e.g. a changed row within a file)
    notes: tuple[str, ...] = ()
    #: accepted event types that were neither standard nor declared (only with
    #: ``allow_new_event_types``); :func:`declare_event_types` records them
    new_event_types: tuple[str, ...] = ()

    @property
    def already_loaded(self) -> int:
        """Duplicates of rows the warehouse held before this load."""
        return self.duplicates - self.repeated - self.superseded

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


@dataclass
class _Load:
    """One load in progress: its id, time, target and the engine tables it made."""

    wh: Warehouse
    target: str
    sources: list[Source]
    options: IngestOptions
    step: Progress
    now: datetime
    load_id: str
    names: list[str] = field(default_factory=list)

    def view(self, name: str) -> str:
        table = f"_{name}_{self.load_id}".replace("-", "_")
        self.names.append(table)
        return table


@dataclass
class _Input:
    """One source after the rules: its checked rows and the rows it had rejected."""

    index: int
    source: Source
    rows: int
    rejected: list[ir.Table] = field(default_factory=list)
    n_rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def _ingest(
    wh: Warehouse,
    target: str,
    sources: list[Source],
    options: IngestOptions,
    on_step: Progress | None,
) -> IngestResult:
    """Check every source, find conflicts, commit; then say if an input gave nothing."""
    started = time.perf_counter()
    clock = options.load_clock()
    now = clock.now().astimezone(UTC)
    load = _Load(
        wh,
        target,
        sources,
        options,
        on_step or (lambda _msg: None),
        now,
        f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
    )
    try:
        inputs, checked = _check_sources(load)
        valid = checked.filter(checked[OK])
        conflicts, repeats, clash = (
            _event_conflicts(load, valid, inputs) if target == "events" else (0, False, None)
        )
        load.step("committing")
        with wh.transaction() as writer:
            result = _commit(load, writer, valid, inputs, (conflicts, repeats, clash), clock)
            result = replace(result, seconds=time.perf_counter() - started)
            _check_reject_rate(result, options.max_reject_rate)
    finally:
        for name in reversed(load.names):
            wh.forget(name)
    _log_load(result)
    _check_each_input_gave_rows(load, inputs, result)
    return result


def _check_sources(load: _Load) -> tuple[list[_Input], ir.Table]:
    """Read each source, map its columns, apply the rules and keep its rejected rows."""
    inputs: list[_Input] = []
    parts: list[ir.Table] = []
    for i, src in enumerate(load.sources):
        load.step(f"reading {src.path.name}")
        sniff(src)
        view = load.view(f"in_{i}")
        raw = _read(load.wh, src, view)
        rules = _apply_rules(raw, load.target, load.options, load.now, source=str(src.path))
        keep: dict[str, ir.Value] = {SRC: ibis.literal(i)}
        if load.target == "users":
            keep.update(identity_values(rules.table, rules.hash_key))
        try:
            chk = load.wh.materialize(checked_table(rules, keep), name=load.view(f"chk_{i}"))
        except EngineError as exc:
            raise InvalidInput(describe_read_error(exc, src.path, src.format)) from None
        parts.append(chk)
        counts = chk.aggregate(n=chk.count(), bad=(~chk[OK]).sum()).to_pyarrow().to_pylist()[0]
        one = _Input(i, src, rows=int(counts["n"]), n_rejected=int(counts["bad"] or 0))
        if one.n_rejected:
            load.step(f"collecting rejected rows of {src.path.name}")
            one.rejected.append(
                load.wh.materialize(rejected_rows(rules), name=load.view(f"rej_{i}"))
            )
        inputs.append(one)
        load.wh.forget(view)  # the file's copy is no longer needed: free its memory now
    checked = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return inputs, checked


def _event_conflicts(
    load: _Load, valid: ir.Table, inputs: list[_Input]
) -> tuple[int, bool, ir.Table | None]:
    """Reject valid events whose event_id another event already uses; returns how many,
    whether an event_id repeats within this load, and the rejected rows."""
    n_valid = int(valid.count().to_pyarrow().as_py())
    repeats = int(valid.event_id.nunique().to_pyarrow().as_py()) < n_valid
    clash = event_conflicts(load.wh, valid, repeats=repeats)
    if clash is None:
        return 0, repeats, None
    clash = load.wh.materialize(clash, name=load.view("clash"))
    per_source = clash.group_by(SRC).aggregate(n=clash.count()).to_pyarrow().to_pylist()
    for row in per_source:
        one = inputs[int(row[SRC])]
        one.rejected.append(clash.filter(clash[SRC] == one.index).drop(SRC))
        one.n_rejected += int(row["n"])
    return sum(int(row["n"]) for row in per_source), repeats, clash


def _new_event_types(valid: ir.Table, options: IngestOptions) -> tuple[str, ...]:
    """Event types of the accepted rows that are neither standard nor declared."""
    if not options.allow_new_event_types:
        return ()
    known = {*STANDARD_EVENT_TYPES, *(t.strip().lower() for t in options.custom_event_types)}
    types = valid.select("event_type").distinct().to_pyarrow().column(0).to_pylist()
    return tuple(sorted(t for t in types if t is not None and t not in known))


def _repeated_events(valid: ir.Table, clash: ir.Table | None) -> int:
    """Valid rows (conflicts aside) whose event_id an earlier row of this load has."""
    kept = valid
    if clash is not None:
        kept = valid.anti_join(clash.select(SRC, **{LINE: clash.line}), [SRC, LINE])
    counts = kept.aggregate(n=kept.count(), ids=kept.event_id.nunique())
    row = counts.to_pyarrow().to_pylist()[0]
    return int(row["n"]) - int(row["ids"])


def _change_notes(load: _Load, done: UserWrite) -> tuple[str, ...]:
    """One sentence per users row replaced by a different row of the same user."""
    names = [s.path.name for s in load.sources]
    notes = []
    for ch in done.changes:
        where = names[ch["src"]]
        kept_where = "the same file" if ch["kept_src"] == ch["src"] else names[ch["kept_src"]]
        diffs = ", ".join(
            f"{col} {_shown(old)} → {_shown(new)}" for col, (old, new) in ch["differ"].items()
        )
        notes.append(
            f"user {ch['user_id']!r} appears twice with different values: line "
            f"{ch['line']} of {where} differs from line {ch['kept_line']} of {kept_where} in "
            f"{diffs}; line {ch['kept_line']} was kept (the last row of a user in a load "
            "wins; put the row you want last, or fix the other)"
        )
    more = done.superseded - len(done.changes)
    if more > 0:
        notes.append(f"… and {more:,} more users rows replaced by a different later row")
    return tuple(notes)


def _shown(value: object) -> str:
    if value is None:
        return "(empty)"
    text = str(value)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _commit(
    load: _Load,
    writer: Writer,
    valid: ir.Table,
    inputs: list[_Input],
    conflicts_found: tuple[int, bool, ir.Table | None],
    clock: Clock,
) -> IngestResult:
    """Write the accepted rows, the quarantine, the identities and the ``loads`` row."""
    conflicts, repeats, clash = conflicts_found
    rows_read = sum(one.rows for one in inputs)
    n_valid = rows_read - sum(one.n_rejected for one in inputs) + conflicts
    stamp = {"ingested_at": ibis.literal(load.now), "load_id": ibis.literal(load.load_id)}
    repeated, superseded, notes, new_types = 0, 0, (), ()
    if load.target == "events":
        new = new_events(load.wh, valid, repeats=repeats).mutate(**stamp)
        accepted, updated = writer.append("events", new), 0
        links = event_links(valid)
        repeated = _repeated_events(valid, clash) if repeats else 0
        new_types = _new_event_types(valid, load.options)
    else:
        done = write_users(load.wh, writer, valid, stamp)
        accepted, updated = done.inserted, done.updated
        repeated, superseded, notes = done.repeated, done.superseded, _change_notes(load, done)
        links = user_links(valid, now=load.now)
    quarantined, by_reason = _write_quarantine(load, writer, inputs)
    n_links, merges = update_identities(
        load.wh, writer, [links], now=load.now, load_id=load.load_id
    )
    result = IngestResult(
        load_id=load.load_id,
        target=load.target,
        sources=tuple(str(s.path) for s in load.sources),
        rows_read=rows_read,
        accepted=accepted,
        updated=updated,
        duplicates=n_valid - accepted - updated - conflicts,
        quarantined=quarantined,
        by_reason=dict(sorted(by_reason.items())),
        identity_links=n_links,
        identity_merges=merges,
        repeated=repeated,
        superseded=superseded,
        notes=notes,
        new_event_types=new_types,
    )
    writer.append("loads", _load_row(result, started_at=load.now, finished_at=clock.now()))
    return result


def _write_quarantine(
    load: _Load, writer: Writer, inputs: list[_Input]
) -> tuple[int, Counter[str]]:
    """Store every rejected row (contact data already hashed); count them by reason."""
    quarantined, by_reason = 0, Counter[str]()
    for one in inputs:
        for rej in one.rejected:
            quarantined += int(rej.count().to_pyarrow().as_py())
            one.reasons.update(_reason_counts(rej))
            rows = rej.mutate(
                load_id=ibis.literal(load.load_id),
                target=ibis.literal(load.target),
                source=ibis.literal(str(one.source.path)),
                quarantined_at=ibis.literal(load.now),
            )
            # a row rejected by an earlier load of the same file is not stored twice
            stored = load.wh.engine_table("quarantine")
            writer.append("quarantine", rows.anti_join(stored, ["target", "source", "line", "raw"]))
        by_reason.update(one.reasons)
    return quarantined, by_reason


def _load_row(result: IngestResult, *, started_at: datetime, finished_at: datetime) -> ir.Table:
    return ibis.memtable(
        {
            "load_id": [result.load_id],
            "target": [result.target],
            "sources": [json.dumps(list(result.sources))],
            "rows_read": [result.rows_read],
            "accepted": [result.accepted],
            "updated": [result.updated],
            "duplicates": [result.duplicates],
            "quarantined": [result.quarantined],
            "started_at": [started_at],
            "finished_at": [finished_at.astimezone(UTC)],
        }
    )


def _check_reject_rate(result: IngestResult, limit: float) -> None:
    """Refuse the whole load (it rolls back) when too large a share was rejected."""
    if result.reject_rate <= limit:
        return
    top = ", ".join(
        f"{code} {n:,}" for code, n in sorted(result.by_reason.items(), key=lambda kv: -kv[1])[:3]
    )
    raise RejectRateExceeded(
        f"{result.quarantined:,} of {result.rows_read:,} rows ({result.reject_rate:.1%}) "
        f"were rejected (most: {top}), above the maximum reject rate {limit:.1%}; nothing "
        "was loaded. Fix the input or raise the limit",
        hint=Hint(option="max_reject_rate", example="1.0", setting="ingest.max_reject_rate"),
    )


def _check_each_input_gave_rows(load: _Load, inputs: list[_Input], result: IngestResult) -> None:
    """Raise :class:`NothingLoaded` for the first input of which no row was accepted.

    The load has committed: the error's ``result`` is its :class:`IngestResult`.
    """
    for one in inputs:
        if one.rows == 0 or one.n_rejected >= one.rows:
            error = nothing_loaded(one.source.path.name, one.rows, one.reasons, load.load_id)
            error.result = result  # type: ignore[attr-defined]
            raise error


def _log_load(result: IngestResult) -> None:
    """One line per load, counts only: never a value of the data."""
    log.info(
        "load %s into %s: %d file(s), %d rows read, %d accepted, %d updated, %d duplicates, "
        "%d quarantined (%s) in %.1f s; of the duplicates %d repeated within the load and "
        "%d superseded by a later row",
        result.load_id,
        result.target,
        len(result.sources),
        result.rows_read,
        result.accepted,
        result.updated,
        result.duplicates,
        result.quarantined,
        ", ".join(f"{code} {n}" for code, n in result.by_reason.items()) or "none",
        result.seconds,
        result.repeated,
        result.superseded,
    )


def _read(wh: Warehouse, src: Source, view: str) -> ir.Table:
    if src.data is not None:
        return wh.read_arrow(src.data, name=view)
    try:
        return wh.read_file(src.path, src.format, name=view)
    except EngineError as exc:
        raise InvalidInput(describe_read_error(exc, src.path, src.format)) from None


def _apply_rules(
    raw: ir.Table, target: str, options: IngestOptions, now: datetime, *, source: str
) -> RuleSet:
    """Give the input's columns their canonical names and build the rules of ``target``."""
    canonical = column_names(target)
    inputs = [c for c in raw.columns if c != LINE]
    plan = plan_columns(inputs, options.mapping, canonical, source=source)
    _refuse_contact_as_canonical(plan, source=source)
    table = raw.rename({new: old for old, new in plan.items() if new != old})
    _check_required(table, target, inputs, options, source=source)
    opts = options.rule_options(now)
    if target == "events":
        return event_rules(table, opts, source=source)
    return user_rules(table, opts, source=source)


def _refuse_contact_as_canonical(plan: Mapping[str, str], *, source: str) -> None:
    """Contact data cannot become a canonical column, where it would be stored in clear."""
    for column, canonical in plan.items():
        if column != canonical and contact_kind(column) is not None:
            raise ConfigError(
                f"{source}: column {column!r} holds contact data, which liucun stores only as "
                f"a keyed hash; it cannot be mapped onto {canonical!r}",
                hint=Hint(option="mapping", setting="mapping"),
            )


def _check_required(
    table: ir.Table, target: str, inputs: list[str], options: IngestOptions, *, source: str
) -> None:
    """Refuse an input that lacks a required column (or has no header at all)."""
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
    if not missing:
        return
    if looks_headerless(inputs):
        raise InvalidInput(
            f"{source}: the first line ({', '.join(inputs[:4])} …) looks like data, not "
            "column names; add a header line naming the columns (see docs/data-model.md)"
        )
    hint = Hint(option="event_type", example="order") if missing[0] == "event_type" else None
    raise missing_column_error(missing[0], inputs, source=source, hint=hint)


def _reason_counts(rej: ir.Table) -> dict[str, int]:
    codes = rej.select(code=rej.reason_codes.unnest())
    out = codes.group_by("code").aggregate(n=codes.count()).to_pyarrow().to_pylist()
    return {row["code"]: int(row["n"]) for row in out}
