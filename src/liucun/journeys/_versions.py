"""Journeys in state: versions (append-only) and the lifecycle.

``apply`` validates a journey file against the workspace and stores it as the next
version of its journey (canonical JSON, digest, the YAML as applied, who and when) —
applying the same content again (whatever the layout, key order or comments) adds
nothing. A journey's lifecycle::

    draft ──approve──► approved ──activate──► active ◄──resume── paused
                                                 └────pause────────►┘
    draft, approved, paused ──archive──► archived (final)

``approve`` records who approved the latest version and when, after the content check
(:func:`~liucun.journeys._templates.content_problems`); ``activate`` needs that record.
Applying a new version to an active (or paused) journey leaves the version in force
running: the new one is a draft version until it is approved and activated; then new
entrants get it, and customers inside the old version finish there unless the new
version says ``migrate: true`` (then those whose current node exists in the new version
move to it, :func:`migrate_enrolments`). Every change is in the audit log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, as_utc, close_match, read_yaml
from liucun.journeys._load import JourneyError, parse_journey, read_journey_text
from liucun.journeys._spec import JourneySpec, WaitForNode
from liucun.journeys._templates import content_problems
from liucun.state import (
    Journey,
    JourneyApproval,
    JourneyEnrolment,
    JourneyVersion,
    current_actor,
    record_audit,
)

#: The lifecycle states, in order.
STATUSES: tuple[str, ...] = ("draft", "approved", "active", "paused", "archived")
#: Enrolment states still inside a journey (others are history and never move).
LIVE_ENROLMENTS: tuple[str, ...] = ("active", "waiting")


def canonical_json(spec: JourneySpec) -> str:
    """The journey as JSON with defaults filled, keys sorted and no whitespace."""
    return json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


def journey_digest(spec: JourneySpec) -> str:
    """SHA-256 of :func:`canonical_json`: same content, same digest."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AppliedJourney:
    """What applying a journey file did (with ``dry_run``: would do).

    ``version`` is the journey's latest version afterwards; ``created`` whether this
    call added it; ``changes`` the top-level keys that differ from the previous version
    (all of them for a first version); ``warnings`` what the content check would refuse
    at approval."""

    name: str
    version: int
    digest: str
    created: bool
    dry_run: bool
    status: str
    active_version: int | None
    changes: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["changes"], out["warnings"] = list(self.changes), list(self.warnings)
        return out


@dataclass(frozen=True)
class Approval:
    """Who approved ``version`` of ``journey``, when, and why; ``created`` is False when
    the version was approved before (this call changed nothing)."""

    journey: str
    version: int
    approved_by: str
    approved_at: datetime
    note: str | None
    created: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["approved_at"] = self.approved_at.isoformat()
        return out


@dataclass(frozen=True)
class JourneyStatus:
    """A journey's state: lifecycle ``status``, the ``latest_version`` applied, the
    ``active_version`` new customers enter (None before the first activation), whether
    the latest version is approved, and the journey's purpose and trigger type.

    From a transition: ``changed`` (False when it was already so) and ``migrated`` (the
    enrolments an activation moved to the new version)."""

    name: str
    status: str
    latest_version: int
    active_version: int | None
    latest_approved: bool
    purpose: str
    trigger: str
    updated_at: datetime
    changed: bool = False
    migrated: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["updated_at"] = self.updated_at.isoformat()
        return out


# -- apply -------------------------------------------------------------------------------


