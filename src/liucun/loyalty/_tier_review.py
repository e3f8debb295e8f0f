"""The tier review: it keeps the tiers in force (``loyalty_member_tiers``) and their
history (``loyalty_tier_history``); :mod:`liucun.loyalty._tier_store` reads them.

:func:`review_tiers` reads every member's growth from the ledger, the tiers stored at
the last review, runs :func:`~liucun.loyalty._tiers.evaluate_tiers` and, in **one**
state transaction, stores the new tiers and appends a history row per change of a
member's *effective* tier; then it writes the ``tier_changed`` events of the history rows
that the warehouse lacks. A review at the same ``as_of`` again changes nothing.

**Effective tier**: the temporary upgrade (``boost_tier`` while ``boost_until`` lies
after the instant, written by the recall package, never by the review) when it ranks
above the tier earned, else the tier earned. The history records changes of the
effective tier, so a boost that ends shows as a ``down`` change only when the member
actually drops ("temporary upgrade to 尊享 ended …"), and a boost below the tier earned
shows nowhere.

**Growth in the window** is earned growth, never the spendable points: each ledger
transaction's ``growth`` at ``coalesce(earned_at, created_at)``. A reversal counts from
when it was booked (or its own ``earned_at``), at the time of the growth it cancels: a
refund takes back growth where the order earned it, so refunding an order earned
outside the window does not lower the window's growth.

**The crash window**: state commits first, the warehouse write follows. A process that
dies in between leaves history rows whose events the warehouse lacks. Every review
writes the events of *every* history row missing from the warehouse (with their stable
ids), so the history is the outbox of ``tier_changed``: running the review again heals
the gap and never writes an event twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pandas as pd
import pyarrow as pa
from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from liucun.core import ConfigError, Hint, LiucunError, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import expiry_cutoff, lock_program
from liucun.loyalty._program import Program
from liucun.loyalty._tier_store import (
    STORED_COLUMNS,
    TierChange,
    effective_tier,
    stored_tiers,
)
from liucun.loyalty._tiers import (
    evaluate_tiers,
    growth_window_start,
    tier_event_id,
    tier_events,
)
from liucun.state import LoyaltyAccount, LoyaltyMemberTier, LoyaltyTierChange, LoyaltyTransaction

_TIERS = cast(Table, LoyaltyMemberTier.__table__)
_HISTORY = cast(Table, LoyaltyTierChange.__table__)

Step = Callable[[str], None]


class TierEventsPending(LiucunError, RuntimeError):
    """The review was stored in state but writing its ``tier_changed`` events to the
    warehouse failed; the next review writes them (nothing is lost or doubled)."""


@dataclass(frozen=True)
class TierReview:
    """What :func:`review_tiers` did (or, with ``dry_run``, would do).

    ``members`` were evaluated; ``changes`` are the effective-tier changes recorded (or
    that would be); ``stored`` member rows were inserted or updated; ``events_written``
    ``tier_changed`` events reached the warehouse, ``events_repaired`` of them from
    earlier reviews whose warehouse write had not happened; ``events_pending`` are
    history rows still missing from the warehouse (a dry run writes none);
    ``distribution`` counts members per effective tier after the review, lowest first.
    """

    program: str
    as_of: datetime
    dry_run: bool
    members: int
    changes: list[TierChange] = field(default_factory=list)
    stored: int = 0
    events_written: int = 0
    events_repaired: int = 0
    events_pending: int = 0
    in_grace: int = 0
    boosted: int = 0
    distribution: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "members": self.members,
            "changed": len(self.changes),
            "stored": self.stored,
            "events_written": self.events_written,
            "events_repaired": self.events_repaired,
            "events_pending": self.events_pending,
            "in_grace": self.in_grace,
            "boosted": self.boosted,
            "distribution": dict(self.distribution),
            "changes": [c.to_dict() for c in self.changes],
        }


def growth_entries(
    ws: Any, program: str, *, as_of: datetime, window_start: datetime
) -> pd.DataFrame:
    """``user_id, ts, growth`` of ``program``'s ledger that can count in the window
    ``(window_start, as_of]`` (see the module docstring for a reversal's ``ts``), plus a
    zero row at ``as_of`` for every account opened by then, so that a member without
    growth still holds the base tier."""
    at = as_utc(as_of)
    tx, orig = aliased(LoyaltyTransaction), aliased(LoyaltyTransaction)
    booked = func.coalesce(tx.earned_at, tx.created_at)
    counted = func.coalesce(orig.earned_at, orig.created_at, booked)
    query = (
        select(tx.user_id, counted.label("ts"), tx.growth)
        .outerjoin(orig, orig.id == tx.reverses_id)
        .where(tx.program == program, tx.growth != 0, booked <= at, counted > window_start)
    )
    with ws.state.read() as s:
        rows = s.execute(query).all()
        accounts = s.scalars(
            select(LoyaltyAccount.user_id).where(
                LoyaltyAccount.program == program, LoyaltyAccount.opened_at <= at
            )
        ).all()
    frame = pd.DataFrame(
        [*rows, *((u, at, 0) for u in accounts)], columns=["user_id", "ts", "growth"]
    )
    frame["ts"] = pd.to_datetime(frame.ts, utc=True)
    frame["growth"] = pd.to_numeric(frame.growth)
    return frame


# -- the review ----------------------------------------------------------------------------


def review_tiers(
    ws: Any,
    *,
    program: str = "default",
    as_of: datetime | None = None,
    dry_run: bool = False,
    on_step: Step | None = None,
) -> TierReview:
    """Review every member's tier in ``program`` at ``as_of`` (default now; not in the
    future, not before the last review) and store it; see the module docstring.

    ``dry_run`` says who would change tier and why, and writes nothing (not even the
    events a crash left behind). ``on_step(text)`` names each phase. Raises
    :class:`TierEventsPending` when state was stored but the warehouse write failed
    (run the review again to write the events).
    """
    step = on_step or (lambda _text: None)
    prog = active_program(ws, program)
    if not prog.tiers:
        raise ConfigError(
            f"program {program!r} defines no tiers; add `tiers:` to its file and apply it "
            "(liucun loyalty program apply FILE.yaml)"
        )
    at = expiry_cutoff(ws, as_of if as_of is not None else ws.clock.now(), "tiers", "reviewed")
    step("reading growth from the ledger")
    entries = growth_entries(
        ws, program, as_of=at, window_start=growth_window_start(prog, at).to_pydatetime()
    )
    if dry_run:
        with ws.state.read() as s:
            plan = _plan(s, prog, program, entries, at, step)
            history = _history_frame(s, program)
        pending = len(_missing_events(ws, history))
        return plan.result(dry_run=True, stored=0, written=0, repaired=0, pending=pending)
    with ws.state.write() as s:
        lock_program(s, "tiers", program)
        plan = _plan(s, prog, program, entries, at, step)
        step("storing tiers")
        stored = plan.store(s, as_utc(ws.clock.now()))
    step("writing tier_changed events")
    new_ids = {c.event_id for c in plan.changes}
    try:
        written, ids = _flush_events(ws, program)
    except Exception as exc:  # the state is committed: say so, and how it heals
        raise TierEventsPending(
            f"the review of {program!r} at {at.isoformat()} is stored ({len(plan.changes)} "
            f"tier change{'' if len(plan.changes) == 1 else 's'}) but writing the "
            "tier_changed events to the warehouse failed "
            f"({type(exc).__name__}: {exc}); run the review again (liucun loyalty tiers "
            "review) to write them, nothing will be doubled"
        ) from exc
    return plan.result(
        dry_run=False,
        stored=stored,
        written=written,
        repaired=len(ids - new_ids),
        pending=0,
    )


@dataclass
class _Plan:
    """A review worked out inside a state session: the stored rows to write, the
    history rows to append, and the counts for :class:`TierReview`."""

    program: str
    at: datetime
    members: int
    upserts: list[dict[str, Any]]
    changes: list[TierChange]
    effective: list[str]
    in_grace: int
    boosted: int
    names: list[str]

    def store(self, s: Session, now: datetime) -> int:
        if self.upserts:
            dialect = s.get_bind().dialect.name
            stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TIERS)
            stmt = stmt.on_conflict_do_update(
                index_elements=["program", "user_id"],
                set_={c: stmt.excluded[c] for c in (*STORED_COLUMNS, "updated_at")},
            )  # boost_tier / boost_until are the recall package's: never written here
            s.execute(stmt, [{**row, "updated_at": now} for row in self.upserts])
        if self.changes:
            s.execute(
                _HISTORY.insert(),
                [
                    {
                        "event_id": c.event_id,
                        "program": c.program,
                        "user_id": c.user_id,
                        "from_tier": c.from_tier,
                        "to_tier": c.to_tier,
                        "direction": c.direction,
                        "reason": c.reason,
                        "growth_in_window": c.growth_in_window,
                        "program_digest": c.program_digest,
                        "changed_at": c.changed_at,
                    }
                    for c in self.changes
                ],
            )
        return len(self.upserts)

    def result(
        self, *, dry_run: bool, stored: int, written: int, repaired: int, pending: int
    ) -> TierReview:
        counts = pd.Series(self.effective, dtype="object").value_counts()
        order = self.names + sorted(set(counts.index) - set(self.names))
        return TierReview(
            program=self.program,
            as_of=self.at,
            dry_run=dry_run,
            members=self.members,
            changes=self.changes,
            stored=stored,
            events_written=written,
            events_repaired=repaired,
            events_pending=pending,
            in_grace=self.in_grace,
            boosted=self.boosted,
            distribution={n: int(counts.get(n, 0)) for n in order},
        )


def _plan(
    s: Session, prog: Program, program: str, entries: pd.DataFrame, at: datetime, step: Step
) -> _Plan:
    stored = stored_tiers(s, program)
    _check_not_before_last_review(s, program, stored, at)
    recorded = _last_recorded(s, program)
    step(f"evaluating {len(set(entries.user_id) | set(stored.user_id)):,} members")
    evaluated = evaluate_tiers(entries, prog, as_of=at, previous=stored)
    names = prog.tier_names()
    rank = {n: i for i, n in enumerate(names)}
    before = stored.set_index("user_id")
    upserts: list[dict[str, Any]] = []
    changes: list[TierChange] = []
    effective: list[str] = []
    boosted = 0
    for r in evaluated.itertuples(index=False):
        old = before.loc[r.user_id] if r.user_id in before.index else None
        row = {
            "program": program,
            "user_id": r.user_id,
            "tier": r.tier,
            "growth_in_window": float(r.growth_in_window),
            "tier_since": _instant(r.tier_since),
            "reviewed_at": _instant(r.reviewed_at),
            "grace_until": _instant(r.grace_until),
        }
        if old is None or any(_differs(old[c], row[c]) for c in STORED_COLUMNS):
            upserts.append(row)
        boost = None if old is None or pd.isna(old.boost_tier) else str(old.boost_tier)
        until = None if old is None else _instant(old.boost_until)
        now_tier = effective_tier(r.tier, boost, until, at, names) or r.tier
        effective.append(now_tier)
        boosted += now_tier != r.tier
        last = recorded.get(r.user_id)
        if now_tier == last:
            continue
        if last is None or last not in rank:
            direction = "joined"
        else:
            direction = "up" if rank[now_tier] > rank[last] else "down"
        changes.append(
            TierChange(
                user_id=r.user_id,
                program=program,
                from_tier=last,
                to_tier=now_tier,
                direction=direction,
                reason=_reason(r, now_tier, last, boost, until, at),
                growth_in_window=float(r.growth_in_window),
                changed_at=at,
                event_id=tier_event_id(program, r.user_id, at, now_tier),
                program_digest=prog.digest,
            )
        )
    grace = pd.to_datetime(evaluated.grace_until, utc=True).notna()
    return _Plan(
        program=program,
        at=at,
        members=len(evaluated),
        upserts=upserts,
        changes=changes,
        effective=effective,
        in_grace=int(grace.sum()),
        boosted=boosted,
        names=names,
    )


def _reason(
    r: Any, now_tier: str, last: str | None, boost: str | None, until: datetime | None, at: datetime
) -> str:
    """Why the effective tier changed: the evaluation's sentence, with the boost's part."""
    if now_tier != r.tier:  # a live temporary upgrade
        return (
            f"temporary upgrade to {now_tier} until {until:%Y-%m-%d %H:%M} UTC (recall "
            f"package); the tier earned is {r.tier} ({r.reason})"
        )
    if boost is not None and last == boost and until is not None and until <= at:
        return (
            f"temporary upgrade to {boost} ended on {until:%Y-%m-%d %H:%M} UTC; back to "
            f"the tier earned, {r.tier} ({r.reason})"
        )
    return str(r.reason)


def _check_not_before_last_review(
    s: Session, program: str, stored: pd.DataFrame, at: datetime
) -> None:
    last_change = s.scalar(
        select(func.max(LoyaltyTierChange.changed_at)).where(LoyaltyTierChange.program == program)
    )
    reviewed = pd.to_datetime(stored.reviewed_at, utc=True).max()
    candidates = [as_utc(last_change)] if last_change is not None else []
    if pd.notna(reviewed):
        candidates.append(reviewed.to_pydatetime())
    latest = max(candidates, default=None)
    if latest is not None and at < latest:
        raise ConfigError(
            f"as_of {at.isoformat()} is before the last tier review of {program!r} "
            f"({latest.isoformat()}): tiers cannot be reviewed back in time; pass an as_of "
            "at or after it",
            hint=Hint(option="as_of", example=f"{latest:%Y-%m-%d}"),
        )


def _last_recorded(s: Session, program: str) -> dict[str, str]:
    """Each member's effective tier as the history last recorded it."""
    rows = s.execute(
        select(LoyaltyTierChange.user_id, LoyaltyTierChange.to_tier)
        .where(LoyaltyTierChange.program == program)
        .order_by(LoyaltyTierChange.changed_at, LoyaltyTierChange.id)
    ).all()
    return {user: tier for user, tier in rows}  # the last row of a member wins


