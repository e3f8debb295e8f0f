"""Programs in force: ``liucun loyalty program apply FILE`` versions a program file in state.

Applying a file validates it (:func:`~liucun.loyalty.load_program`), and when its content
differs from the version in force stores it as the next version (canonical JSON and
digest, who applied it and when), sets the ledger's negative-balance policy from
``points.negative_balance``, and records the change in the audit log — all in one state
transaction. Applying the same content again adds nothing (whatever the file's layout,
key order or comments), so it is safe in a deploy script. ``dry_run`` says what would
change and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._ledger import DEFAULT_PROGRAM, store_policy
from liucun.loyalty._program import Program, canonical_json, load_program, parse_program
from liucun.state import LoyaltyProgramVersion, current_actor, record_audit


@dataclass(frozen=True)
class AppliedProgram:
    """What applying a program file did (or, with ``dry_run``, would do).

    ``version`` is the version in force afterwards; ``created`` says whether this call
    added it; ``changes`` names the top-level sections that differ from the previous
    version (every section for a first version)."""

    program: str
    version: int
    digest: str
    title: str
    created: bool
    dry_run: bool
    changes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["changes"] = list(self.changes)
        return out


def apply_program(
    ws: Any, path: str | Path, *, program: str = DEFAULT_PROGRAM, dry_run: bool = False
) -> AppliedProgram:
    """Validate the program file at ``path`` and make it ``program``'s version in force
    (see the module docstring)."""
    loaded = load_program(Path(path))
    body = canonical_json(loaded)
    if dry_run:
        with ws.state.read() as s:
            return _plan(s, program, loaded, body, dry_run=True)
    now = as_utc(ws.clock.now())
    with ws.state.write() as s:  # under the write lock: two applies cannot both be v2
        result = _plan(s, program, loaded, body, dry_run=False)
        if not result.created:
            return result
        s.add(
            LoyaltyProgramVersion(
                program=program,
                version=result.version,
                digest=result.digest,
                title=loaded.name,
                body=body,
                source=str(Path(path).resolve()),
                applied_at=now,
                applied_by=current_actor(),
            )
        )
        store_policy(s, program, allow_negative=loaded.points.negative_balance == "allow", now=now)
        record_audit(
            s,
            at=now,
            actor=current_actor(),
            action="loyalty.program.apply",
            target=program,
            details={
                "version": result.version,
                "digest": result.digest,
                "changes": list(result.changes),
            },
        )
    return result


def _plan(s: Any, program: str, loaded: Program, body: str, *, dry_run: bool) -> AppliedProgram:
    """What applying ``loaded`` to ``program`` does, given the version in force."""
    latest = _latest(s, program)
    if latest is not None and latest.digest == loaded.digest:
        return AppliedProgram(
            program, latest.version, loaded.digest, loaded.name, False, dry_run, ()
        )
    before = json.loads(latest.body) if latest is not None else {}
    after = json.loads(body)
    changes = tuple(sorted(k for k in {*before, *after} if before.get(k) != after.get(k)))
    version = (latest.version if latest is not None else 0) + 1
    return AppliedProgram(program, version, loaded.digest, loaded.name, True, dry_run, changes)


def active_program(ws: Any, program: str = DEFAULT_PROGRAM) -> Program:
    """The version of ``program`` in force; a :class:`ConfigError` saying how to apply one
    when none was applied."""
    with ws.state.read() as s:
        latest = _latest(s, program)
    if latest is None:
        raise ConfigError(
            f"no loyalty program {program!r} has been applied to this workspace; apply one "
            "with `liucun loyalty program apply FILE.yaml` (the default ships as "
            "examples/loyalty/program.yaml)",
            hint=Hint(option="program", example=DEFAULT_PROGRAM),
        )
    return parse_program(json.loads(latest.body), source=f"{program} v{latest.version}")


def program_versions(ws: Any, program: str = DEFAULT_PROGRAM) -> list[dict[str, Any]]:
    """Every applied version of ``program``, oldest first: version, digest, title,
    source, applied_at, applied_by."""
    with ws.state.read() as s:
        rows = s.scalars(
            select(LoyaltyProgramVersion)
            .where(LoyaltyProgramVersion.program == program)
            .order_by(LoyaltyProgramVersion.version)
        ).all()
        return [
            {
                "version": r.version,
                "digest": r.digest,
                "title": r.title,
                "source": r.source,
                "applied_at": r.applied_at,
                "applied_by": r.applied_by,
            }
            for r in rows
        ]


def _latest(s: Any, program: str) -> LoyaltyProgramVersion | None:
    top = select(func.max(LoyaltyProgramVersion.version)).where(
        LoyaltyProgramVersion.program == program
    )
    return s.scalar(
        select(LoyaltyProgramVersion).where(
            LoyaltyProgramVersion.program == program,
            LoyaltyProgramVersion.version == top.scalar_subquery(),
        )
    )