def apply_journey(
    ws: Any, path_or_text: str | Path, *, by: str | None = None, dry_run: bool = False
) -> AppliedJourney:
    """Validate a journey file against ``ws`` and store it as its journey's next version
    (see the module docstring); ``by`` (default: the OS user) is recorded as its author.

    Raises
    ------
    JourneyError
        The file is invalid (every problem, each with its YAML path and fix).
    ConfigError
        The journey is archived (archived journeys stay so: use a new name).
    """
    text, source = read_journey_text(path_or_text)
    spec = parse_journey(read_yaml(text, source=source), source=source, ws=ws)
    body = canonical_json(spec)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    warnings = tuple(content_problems(spec, ws.settings))
    for attempt in range(3):
        try:
            return _store(ws, spec, text, body, digest, warnings, by=by, dry_run=dry_run)
        except IntegrityError:  # another process added this journey or version first
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store(
    ws: Any,
    spec: JourneySpec,
    text: str,
    body: str,
    digest: str,
    warnings: tuple[str, ...],
    *,
    by: str | None,
    dry_run: bool,
) -> AppliedJourney:
    """One attempt of :func:`apply_journey`'s write (see there)."""
    now = as_utc(ws.clock.now())
    with ws.state.read() if dry_run else ws.state.write() as s:
        row = _journey_row(s, spec.name, lock=not dry_run)
        latest = _version_row(s, spec.name, row.latest_version) if row is not None else None
        if row is not None and row.status == "archived":
            raise ConfigError(
                f"journey {spec.name!r} is archived, and archived journeys stay archived; "
                "give the file another name: to run it again"
            )
        if latest is not None and latest.digest == digest:
            return AppliedJourney(
                spec.name,
                latest.version,
                digest,
                False,
                dry_run,
                row.status,  # type: ignore[union-attr]
                row.active_version,  # type: ignore[union-attr]
                (),
                warnings,
            )
        before = json.loads(latest.definition) if latest is not None else {}
        after = json.loads(body)
        changes = tuple(sorted(k for k in {*before, *after} if before.get(k) != after.get(k)))
        version = (row.latest_version if row is not None else 0) + 1
        status = "draft" if row is None or row.status in ("draft", "approved") else row.status
        active = row.active_version if row is not None else None
        result = AppliedJourney(
            spec.name, version, digest, True, dry_run, status, active, changes, warnings
        )
        if dry_run:
            return result
        if row is None:
            row = Journey(
                name=spec.name,
                status="draft",
                latest_version=version,
                active_version=None,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
        else:
            row.latest_version, row.status, row.updated_at = version, status, now
        s.add(
            JourneyVersion(
                journey=spec.name,
                version=version,
                digest=digest,
                definition=body,
                source=text,
                migrate=spec.migrate,
                created_at=now,
                created_by=by or current_actor(),
            )
        )
        _audit(
            s,
            now,
            "journey.apply",
            spec.name,
            version=version,
            digest=digest,
            status=status,
            changes=list(changes),
            by=by,
        )
        return result


# -- lifecycle ---------------------------------------------------------------------------


def approve_journey(
    ws: Any, name: str, *, by: str, version: int | None = None, note: str | None = None
) -> Approval:
    """Record that ``by`` approved the latest version of journey ``name`` (``version``,
    when given, must be it: approving exactly what was reviewed).

    Refused when the version fails the content check (forbidden phrases, a missing
    unsubscribe link: :class:`JourneyError` listing each), when the journey is archived,
    or when ``version`` is not the latest. Approving an approved version again changes
    nothing.
    """
    if not by or not by.strip():
        raise ConfigError(
            "an approval needs who approves; pass by, e.g. by='li.wei'",
            hint=Hint(option="by", example="li.wei"),
        )
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _require(s, name)
        if row.status == "archived":
            raise ConfigError(f"journey {name!r} is archived; archived journeys stay archived")
        if version is not None and version != row.latest_version:
            raise ConfigError(
                f"version {version} is not the latest version of journey {name!r} "
                f"({row.latest_version}); approval acts on the latest: review version "
                f"{row.latest_version} and approve it"
            )
        target = row.latest_version
        found = _approval_row(s, name, target)
        if found is not None:
            return _approval(found, created=False)
        definition = _version_row(s, name, target)
        assert definition is not None
        spec = _spec(definition)
        problems = content_problems(spec, ws.settings)
        if problems:
            where = f"journey {name!r} version {target} fails the content check"
            raise JourneyError(where, problems)
        approval = JourneyApproval(
            journey=name, version=target, approved_by=by, approved_at=now, note=note
        )
        s.add(approval)
        if row.status == "draft":
            row.status = "approved"
        row.updated_at = now
        _audit(s, now, "journey.approve", name, version=target, by=by, note=note)
        s.flush()
        return _approval(approval, created=True)


def activate_journey(ws: Any, name: str) -> JourneyStatus:
    """Make the latest (approved) version of ``name`` the one new customers enter.

    Refused without an approval record of that version (the message names the
    approve command), and on an archived journey. When another version was active and
    the new one says ``migrate: true``, the enrolments inside the old version whose
    node exists in the new one move to it (the rest finish on the old version).
    """
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _require(s, name)
        if row.status == "archived":
            raise _illegal(row, "activate")
        if row.status == "paused" and row.active_version == row.latest_version:
            raise ConfigError(
                f"journey {name!r} is paused at its latest version {row.latest_version}; "
                f"resume it (liucun journeys resume {name})"
            )
        if row.status == "active" and row.active_version == row.latest_version:
            return _status(s, row, changed=False)
        if _approval_row(s, name, row.latest_version) is None:
            raise ConfigError(
                f"version {row.latest_version} of journey {name!r} has no approval; approve "
                f"it first: liucun journeys approve {name} --by WHO"
            )
        previous, target = row.active_version, row.latest_version
        definition = _version_row(s, name, target)
        assert definition is not None
        migrated = 0
        if previous is not None and definition.migrate:
            migrated = migrate_enrolments(s, name, previous, target, _spec(definition), now=now)
        row.active_version, row.status, row.updated_at = target, "active", now
        _audit(
            s,
            now,
            "journey.activate",
            name,
            version=target,
            previous_version=previous,
            migrated=migrated,
        )
        return _status(s, row, changed=True, migrated=migrated)


def pause_journey(ws: Any, name: str) -> JourneyStatus:
    """Pause an active journey: no one enters and nothing runs until it is resumed
    (customers inside wait where they are)."""
    return _move(ws, name, "pause", frm=("active",), to="paused")


def resume_journey(ws: Any, name: str) -> JourneyStatus:
    """Resume a paused journey on its active version."""
    return _move(ws, name, "resume", frm=("paused",), to="active")


def archive_journey(ws: Any, name: str) -> JourneyStatus:
    """Archive a draft, approved or paused journey for good (pause an active one
    first); it keeps its versions and history but never runs again."""
    return _move(ws, name, "archive", frm=("draft", "approved", "paused"), to="archived")


#: For each transition, the states it starts from (the refusals say so).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "approve": ("draft", "approved", "active", "paused"),
    "activate": ("approved", "active", "paused"),
    "pause": ("active",),
    "resume": ("paused",),
    "archive": ("draft", "approved", "paused"),
}