# -- the warehouse side --------------------------------------------------------------------


def _history_frame(s: Session, program: str) -> pd.DataFrame:
    cols = (
        "event_id",
        "user_id",
        "from_tier",
        "to_tier",
        "direction",
        "reason",
        "growth_in_window",
        "program_digest",
        "changed_at",
    )
    rows = s.execute(
        select(*(getattr(LoyaltyTierChange, c) for c in cols))
        .where(LoyaltyTierChange.program == program)
        .order_by(LoyaltyTierChange.id)
    ).all()
    return pd.DataFrame(rows, columns=list(cols))


def _missing_events(ws: Any, history: pd.DataFrame) -> pd.DataFrame:
    """The history rows whose ``tier_changed`` event the warehouse lacks."""
    if history.empty:
        return history
    events = ws.table("events")
    present = set(
        events.filter(events.event_type == "tier_changed")
        .select("event_id")
        .to_pyarrow()
        .column(0)
        .to_pylist()
    )
    return history[~history.event_id.isin(present)]


def _flush_events(ws: Any, program: str) -> tuple[int, set[str]]:
    """Write the ``tier_changed`` events of every history row of ``program`` the
    warehouse lacks (the new ones and any a crash left behind); returns how many and
    their ids."""
    from liucun.ingest import IngestOptions, ingest_tables
    from liucun.schema import arrow_schema

    with ws.state.read() as s:
        history = _history_frame(s, program)
    missing = _missing_events(ws, history)
    if missing.empty:
        return 0, set()
    events = tier_events(missing)
    schema = arrow_schema("events")
    table = pa.Table.from_pandas(events, preserve_index=False).cast(
        pa.schema([schema.field(c) for c in events.columns])
    )
    options = IngestOptions.from_settings(ws.settings, clock=ws.clock)
    (result,) = ingest_tables(
        ws.warehouse, events=table, source=f"loyalty tier review ({program})", options=options
    )
    if result.accepted + result.already_loaded != len(events):
        reasons = ", ".join(f"{k} ({v})" for k, v in sorted(result.by_reason.items()))
        raise ConfigError(
            f"{len(events) - result.accepted - result.already_loaded} of {len(events)} "
            f"tier_changed events were refused by the warehouse checks ({reasons}; load "
            f"{result.load_id}, see liucun ingest quarantine show)"
        )
    return len(events), set(missing.event_id)


# -- small helpers -------------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _differs(old: Any, new: Any) -> bool:
    if (old is None or pd.isna(old)) and new is None:
        return False
    if old is None or pd.isna(old) or new is None:
        return True
    if isinstance(new, datetime):
        return as_utc(pd.Timestamp(old).to_pydatetime()) != as_utc(new)
    return bool(old != new)
