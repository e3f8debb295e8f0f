"""The journey engine: enrol customers, walk them through the nodes, fire timers, count
goals (docs/decisions/0007-journeys.md, "Data flow" 2–4).

- :func:`enrol` turns trigger entries into ``journey_enrolments`` rows: the audience
  filter, the re-entry rule, the arm (``control`` with the journey's control share by the
  hashed assignment of :func:`liucun.experiments.assign`, experiment
  ``journey:<name>``), the exposure of each assignment, and the trigger's cursor, in one
  transaction. Re-enrolling the same entries adds nothing (unique (journey, customer,
  entry key)).
- :func:`advance_due` claims due enrolments (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  the write transaction's ``BEGIN IMMEDIATE`` on SQLite) in batches and walks each one
  node by node until a wait or the end. Every visit writes a ``journey_steps`` row with
  a unique key ``<enrolment>:<node>:<visit>``; the treatment arm's actions go to the
  outbox (:func:`liucun.journeys._outbox.enqueue`), the control arm's are ``withheld``.
- :func:`check_waits` wakes enrolments waiting for an event that arrived;
  :func:`check_goals` records conversions (and ends the enrolment when the goal exits).

Times: an enrolment is walked at its **logical time** — the ``wake_at`` it was due at
(the entry's time for a new one), not the moment a worker got round to it — so a wait of
4 days after a message sent at 10:00 ends at 10:00 four days later however late the tick.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.experiments import Experiment, assign
from liucun.experiments._hashing import as_unit_ids, buckets
from liucun.journeys import _spec as sp
from liucun.journeys._local_time import at_local, local_day, next_local_time, next_yearly
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.journeys._profiles import first_match, matching, needs_full, profiles, rows_by_user
from liucun.journeys._triggers import ENTRY_SCHEMA, Position, cursor_name, event_where
from liucun.state import (
    EXPOSURE_COLUMNS,
    BanditArm,
    Journey,
    JourneyCursor,
    JourneyEnrolment,
    JourneyStep,
    JourneyVersion,
    insert_exposures,
)

log = logging.getLogger("liucun.journeys")

#: Enrolment statuses the engine still walks.
LIVE = ("active", "waiting")
#: How long a claim lasts (a worker that died holding it lets others take it after).
LEASE = timedelta(minutes=5)
#: Most nodes one enrolment passes in one walk (a guard against a cycle without a wait).
MAX_HOPS = 50
_CHUNK = 900
_INSERT_CHUNK = 5_000
_CHANNEL = {
    "coupon": "coupon",
    "points": "points",
    "task": "task",
    "webhook": "webhook",
    "tag": "tag",
    "tier_upgrade": "tier",
}


# -- the journeys in force ----------------------------------------------------------------


@dataclass(frozen=True)
class ActiveJourney:
    """A journey new customers enter: its active version, definition and since when."""

    name: str
    version: int
    spec: sp.JourneySpec
    since: datetime


def active_journeys(ws: Any) -> list[tuple[int, sp.JourneySpec]]:
    """``(active version, spec)`` of every journey whose status is ``active``.

    Reads ``journeys`` / ``journey_versions`` directly (the definition column holds the
    canonical JSON of a :class:`JourneySpec`); :mod:`liucun.journeys._versions` owns the
    lifecycle that writes them.
    """
    return [(j.version, j.spec) for j in _active(ws)]


def _active(ws: Any) -> list[ActiveJourney]:
    with ws.state.read() as s:
        rows = s.execute(
            select(
                Journey.name, Journey.active_version, Journey.updated_at, JourneyVersion.definition
            )
            .join(
                JourneyVersion,
                and_(
                    JourneyVersion.journey == Journey.name,
                    JourneyVersion.version == Journey.active_version,
                ),
            )
            .where(Journey.status == "active")
            .order_by(Journey.name)
        ).all()
    return [
        ActiveJourney(name, int(version), _parse_spec(definition), as_utc(updated))
        for name, version, updated, definition in rows
    ]


_SPECS: dict[tuple[str, str], sp.JourneySpec] = {}


def _parse_spec(definition: str) -> sp.JourneySpec:
    digest = hashlib.sha256(definition.encode()).hexdigest()
    key = ("", digest)
    if key not in _SPECS:
        _SPECS[key] = sp.JourneySpec.model_validate_json(definition)
    return _SPECS[key]


def spec_versions(ws: Any, names: Iterable[str]) -> dict[tuple[str, int], sp.JourneySpec]:
    """Every stored version of the journeys ``names``, by (name, version)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    with ws.state.read() as s:
        rows = s.execute(
            select(JourneyVersion.journey, JourneyVersion.version, JourneyVersion.definition).where(
                JourneyVersion.journey.in_(wanted)
            )
        ).all()
    return {(j, int(v)): _parse_spec(d) for j, v, d in rows}


def control_share(ws: Any, spec: sp.JourneySpec) -> float:
    """The journey's control share; 0 only with ``allow_zero`` (else the workspace's
    ``[journeys] control_share``)."""
    share = float(spec.control.share)
    if share <= 0 and not spec.control.allow_zero:
        return float(ws.settings.journeys.control_share)
    return share


# -- exposures in the caller's transaction -----------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(ts: datetime) -> int:
    delta = as_utc(ts) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def exposure_id(experiment: str, unit_type: str, unit_id: str, ts: datetime) -> str:
    """The id :func:`liucun.experiments.log_exposures` gives the same exposure (md5 of
    experiment, unit type, unit id and the time in epoch microseconds), so logging it
    here and there adds one row."""
    text = "\x1f".join([experiment, unit_type, unit_id, str(_epoch_us(ts))])
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def log_assignments(
    s: Session, assignments: pa.Table, ts: Sequence[datetime], *, load_id: str
) -> int:
    """Log ``assignments`` (rows of :func:`liucun.experiments.assign`, null variants
    skipped) as exposures at ``ts`` inside session ``s``.

    The same rows :func:`liucun.experiments.log_exposures` writes (same ids), but in the
    caller's transaction: the engine logs an arm or a split in the transaction that
    enrols or walks the customer (on SQLite a second write transaction would wait for
    the first)."""
    if assignments.num_rows == 0:
        return 0
    cols = {name: assignments.column(name).to_pylist() for name in assignments.column_names}
    keep: dict[str, int] = {}
    for i, (variant, when) in enumerate(zip(cols["variant"], ts, strict=True)):
        if variant is None:
            continue
        eid = exposure_id(cols["experiment"][i], cols["unit_type"][i], cols["unit_id"][i], when)
        keep.setdefault(eid, i)
    if not keep:
        return 0
    idx = list(keep.values())
    table = pa.table(
        {
            "exposure_id": pa.array(list(keep), pa.string()),
            "experiment": pa.array([cols["experiment"][i] for i in idx], pa.string()),
            "layer": pa.array([cols["layer"][i] for i in idx], pa.string()),
            "unit_type": pa.array([cols["unit_type"][i] for i in idx], pa.string()),
            "unit_id": pa.array([cols["unit_id"][i] for i in idx], pa.string()),
            "variant": pa.array([cols["variant"][i] for i in idx], pa.string()),
            "probability": pa.array([cols["probability"][i] for i in idx], pa.float64()),
            "holdout": pa.array([bool(cols["holdout"][i]) for i in idx], pa.bool_()),
            "ts": pa.array([as_utc(ts[i]) for i in idx], pa.timestamp("us", tz="UTC")),
            "load_id": pa.array([load_id] * len(idx), pa.string()),
        }
    ).select(list(EXPOSURE_COLUMNS))
    return insert_exposures(s, table)