def _illegal(row: Journey, action: str) -> ConfigError:
    allowed = TRANSITIONS[action]
    names = ", ".join(allowed[:-1]) + (" or " if len(allowed) > 1 else "") + allowed[-1]
    extra = ""
    if action == "archive" and row.status == "active":
        extra = f"; pause it first (liucun journeys pause {row.name})"
    elif action == "pause" and row.status in ("draft", "approved"):
        extra = "; it is not running yet"
    article = "an" if names[0] in "aeiou" else "a"
    return ConfigError(
        f"journey {row.name!r} is {row.status}; {action} works on {article} {names} journey{extra}"
    )


def _move(ws: Any, name: str, action: str, *, frm: Sequence[str], to: str) -> JourneyStatus:
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:
        row = _require(s, name)
        if row.status == to:
            return _status(s, row, changed=False)
        if row.status not in frm:
            raise _illegal(row, action)
        before = row.status
        row.status, row.updated_at = to, now
        _audit(s, now, f"journey.{action}", name, **{"from": before, "to": to})
        return _status(s, row, changed=True)


def migrate_enrolments(
    s: Session,
    journey: str,
    from_version: int,
    to_version: int,
    spec: JourneySpec,
    *,
    now: datetime | None = None,
) -> int:
    """Move the live enrolments (active, waiting) of ``journey`` on ``from_version``
    whose current node exists in ``spec`` (the definition of ``to_version``) to it;
    the others stay and finish on their version. A moved enrolment waiting at a
    wait_for node waits for that node's event in the new version. Returns how many
    moved (the caller commits)."""
    ids = [n.id for n in spec.nodes]
    base = (
        update(JourneyEnrolment)
        .where(
            JourneyEnrolment.journey == journey,
            JourneyEnrolment.version == from_version,
            JourneyEnrolment.status.in_(LIVE_ENROLMENTS),
        )
        .execution_options(synchronize_session=False)
    )
    values: dict[str, Any] = {"version": to_version}
    if now is not None:
        values["updated_at"] = now
    moved = 0
    waits = {n.id: n.event for n in spec.nodes if isinstance(n, WaitForNode)}
    others = [i for i in ids if i not in waits]
    statements = [base.where(JourneyEnrolment.node.in_(others)).values(**values)] if others else []
    statements += [
        base.where(JourneyEnrolment.node == node_id).values(**values, waiting_for=event)
        for node_id, event in waits.items()
    ]
    for statement in statements:
        result: Any = s.execute(statement)
        moved += int(result.rowcount or 0)
    return moved


# -- reading -----------------------------------------------------------------------------


def list_journeys(ws: Any) -> list[JourneyStatus]:
    """Every journey, by name."""
    with ws.state.read() as s:
        rows = s.scalars(select(Journey).order_by(Journey.name)).all()
        return [_status(s, r) for r in rows]


def journey_status(ws: Any, name: str) -> JourneyStatus:
    """The state of journey ``name`` (a ConfigError naming the known ones if none)."""
    with ws.state.read() as s:
        return _status(s, _require(s, name, lock=False))


def journey_version(ws: Any, name: str, version: int | None = None) -> JourneySpec:
    """The definition of ``version`` of journey ``name``; by default the active one
    (a ConfigError when the journey was never activated)."""
    with ws.state.read() as s:
        row = _require(s, name, lock=False)
        if version is None:
            if row.active_version is None:
                raise ConfigError(
                    f"journey {name!r} has no active version (it is {row.status}); approve "
                    f"and activate it: liucun journeys activate {name}"
                )
            version = row.active_version
        found = _version_row(s, name, version)
        if found is None:
            raise ConfigError(
                f"journey {name!r} has no version {version}; its versions are 1 to "
                f"{row.latest_version}"
            )
        return _spec(found)


def journey_versions(ws: Any, name: str) -> list[dict[str, Any]]:
    """Every version of journey ``name``, oldest first: version, digest, created_at,
    created_by, migrate, approved_by, approved_at, note, and its ``state``
    (active, approved, draft, or superseded for an older version never active now)."""
    with ws.state.read() as s:
        row = _require(s, name, lock=False)
        versions = s.scalars(
            select(JourneyVersion)
            .where(JourneyVersion.journey == name)
            .order_by(JourneyVersion.version)
        ).all()
        approvals = {
            a.version: a
            for a in s.scalars(select(JourneyApproval).where(JourneyApproval.journey == name))
        }
        out = []
        for v in versions:
            a = approvals.get(v.version)
            if v.version == row.active_version:
                state = row.status if row.status in ("active", "paused") else "archived"
            elif v.version == row.latest_version:
                state = "approved" if a is not None else "draft"
            else:
                state = "superseded"
            out.append(
                {
                    "version": v.version,
                    "state": state,
                    "digest": v.digest,
                    "created_at": as_utc(v.created_at),
                    "created_by": v.created_by,
                    "migrate": bool(v.migrate),
                    "approved_by": a.approved_by if a else None,
                    "approved_at": as_utc(a.approved_at) if a else None,
                    "note": a.note if a else None,
                }
            )
        return out


def journey_source(ws: Any, name: str, version: int | None = None) -> str:
    """The YAML text of ``version`` (default: the latest) as it was applied."""
    with ws.state.read() as s:
        row = _require(s, name, lock=False)
        found = _version_row(s, name, version or row.latest_version)
        if found is None:
            raise ConfigError(
                f"journey {name!r} has no version {version}; its versions are 1 to "
                f"{row.latest_version}"
            )
        return found.source


# -- helpers -----------------------------------------------------------------------------

_SPECS: dict[str, JourneySpec] = {}


def _spec(row: JourneyVersion) -> JourneySpec:
    """The stored definition, parsed once per digest."""
    found = _SPECS.get(row.digest)
    if found is None:
        found = JourneySpec.model_validate(json.loads(row.definition))
        if len(_SPECS) > 256:
            _SPECS.clear()
        _SPECS[row.digest] = found
    return found


def _journey_row(s: Session, name: str, *, lock: bool = False) -> Journey | None:
    query = select(Journey).where(Journey.name == name)
    return s.scalar(query.with_for_update() if lock else query)


def _require(s: Session, name: str, *, lock: bool = True) -> Journey:
    """The journey ``name`` (locked for the transaction on PostgreSQL unless ``lock`` is
    False); a ConfigError naming the known ones when there is none."""
    row = _journey_row(s, name, lock=lock)
    if row is None:
        names = list(s.scalars(select(Journey.name).order_by(Journey.name)))
        near = close_match(name, names)
        tip = (
            f"did you mean {near}?"
            if near
            else (f"the journeys are {', '.join(names)}" if names else "none is applied yet")
        )
        raise ConfigError(
            f"no journey named {name!r}; apply its file first (liucun journeys apply "
            f"FILE.yaml); {tip}"
        )
    return row


def _version_row(s: Session, name: str, version: int) -> JourneyVersion | None:
    return s.scalar(
        select(JourneyVersion).where(
            JourneyVersion.journey == name, JourneyVersion.version == version
        )
    )


def _approval_row(s: Session, name: str, version: int) -> JourneyApproval | None:
    return s.scalar(
        select(JourneyApproval).where(
            JourneyApproval.journey == name, JourneyApproval.version == version
        )
    )


def _approval(row: JourneyApproval, *, created: bool) -> Approval:
    return Approval(
        row.journey, row.version, row.approved_by, as_utc(row.approved_at), row.note, created
    )


def _status(s: Session, row: Journey, *, changed: bool = False, migrated: int = 0) -> JourneyStatus:
    latest = _version_row(s, row.name, row.latest_version)
    definition = json.loads(latest.definition) if latest is not None else {}
    approved = _approval_row(s, row.name, row.latest_version) is not None
    return JourneyStatus(
        name=row.name,
        status=row.status,
        latest_version=row.latest_version,
        active_version=row.active_version,
        latest_approved=approved,
        purpose=str(definition.get("purpose", "")),
        trigger=str((definition.get("trigger") or {}).get("type", "")),
        updated_at=as_utc(row.updated_at),
        changed=changed,
        migrated=migrated,
    )


def _audit(s: Session, now: datetime, action: str, name: str, **details: Any) -> None:
    record_audit(
        s,
        at=now,
        actor=current_actor(),
        action=action,
        target=f"journey:{name}",
        details={k: v for k, v in details.items() if v is not None},
    )