# -- enrolment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolResult:
    """What one :func:`enrol` call did."""

    journey: str
    entries: int
    audience_out: int
    reentry_out: int
    enrolled: int
    control: int


def _insert(s: Session, model: Any, rows: list[dict[str, Any]], conflict: list[str]) -> int:
    """Insert ``rows`` (chunked executemany through the driver, as the exposure log does),
    skipping those that clash on the unique ``conflict`` columns; returns how many were
    new. SQLAlchemy's per-row type processing tripled the time of a large enrolment."""
    if not rows:
        return 0
    connection = s.connection()
    dialect = connection.dialect
    make = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
    names = list(rows[0])
    stmt = make(model.__table__).on_conflict_do_nothing(index_elements=conflict)
    compiled = stmt.values({c: None for c in names}).compile(dialect=dialect)
    order = list(compiled.positiontup) if compiled.positiontup else None
    on_sqlite = dialect.name == "sqlite"

    seen: dict[datetime, Any] = {}

    def value(v: Any) -> Any:
        if not isinstance(v, datetime):
            return v
        out = seen.get(v)
        if out is None:  # SQLite keeps SQLAlchemy's text form of the naive UTC time
            u = as_utc(v)
            out = u.replace(tzinfo=None).isoformat(" ", "microseconds") if on_sqlite else u
            seen[v] = out
        return out

    if order is not None:  # SQLite: qmark placeholders take tuples
        params: list[Any] = [tuple(value(r[c]) for c in order) for r in rows]
    else:  # psycopg: named placeholders take mappings
        params = [{c: value(r[c]) for c in names} for r in rows]
    added = 0
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(params), _INSERT_CHUNK):
            cursor.executemany(compiled.string, params[start : start + _INSERT_CHUNK])
            added += max(cursor.rowcount, 0)
    finally:
        cursor.close()
    return added


def _entry_keys(spec: sp.JourneySpec, entries: pa.Table) -> list[str]:
    mode = spec.reentry.mode
    n = entries.num_rows
    if mode == "once":
        return ["once"] * n
    if mode == "once_per_key":
        return [str(k) for k in entries.column("key").to_pylist()]
    return [as_utc(t).date().isoformat() for t in entries.column("at").to_pylist()]


def _previous(
    s: Session, journey: str, users: list[str]
) -> dict[str, list[tuple[str, str, datetime | None]]]:
    """Each user's enrolments in ``journey``: (entry_key, status, ended_at)."""
    E = JourneyEnrolment
    out: dict[str, list[tuple[str, str, datetime | None]]] = defaultdict(list)
    cols = (E.user_id, E.entry_key, E.status, E.exited_at)
    if len(users) > 20 * _CHUNK:
        found = s.execute(select(*cols).where(E.journey == journey)).all()
    else:
        found = []
        for start in range(0, len(users), _CHUNK):
            chunk = users[start : start + _CHUNK]
            found.extend(
                s.execute(select(*cols).where(E.journey == journey, E.user_id.in_(chunk))).all()
            )
    for user, key, status, ended in found:
        out[user].append((key, status, ended))
    return out


def enrol(
    ws: Any,
    journey: str,
    version: int,
    spec: sp.JourneySpec,
    entries: pa.Table,
    *,
    now: datetime,
    position: Position | None = None,
    profile_cache: ProfileCache | None = None,
) -> EnrolResult:
    """Enrol ``entries`` (:data:`liucun.journeys._triggers.ENTRY_SCHEMA`) in ``journey``
    and store ``position`` as its trigger cursor, in one transaction."""
    entries = entries.select(ENTRY_SCHEMA.names).sort_by(
        [("at", "ascending"), ("user_id", "ascending")]
    )
    total = entries.num_rows
    audience_out = 0
    if total and spec.audience:
        cache = profile_cache or ProfileCache(ws, now)
        prof = cache.get(
            set(entries.column("user_id").to_pylist()), full=needs_full([spec.audience])
        )
        inside = matching(prof, spec.audience)
        keep = [u in inside for u in entries.column("user_id").to_pylist()]
        audience_out = total - sum(keep)
        entries = entries.filter(pa.array(keep, pa.bool_()))
    keys = _entry_keys(spec, entries)
    users = entries.column("user_id").to_pylist()
    ats = [as_utc(t) for t in entries.column("at").to_pylist()]
    contexts = entries.column("context").to_pylist()
    trigger_keys = entries.column("key").to_pylist()
    with ws.state.write() as s:
        prev = _previous(s, journey, sorted(set(users))) if users else {}
        chosen: list[int] = []
        seen: set[tuple[str, str]] = set()
        busy: dict[str, datetime | None] = {}
        gap = timedelta(days=spec.reentry.days or 0)
        for i, (user, key, at) in enumerate(zip(users, keys, ats, strict=True)):
            if (user, key) in seen or any(k == key for k, _, _ in prev.get(user, ())):
                continue
            if spec.reentry.mode == "after":
                history = prev.get(user, [])
                if any(st in LIVE for _, st, _ in history) or user in busy:
                    continue
                ends = [as_utc(e) for _, _, e in history if e is not None]
                if ends and at - max(ends) < gap:
                    continue
                busy[user] = at
            seen.add((user, key))
            chosen.append(i)
        reentry_out = len(users) - len(chosen)
        ids = [users[i] for i in chosen]
        control = 0
        rows: list[dict[str, Any]] = []
        if ids:
            share = control_share(ws, spec)
            exp = Experiment(
                f"journey:{journey}", variants=("control", "treatment"), weights=(share, 1 - share)
            )
            arms = assign(exp, ids)
            variants = arms.column("variant").to_pylist()
            control = sum(v == "control" for v in variants)
            log_assignments(s, arms, [ats[i] for i in chosen], load_id=f"journey:{journey}")
            for i, arm in zip(chosen, variants, strict=True):
                rows.append(
                    {
                        "journey": journey,
                        "version": version,
                        "user_id": users[i],
                        "entry_key": keys[i],
                        "arm": arm,
                        "node": spec.first,
                        "status": "active",
                        "wake_at": ats[i],
                        "waiting_for": None,
                        # the trigger's context is JSON already: no parse and re-dump
                        "context": '{"trigger": '
                        + (contexts[i] or "{}")
                        + ', "trigger_key": '
                        + json.dumps(trigger_keys[i])
                        + "}",
                        "entered_at": ats[i],
                        "updated_at": now,
                    }
                )
        enrolled = _insert(s, JourneyEnrolment, rows, ["journey", "user_id", "entry_key"])
        if position is not None:
            _store_cursor(s, cursor_name(journey), position.to_json(), now)
    return EnrolResult(journey, total, audience_out, reentry_out, enrolled, control)


def _store_cursor(s: Session, name: str, position: str, now: datetime) -> None:
    row = s.scalars(select(JourneyCursor).where(JourneyCursor.name == name)).first()
    if row is None:
        _insert(
            s,
            JourneyCursor,
            [{"name": name, "position": position, "updated_at": now}],
            ["name"],
        )
        s.execute(
            update(JourneyCursor)
            .where(JourneyCursor.name == name)
            .values(position=position, updated_at=now)
        )
    else:
        row.position = position
        row.updated_at = now


def read_cursor(ws: Any, name: str) -> str | None:
    with ws.state.read() as s:
        return s.scalar(select(JourneyCursor.position).where(JourneyCursor.name == name))


# -- profiles for a batch ----------------------------------------------------------------


class ProfileCache:
    """Profiles computed once per tick: the basic one (attributes, zone, scores) and,
    when a filter asks for stage or RFM, the full one.

    With ``shared`` (a dict a long-running caller keeps between ticks) and ``keep``, the
    basic profiles of every customer are computed once per ``keep`` and reused by the
    ticks in between (``journeys run`` refreshes them once per simulated day): a tick that
    walks ten customers then costs no warehouse query for their time zones. Customers
    that appeared meanwhile are read on their own.
    """

    def __init__(
        self,
        ws: Any,
        as_of: datetime,
        *,
        shared: dict[str, Any] | None = None,
        keep: timedelta | None = None,
    ) -> None:
        self.ws = ws
        self.as_of = as_of
        self._rows: dict[bool, dict[str, dict[str, Any]]] = {False: {}, True: {}}
        self._schema: dict[bool, pa.Schema | None] = {False: None, True: None}
        self._shared = shared
        self._keep = keep
        self._loaded = False
        self._full_all = False

    def _load_shared(self) -> None:
        self._loaded = True
        if self._shared is None or self._keep is None:
            return
        held = self._shared.get("basic_profiles")
        if held is None or not timedelta(0) <= self.as_of - held[0] < self._keep:
            table = profiles(self.ws, self.as_of, None, full=False)
            held = (self.as_of, rows_by_user(table), table.schema)
            self._shared["basic_profiles"] = held
        self._rows[False] = held[1]  # shared: customers read later join it for all ticks
        self._schema[False] = held[2]

    def get(self, users: set[str], *, full: bool = False) -> pa.Table:
        """The profiles of ``users`` as one table (the profile's column types kept, so a
        column that is null for every customer of the batch still compares)."""
        rows = self.rows(users, full=full)
        schema = self._schema[full]
        return pa.Table.from_pylist([rows[u] for u in sorted(users)], schema=schema)

    def rows(self, users: set[str], *, full: bool = False) -> dict[str, dict[str, Any]]:
        if not full and not self._loaded:
            self._load_shared()
        have = self._rows[full]
        missing = {u for u in users if u not in have}
        if missing and full and not self._full_all:
            # stage and RFM rank each customer among all: the full profile of a few costs
            # that of everyone, so the first ask of the tick reads everyone once
            self._full_all = True
            table = profiles(self.ws, self.as_of, None, full=True)
            self._schema[True] = table.schema
            have.update(rows_by_user(table))
            missing = {u for u in users if u not in have}
        if missing:
            table = profiles(self.ws, self.as_of, missing, full=full)
            known = self._schema[full]
            self._schema[full] = (
                table.schema if known is None else pa.unify_schemas([known, table.schema])
            )
            have.update(rows_by_user(table))
        return {u: have[u] for u in users}


# -- walking -----------------------------------------------------------------------------


@dataclass
class _State:
    e: JourneyEnrolment
    spec: sp.JourneySpec
    ctx: dict[str, Any]
    t: datetime

    def visit(self, node: str) -> int:
        visits = self.ctx.setdefault("visits", {})
        visits[node] = int(visits.get(node, 0)) + 1
        return visits[node]

    def current_visit(self, node: str) -> int:
        return int(self.ctx.get("visits", {}).get(node, 0))


@dataclass
class AdvanceResult:
    """What :func:`advance_due` did: enrolments walked, steps written by kind, outbox
    rows added, enrolments finished."""

    walked: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    outbox: int = 0
    finished: int = 0
    batches: int = 0

    def add(self, other: AdvanceResult) -> None:
        self.walked += other.walked
        self.outbox += other.outbox
        self.finished += other.finished
        self.batches += other.batches
        for k, v in other.steps.items():
            self.steps[k] = self.steps.get(k, 0) + v


class _Walk:
    """One batch of claimed enrolments walked in one transaction."""

    def __init__(self, ws: Any, s: Session, now: datetime, cache: ProfileCache) -> None:
        self.ws = ws
        self.s = s
        self.now = now
        self.cache = cache
        self.steps: list[dict[str, Any]] = []
        self.outbox: list[Outgoing] = []
        self.exposures: list[tuple[pa.Table, list[datetime]]] = []
        self.bandit_trials: dict[tuple[str, str, str], int] = defaultdict(int)
        self.finished = 0

    # -- bookkeeping --

    def step(
        self,
        st: _State,
        node: str,
        key: str,
        kind: str,
        *,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        self.steps.append(
            {
                "key": f"{st.e.id}:{key}",
                "enrolment_id": st.e.id,
                "journey": st.e.journey,
                "version": st.e.version,
                "node": node,
                "user_id": st.e.user_id,
                "kind": kind,
                "reason": reason,
                "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
                "at": at or st.t,
            }
        )

    def finish(self, st: _State, status: str, reason: str) -> None:
        st.e.status = status
        st.e.exit_reason = reason
        st.e.exited_at = st.t
        st.e.wake_at = None
        st.e.waiting_for = None
        self.finished += 1

    def profile(self, users: Iterable[str], *, full: bool = False) -> dict[str, dict[str, Any]]:
        return self.cache.rows(set(users), full=full)

    # -- the walk --

    def run(self, states: list[_State]) -> None:
        for st in states:
            if not st.ctx.get("started"):
                st.ctx["started"] = True
                self.step(st, st.e.node, f"{st.e.node}:0", "entered", at=st.t)
        pending = states
        for _ in range(MAX_HOPS):
            if not pending:
                break
            groups: dict[tuple[str, int, str], list[_State]] = defaultdict(list)
            for st in pending:
                groups[(st.e.journey, st.e.version, st.e.node)].append(st)
            pending = []
            for (_, _, node_id), group in groups.items():
                spec = group[0].spec
                try:
                    node = spec.node(node_id)
                except KeyError:
                    for st in group:
                        self.finish(st, "exited", "unknown_node")
                    continue
                pending.extend(self.node(node, group))
        for st in pending:  # still moving after MAX_HOPS: park it until the next tick
            st.e.wake_at = self.now + timedelta(seconds=1)
            log.warning(
                "enrolment %s of journey %s passed %d nodes without a wait; it continues "
                "at the next tick",
                st.e.id,
                st.e.journey,
                MAX_HOPS,
            )

    def move(self, group: Iterable[_State], target: str | None) -> list[_State]:
        out = []
        for st in group:
            if target is None:
                self.finish(st, "done", "end")
            else:
                st.e.node = target
                out.append(st)
        return out

    def node(self, node: Any, group: list[_State]) -> list[_State]:
        kind = node.type
        if kind == "exit":
            for st in group:
                v = st.visit(node.id)
                self.step(st, node.id, f"{node.id}:{v}", "exited", reason="exit")
                self.finish(st, "done", "exit")
            return []
        if kind == "wait":
            return self.wait(node, group)
        if kind == "wait_for":
            return self.wait_for(node, group)
        if kind == "branch":
            return self.branch(node, group)
        if kind == "split":
            return self.split(node, group)
        if kind == "adaptive_split":
            return self.adaptive(node, group)
        if kind in sp.ACTION_TYPES:
            return self.action(node, group)
        for st in group:  # pragma: no cover - the spec's node types are all handled
            self.finish(st, "exited", f"unknown_type:{kind}")
        return []

    def _woken(self, st: _State, node: str) -> bool:
        w = st.ctx.get("wait")
        return bool(w) and w.get("node") == node and w.get("visit") == st.current_visit(node)

    def wait(self, node: sp.WaitNode, group: list[_State]) -> list[_State]:
        out: list[_State] = []
        arriving = [st for st in group if not self._woken(st, node.id)]
        for st in group:
            if st not in arriving:
                st.ctx.pop("wait", None)
                out.append(st)
        if not arriving:
            return self.move(out, node.next)
        prof = (
            self.profile(st.e.user_id for st in arriving)
            if (node.until_time or node.until_property)
            else {}
        )
        for st in arriving:
            v = st.visit(node.id)
            until = self._until(node, st, prof.get(st.e.user_id, {}))
            if until is None or until <= st.t:
                self.step(st, node.id, f"{node.id}:{v}", "waited", reason="no_wait")
                out.append(st)
                continue
            st.ctx["wait"] = {"node": node.id, "visit": v, "until": until.isoformat()}
            st.e.wake_at = until
            st.e.status = "active"
            self.step(st, node.id, f"{node.id}:{v}", "waited", detail={"until": until})
        return self.move(out, node.next)

    def _until(self, node: sp.WaitNode, st: _State, prof: dict[str, Any]) -> datetime | None:
        tz = prof.get("timezone") or self.ws.settings.reporting_timezone
        if node.duration is not None:
            return st.t + sp.parse_duration(node.duration)
        if node.until_property is not None:
            at = node.until_time or "10:00"
            if node.until_property == "birthday":
                born = prof.get("birthday")
                if born is None:
                    return None
                today = local_day(st.t, tz)
                day = next_yearly(born.month, born.day, today)
                when = at_local(day, at, tz)
                if when <= st.t:
                    day = next_yearly(born.month, born.day, day + timedelta(days=1))
                    when = at_local(day, at, tz)
                return when
            end = _renewal(self.s, st.e.user_id)
            return None if end is None else at_local(local_day(end, tz), at, tz)
        if node.until_time is not None:
            return next_local_time(st.t, node.until_time, tz)
        return None  # pragma: no cover - the spec needs one of them

    def wait_for(self, node: sp.WaitForNode, group: list[_State]) -> list[_State]:
        on_event: list[_State] = []
        on_timeout: list[_State] = []
        for st in group:
            if self._woken(st, node.id):
                w = st.ctx.pop("wait")
                v = w["visit"]
                st.e.waiting_for = None
                st.e.status = "active"
                if w.get("arrived"):
                    self.step(
                        st,
                        node.id,
                        f"{node.id}:{v}:event",
                        "waited",
                        reason="event",
                        detail=w["arrived"],
                    )
                    on_event.append(st)
                else:
                    self.step(st, node.id, f"{node.id}:{v}:timeout", "timeout")
                    on_timeout.append(st)
                continue
            v = st.visit(node.id)
            until = st.t + sp.parse_duration(node.timeout)
            st.ctx["wait"] = {
                "node": node.id,
                "visit": v,
                "since": st.t.isoformat(),
                "until": until.isoformat(),
            }
            st.e.status = "waiting"
            st.e.waiting_for = node.event if node.event else "filter"
            st.e.wake_at = until
            self.step(
                st,
                node.id,
                f"{node.id}:{v}",
                "waited",
                detail={"for": node.event or node.filter, "until": until},
            )
        return self.move(on_event, node.on_event) + self.move(on_timeout, node.on_timeout)

    def branch(self, node: sp.BranchNode, group: list[_State]) -> list[_State]:
        texts = [b.when for b in node.branches]
        prof = self.cache.get({st.e.user_id for st in group}, full=needs_full(texts))
        hit = first_match(prof, texts)
        by_target: dict[str | None, list[_State]] = defaultdict(list)
        for st in group:
            v = st.visit(node.id)
            i = hit.get(st.e.user_id)
            target = node.otherwise if i is None else node.branches[i].next
            self.step(
                st,
                node.id,
                f"{node.id}:{v}",
                "branch",
                reason="otherwise" if i is None else f"branch_{i + 1}",
                detail={"next": target},
            )
            by_target[target].append(st)
        out: list[_State] = []
        for target, states in by_target.items():
            out.extend(self.move(states, target))
        return out

    def _split_exposures(self, table: pa.Table, states: list[_State]) -> None:
        self.exposures.append((table, [st.t for st in states]))

    def split(self, node: sp.SplitNode, group: list[_State]) -> list[_State]:
        journey = group[0].e.journey
        names = tuple(v.name for v in node.variants)
        total = sum(v.weight for v in node.variants)
        weights = tuple(v.weight / total for v in node.variants)
        weights = (*weights[:-1], 1.0 - sum(weights[:-1]))
        exp = Experiment(
            f"journey:{journey}:{node.id}", variants=names, weights=weights, holdout=node.holdout
        )
        arms = assign(exp, [st.e.user_id for st in group])
        self._split_exposures(arms, group)
        nexts = {v.name: v.next for v in node.variants}
        by_target: dict[str | None, list[_State]] = defaultdict(list)
        for st, variant, p in zip(
            group,
            arms.column("variant").to_pylist(),
            arms.column("probability").to_pylist(),
            strict=True,
        ):
            v = st.visit(node.id)
            target = node.holdout_next if variant == "holdout" else nexts[variant]
            st.ctx.setdefault("splits", {})[node.id] = variant
            self.step(
                st,
                node.id,
                f"{node.id}:{v}",
                "split",
                reason=variant,
                detail={"probability": p, "next": target},
            )
            by_target[target].append(st)
        out: list[_State] = []
        for target, states in by_target.items():
            out.extend(self.move(states, target))
        return out

    def adaptive(self, node: sp.AdaptiveSplitNode, group: list[_State]) -> list[_State]:
        journey = group[0].e.journey
        experiment = f"journey:{journey}:{node.id}"
        names = [v.name for v in node.variants]
        ids = [st.e.user_id for st in group]
        held = buckets(f"{experiment}:holdout", as_unit_ids(ids)) < node.holdout
        counts = _bandit_counts(self.s, journey, node.id, names)
        # counts assigned earlier in this batch (not yet in the table) count as trials
        a0, b0 = node.prior
        seed = int(
            hashlib.sha256(
                f"{experiment}:{min(st.e.id for st in group)}:{len(group)}".encode()
            ).hexdigest()[:12],
            16,
        )
        rng = np.random.default_rng(seed)
        trials = np.array([counts[n][0] for n in names], dtype=float)
        wins = np.array([counts[n][1] for n in names], dtype=float)
        p_best = thompson_probabilities(a0 + wins, b0 + trials - wins, rng)
        rows = []
        nexts = {v.name: v.next for v in node.variants}
        by_target: dict[str | None, list[_State]] = defaultdict(list)
        for st, is_held in zip(group, held, strict=True):
            v = st.visit(node.id)
            if is_held:
                variant, prob = "holdout", float(node.holdout)
                target = node.holdout_next
            else:
                draw = rng.beta(a0 + wins, b0 + trials - wins)
                k = int(np.argmax(draw))
                variant = names[k]
                prob = float((1 - node.holdout) * p_best[k])
                target = nexts[variant]
                self.bandit_trials[(journey, node.id, variant)] += 1
                st.ctx.setdefault("bandit", {})[node.id] = variant
            st.ctx.setdefault("splits", {})[node.id] = variant
            rows.append(
                {
                    "experiment": experiment,
                    "layer": None,
                    "unit_type": "user",
                    "unit_id": st.e.user_id,
                    "variant": variant,
                    "probability": prob,
                    "holdout": bool(is_held),
                }
            )
            self.step(
                st,
                node.id,
                f"{node.id}:{v}",
                "split",
                reason=variant,
                detail={"probability": prob, "next": target, "adaptive": True},
            )
            by_target[target].append(st)
        from liucun.experiments import ASSIGNMENT_SCHEMA

        self._split_exposures(pa.Table.from_pylist(rows, schema=ASSIGNMENT_SCHEMA), group)
        out: list[_State] = []
        for target, states in by_target.items():
            out.extend(self.move(states, target))
        return out

    def action(self, node: Any, group: list[_State]) -> list[_State]:
        treated = [st for st in group if st.e.arm != "control"]
        for st in group:
            if st.e.arm == "control":
                v = st.visit(node.id)
                self.step(st, node.id, f"{node.id}:{v}", "withheld", reason="control")
        if treated:
            prof = self.profile(st.e.user_id for st in treated)
            offers: dict[str, str | None] = {}
            if node.type == "coupon" and node.choose:
                from liucun.journeys._offers import choose_offers

                spec = treated[0].spec
                offers = choose_offers(
                    self.ws,
                    sorted({st.e.user_id for st in treated}),
                    list(node.choose),
                    margin=spec.value.margin,
                    cost=spec.value.cost,
                )
            for st in treated:
                v = st.visit(node.id)
                p = prof.get(st.e.user_id, {})
                payload = action_payload(self.ws, node, st, p, offers)
                if payload is None:
                    self.step(st, node.id, f"{node.id}:{v}", "suppressed", reason="no_offer")
                    continue
                key = f"j:{st.e.journey}:{st.e.id}:{node.id}:{v}"
                channel = node.channel if node.type == "message" else _CHANNEL[node.type]
                if node.type == "coupon":
                    # a later message of this enrolment names this coupon's code, which
                    # the delivery fills in once the coupon row has been issued
                    st.ctx["coupon"] = {"key": key, "coupon_id": payload["coupon_id"]}
                self.outbox.append(
                    Outgoing(
                        key=key,
                        user_id=st.e.user_id,
                        channel=channel,
                        payload=payload,
                        journey=st.e.journey,
                        version=st.e.version,
                        node=node.id,
                        enrolment_id=st.e.id,
                        not_before=st.t,
                    )
                )
                self.step(
                    st,
                    node.id,
                    f"{node.id}:{v}",
                    "action",
                    detail={"channel": channel, "outbox_key": key},
                )
        return self.move(group, node.next)

    # -- commit --

    def flush(self) -> tuple[int, dict[str, int]]:
        added = enqueue(self.s, self.outbox, now=self.now) if self.outbox else 0
        kinds: dict[str, int] = defaultdict(int)
        for row in self.steps:
            kinds[row["kind"]] += 1
        _insert(self.s, JourneyStep, self.steps, ["key"])
        for table, ts in self.exposures:
            log_assignments(self.s, table, ts, load_id="journey-split")
        for (journey, node, variant), n in self.bandit_trials.items():
            _bump_arm(self.s, journey, node, variant, trials=n, successes=0, now=self.now)
        return added, dict(kinds)


def thompson_probabilities(
    alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, draws: int = 4000
) -> np.ndarray:
    """P(each arm has the highest conversion) under independent Beta(alpha, beta)
    posteriors, by ``draws`` Monte-Carlo draws (Thompson sampling picks arm k with
    exactly this probability)."""
    samples = rng.beta(alpha[None, :], beta[None, :], size=(draws, len(alpha)))
    best = np.argmax(samples, axis=1)
    return np.bincount(best, minlength=len(alpha)) / draws


def _bandit_counts(
    s: Session, journey: str, node: str, names: list[str]
) -> dict[str, tuple[int, int]]:
    found = {
        v: (int(t), int(w))
        for v, t, w in s.execute(
            select(BanditArm.variant, BanditArm.trials, BanditArm.successes).where(
                BanditArm.journey == journey, BanditArm.node == node
            )
        )
    }
    return {n: found.get(n, (0, 0)) for n in names}


def _bump_arm(
    s: Session, journey: str, node: str, variant: str, *, trials: int, successes: int, now: datetime
) -> None:
    _insert(
        s,
        BanditArm,
        [
            {
                "journey": journey,
                "node": node,
                "variant": variant,
                "trials": 0,
                "successes": 0,
                "updated_at": now,
            }
        ],
        ["journey", "node", "variant"],
    )
    s.execute(
        update(BanditArm)
        .where(BanditArm.journey == journey, BanditArm.node == node, BanditArm.variant == variant)
        .values(
            trials=BanditArm.trials + trials,
            successes=BanditArm.successes + successes,
            updated_at=now,
        )
    )


def _renewal(s: Session, user: str) -> datetime | None:
    from liucun.state import LoyaltyMembership

    end = s.scalar(
        select(LoyaltyMembership.term_end)
        .where(LoyaltyMembership.user_id == user, LoyaltyMembership.status == "active")
        .order_by(LoyaltyMembership.term_end.desc())
    )
    return None if end is None else as_utc(end)


# -- payloads ----------------------------------------------------------------------------


def expected_value(spec: sp.JourneySpec, profile: dict[str, Any]) -> float:
    """An action's expected incremental value: uplift × margin × the customer's average
    order value (when known) − cost; without a known uplift, − cost."""
    uplift = spec.value.uplift or 0.0
    aov = profile.get("aov")
    aov = float(aov) if aov is not None and aov == aov else 0.0
    return round(uplift * spec.value.margin * aov - spec.value.cost, 6)


def action_payload(
    ws: Any,
    node: Any,
    st: _State,
    profile: dict[str, Any],
    offers: dict[str, str | None],
) -> dict[str, Any] | None:
    """The outbox payload of action ``node`` for one treated enrolment (None: the uplift
    policy found no offer that pays for itself)."""
    spec = st.spec
    customer_type = profile.get("customer_type")
    account = profile.get("account_id")
    base: dict[str, Any] = {
        "purpose": spec.purpose,
        "journey": st.e.journey,
        "version": st.e.version,
        "node": node.id,
        "enrolment_id": st.e.id,
        "timezone": profile.get("timezone") or ws.settings.reporting_timezone,
        "country": profile.get("country"),
        "language": profile.get("language"),
        "customer_type": customer_type,
        "account_id": account,
        "value": expected_value(spec, profile),
    }
    kind = node.type
    if kind == "message":
        rendered = render(ws, node.template, profile, st, node.channel)
        base.update(rendered)
        if node.provider_template_id:
            base["provider_template_id"] = node.provider_template_id
    elif kind == "coupon":
        coupon = node.coupon
        if node.choose:
            coupon = offers.get(st.e.user_id)
            if coupon is None:
                return None
            base["policy"] = node.policy or "uplift"
        base.update({"coupon_id": coupon, "program": node.program or "default"})
    elif kind == "points":
        base.update(
            {
                "points": node.points,
                "valid_days": node.valid_days,
                "program": node.program or "default",
            }
        )
    elif kind == "task":
        b2b = customer_type == "b2b" or bool(account)
        sla = node.sla_hours if node.sla_hours is not None else (2.0 if b2b else 24.0)
        base.update(
            {"queue": node.queue, "summary": _text(node.summary, profile), "sla_hours": sla}
        )
    elif kind == "webhook":
        base.update({"url": node.url, "body": {**node.body, "user_id": st.e.user_id}})
    elif kind == "tag":
        base.update({"tag": node.tag, "value": node.value})
    elif kind == "tier_upgrade":
        base.update({"tier": node.tier, "days": node.days, "program": node.program or "default"})
    return base


def render(
    ws: Any, template: sp.Template, profile: dict[str, Any], st: _State, channel: str
) -> dict[str, Any]:
    """``subject``, ``body``, ``locale`` and the message variables of a message for one
    customer (:func:`liucun.journeys._templates.render_message`).

    ``coupon_code`` is a mark (:data:`COUPON_CODE_MARK`) when the enrolment was issued a
    coupon earlier in the journey: the code exists only once the coupon row has been
    delivered, so delivery puts it in (``coupon_ref`` names that row); ``coupon_value``
    is the coupon's face value from the loyalty program.
    """
    from liucun.journeys._outbox import COUPON_CODE_MARK
    from liucun.journeys._templates import render_message

    coupon = st.ctx.get("coupon")
    extra: dict[str, Any] = {
        "coupon_code": None,
        "coupon_value": None,
        "unsubscribe_url": unsubscribe_url(ws, st.e.user_id, channel),
        "shop_name": ws.settings.journeys.shop_name,
    }
    if coupon is not None:
        extra["coupon_code"] = COUPON_CODE_MARK
        extra["coupon_value"] = _face_value(ws, str(coupon["coupon_id"]))
    out = render_message(template, profile, extra=extra)
    rendered: dict[str, Any] = {"subject": out.subject, "body": out.body, "locale": out.locale}
    rendered["unsubscribe_url"] = extra["unsubscribe_url"]
    if coupon is not None and COUPON_CODE_MARK in f"{out.subject or ''}{out.body}":
        rendered["coupon_ref"] = coupon["key"]
    return rendered


def unsubscribe_url(ws: Any, user_id: str, channel: str) -> str:
    """The one-click unsubscribe link of ``user_id`` on ``channel``: the workspace's
    ``[journeys] unsubscribe_base_url`` plus a keyed token (no customer id in clear)."""
    token = ws.keyed_hash(f"unsubscribe:{user_id}:{channel}")[:32]
    return f"{ws.settings.journeys.unsubscribe_base_url.rstrip('/')}/{channel}/{token}"


def _face_value(ws: Any, coupon_id: str) -> float | None:
    """The face value of ``coupon_id`` (its amount; a percent coupon's percentage)."""
    from liucun.loyalty import active_program

    try:
        program = active_program(ws)
    except Exception:  # no program applied: the template prints nothing
        return None
    for c in program.coupons:
        if c.id == coupon_id:
            return float(c.amount)
    return None


def _text(source: str, profile: dict[str, Any]) -> str:
    """A task summary rendered like a template (the customer's profile fields)."""
    from liucun.journeys._templates import render_text

    return render_text(source, profile)


# -- advancing due enrolments ------------------------------------------------------------


def _claim(
    s: Session, journeys: Sequence[str], now: datetime, worker_id: str, batch: int
) -> list[JourneyEnrolment]:
    E = JourneyEnrolment
    q = (
        select(E)
        .where(
            E.journey.in_(list(journeys)),
            E.status.in_(LIVE),
            E.wake_at <= now,
            (E.claimed_until.is_(None)) | (E.claimed_until < now) | (E.claimed_by == worker_id),
        )
        .order_by(E.wake_at, E.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = list(s.scalars(q))
    for e in rows:
        e.claimed_by = worker_id
        e.claimed_until = now + LEASE
    return rows


def walkable_journeys(ws: Any) -> list[str]:
    """Journeys whose enrolments are walked: active ones (a paused journey's customers
    wait where they are)."""
    with ws.state.read() as s:
        return list(s.scalars(select(Journey.name).where(Journey.status == "active")))


def advance_due(
    ws: Any,
    *,
    worker_id: str,
    now: datetime,
    batch: int | None = None,
    max_batches: int | None = None,
    cache: ProfileCache | None = None,
) -> AdvanceResult:
    """Walk every due enrolment (``wake_at`` ≤ ``now``) of the active journeys, one
    claimed batch per transaction, until none is due (or ``max_batches``)."""
    batch = batch or ws.settings.journeys.batch_size
    names = walkable_journeys(ws)
    total = AdvanceResult()
    if not names:
        return total
    cache = cache or ProfileCache(ws, now)
    specs: dict[tuple[str, int], sp.JourneySpec] = spec_versions(ws, names)
    # messages' unsubscribe tokens are keyed hashes: the key is checked against state in
    # a transaction of its own, which must not start inside the walk's (SQLite: one writer)
    ws.hash_key  # noqa: B018
    done = 0
    while max_batches is None or done < max_batches:
        with ws.state.write() as s:
            claimed = _claim(s, names, now, worker_id, batch)
            if not claimed:
                break
            states = []
            for e in claimed:
                spec = specs.get((e.journey, e.version))
                if spec is None:
                    specs.update(spec_versions(ws, [e.journey]))
                    spec = specs.get((e.journey, e.version))
                if spec is None:
                    e.status, e.exit_reason, e.exited_at = "exited", "unknown_version", now
                    continue
                ctx = json.loads(e.context) if e.context else {}
                t = as_utc(e.wake_at) if e.wake_at is not None else now
                states.append(_State(e, spec, ctx, min(t, now)))
            walk = _Walk(ws, s, now, cache)
            walk.run(states)
            for st in states:
                st.e.context = json.dumps(st.ctx, sort_keys=True, default=str)
                st.e.updated_at = now
                st.e.claimed_by = None
                st.e.claimed_until = None
            added, kinds = walk.flush()
            result = AdvanceResult(
                walked=len(states), steps=kinds, outbox=added, finished=walk.finished, batches=1
            )
        total.add(result)
        done += 1
        # go on while anything was due: a timer that ended before now (a late tick) is
        # walked on in the next batch, not at the next tick
    return total


# -- waits and goals ---------------------------------------------------------------------


def check_waits(ws: Any, now: datetime, *, cache: ProfileCache | None = None) -> int:
    """Wake the enrolments waiting (``wait_for``) for an event (matching the node's
    ``where``) that has arrived since the wait began, or for a profile filter that now
    matches: their ``wake_at`` becomes the arrival. Returns how many were woken."""
    import ibis

    E = JourneyEnrolment
    with ws.state.read() as s:
        rows = s.execute(
            select(E.id, E.user_id, E.journey, E.version, E.waiting_for, E.context).where(
                E.status == "waiting", E.waiting_for.is_not(None)
            )
        ).all()
    if not rows:
        return 0
    woken: dict[int, tuple[datetime, dict[str, Any]]] = {}
    by_type: dict[tuple[str, str | None], list[tuple[int, str, datetime]]] = defaultdict(list)
    filters: list[tuple[int, str, str, int]] = []
    specs = spec_versions(ws, {r.journey for r in rows})
    for r in rows:
        ctx = json.loads(r.context or "{}")
        wait = ctx.get("wait") or {}
        since = wait.get("since")
        if since is None:
            continue
        if r.waiting_for == "filter":
            spec = specs.get((r.journey, r.version))
            node = spec.node(wait["node"]) if spec is not None else None
            if node is not None and getattr(node, "filter", None):
                filters.append((r.id, r.user_id, node.filter, r.version))
            continue
        spec = specs.get((r.journey, r.version))
        where = None
        if spec is not None:
            try:
                where = getattr(spec.node(wait["node"]), "where", None)
            except KeyError:
                where = None
        key = (r.waiting_for, where)
        by_type[key].append((r.id, r.user_id, datetime.fromisoformat(since)))
    ev = ws.events()
    for (event_type, where), waits in by_type.items():
        m = ibis.memtable(
            pa.table(
                {
                    "_eid": pa.array([w[0] for w in waits], pa.int64()),
                    "_u": [w[1] for w in waits],
                    "_since": pa.array([w[2] for w in waits], pa.timestamp("us", tz="UTC")),
                }
            )
        )
        e = ev.filter((ev.event_type == event_type) & (ev.ts <= now))
        if where:
            cond, e = event_where(e, where)
            e = e.filter(cond)
        j = e.inner_join(m, [e.user_id == m._u, e.ts > m._since])
        first = j.group_by("_eid").aggregate(at=j.ts.min(), event_id=j.event_id.min())
        for r in first.to_pyarrow().to_pylist():
            woken[int(r["_eid"])] = (as_utc(r["at"]), {"event_id": r["event_id"], "ts": r["at"]})
    if filters:
        cache = cache or ProfileCache(ws, now)
        texts = sorted({f[2] for f in filters})
        for text in texts:
            group = [f for f in filters if f[2] == text]
            prof = cache.get({f[1] for f in group}, full=needs_full([text]))
            hit = matching(prof, text)
            for eid, user, _, _ in group:
                if user in hit:
                    woken[eid] = (now, {"filter": text})
    if not woken:
        return 0
    n = 0
    with ws.state.write() as s:
        ids = sorted(woken)
        for start in range(0, len(ids), _CHUNK):
            for e in s.scalars(
                select(E).where(E.id.in_(ids[start : start + _CHUNK]), E.status == "waiting")
            ):
                ctx = json.loads(e.context or "{}")
                wait = ctx.get("wait") or {}
                if wait.get("arrived"):
                    continue
                at, what = woken[e.id]
                wait["arrived"] = what
                ctx["wait"] = wait
                e.context = json.dumps(ctx, sort_keys=True, default=str)
                e.wake_at = min(at, now)
                e.updated_at = now
                n += 1
    return n


def check_goals(ws: Any, now: datetime) -> int:
    """Record the goal conversions of enrolments still inside their window: a
    ``converted`` step (once per enrolment), a success for the bandit arm they were
    given, and — when the goal exits — the enrolment ends ``exited``/``converted``.
    Returns how many converted."""
    import ibis

    E = JourneyEnrolment
    names = walkable_journeys(ws)
    if not names:
        return 0
    specs = spec_versions(ws, names)
    longest = max((s.goal.window_days for s in specs.values()), default=0)
    with ws.state.read() as s:
        rows = s.execute(
            select(E.id, E.journey, E.version, E.user_id, E.entered_at, E.context).where(
                E.journey.in_(names),
                E.status.in_((*LIVE, "done")),
                E.entered_at >= now - timedelta(days=longest),
                E.entered_at <= now,
            )
        ).all()
    todo = []
    for r in rows:
        spec = specs.get((r.journey, r.version))
        if spec is None or '"converted"' in (r.context or ""):
            continue
        start = as_utc(r.entered_at)
        end = min(start + timedelta(days=spec.goal.window_days), now)
        todo.append((r.id, r.user_id, spec.goal.event, start, end))
    if not todo:
        return 0
    from liucun.warehouse import resolved_events

    raw = ws.table("events")
    hits: dict[int, tuple[datetime, str | None]] = {}
    for goal_event in sorted({t[2] for t in todo}):
        part = [t for t in todo if t[2] == goal_event]
        first_start = min(t[3] for t in part)
        # only the goal events inside some window are resolved to their customers
        ev = resolved_events(
            raw.filter((raw.event_type == goal_event) & (raw.ts > first_start) & (raw.ts <= now)),
            ws.table("identities"),
        )
        m = ibis.memtable(
            pa.table(
                {
                    "_eid": pa.array([t[0] for t in part], pa.int64()),
                    "_u": [t[1] for t in part],
                    "_start": pa.array([t[3] for t in part], pa.timestamp("us", tz="UTC")),
                    "_end": pa.array([t[4] for t in part], pa.timestamp("us", tz="UTC")),
                }
            )
        )
        e = ev.filter(ev.event_type == goal_event)
        j = e.inner_join(m, [e.user_id == m._u, e.ts > m._start, e.ts <= m._end])
        first = j.group_by("_eid").aggregate(
            at=j.ts.min(), event_id=j.event_id.min(), revenue=j.revenue.sum()
        )
        for r in first.to_pyarrow().to_pylist():
            hits[int(r["_eid"])] = (as_utc(r["at"]), r["event_id"])
    if not hits:
        return 0
    n = 0
    bumps: dict[tuple[str, str, str], int] = defaultdict(int)
    with ws.state.write() as s:
        ids = sorted(hits)
        steps = []
        for start in range(0, len(ids), _CHUNK):
            for e in s.scalars(select(E).where(E.id.in_(ids[start : start + _CHUNK]))):
                ctx = json.loads(e.context or "{}")
                if ctx.get("converted"):
                    continue
                at, event_id = hits[e.id]
                spec = specs[(e.journey, e.version)]
                ctx["converted"] = {"at": at.isoformat(), "event_id": event_id}
                for node, variant in (ctx.get("bandit") or {}).items():
                    bumps[(e.journey, node, variant)] += 1
                steps.append(
                    {
                        "key": f"{e.id}:goal:1",
                        "enrolment_id": e.id,
                        "journey": e.journey,
                        "version": e.version,
                        "node": e.node,
                        "user_id": e.user_id,
                        "kind": "converted",
                        "reason": spec.goal.event,
                        "detail": json.dumps({"event_id": event_id}),
                        "at": at,
                    }
                )
                if spec.goal.exit and e.status in LIVE:
                    e.status, e.exit_reason, e.exited_at = "exited", "converted", at
                    e.wake_at, e.waiting_for = None, None
                e.context = json.dumps(ctx, sort_keys=True, default=str)
                e.updated_at = now
                n += 1
        _insert(s, JourneyStep, steps, ["key"])
        for (journey, node, variant), k in bumps.items():
            _bump_arm(s, journey, node, variant, trials=0, successes=k, now=now)
    return n
