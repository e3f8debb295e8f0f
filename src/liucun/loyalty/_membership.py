"""Paid membership (付费会员): join a plan, renew, cancel, settle terms that ended, remind.

A membership is a customer's plan in a program (``loyalty_memberships``: status, the
current term, the price) and every change to it is an append-only, keyed row of
``loyalty_membership_events`` (``join``, ``renewal``, ``cancel``, ``lapse``,
``reminder``) that books the amount paid in the program currency — the history the
analytics (:mod:`liucun.loyalty._member_stats`) read. Each event is also written to the
warehouse's ``events`` table (``membership_joined``, ``membership_renewed``,
``membership_cancelled``, ``membership_lapsed``, ``membership_renewal_due``) so journeys
can trigger on them; the event id is derived from the state row, so writing it again adds
nothing.

**Terms** are calendar terms in the program's time zone, anchored on the join: a
one-month plan joined on 31 January 10:00 runs to 28 February 10:00, then to 31 March
10:00, 30 April 10:00 (the n-th term ends n × term after the join, the day clamped to the
month's end, as subscription billing anchors its cycle). A renewal extends from the
current term's end, never from now.

**Status**: ``active``; ``cancelled`` (auto-renewal stopped, still a member to the term's
end); ``lapsed`` (the term ended without a renewal). When a term ends, an
``auto_renew`` plan that was not cancelled renews by itself at the term's end — a
renewal event charging the plan's price in force — and any other membership lapses.
liucun takes no payment signal: the shop's billing charges the card, and a failed charge
is a ``cancel`` the billing system sends before the term ends. Every write first
*settles* the customer's terms that ended before its moment (the same keyed events
:func:`lapse_due` writes), so the state never depends on when ``lapse_due`` last ran.

A customer holds at most one running membership per program (joining a second plan
while one runs is refused); renewing a cancelled or lapsed membership is refused with
what to do instead (join again).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, LiucunError, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import _aware, _canonical, _check_key
from liucun.loyalty._coupons import _check_user, _same_request, _write
from liucun.loyalty._ledger import DEFAULT_PROGRAM, valid_until
from liucun.loyalty._program import Plan, Program
from liucun.state import LoyaltyMembership, LoyaltyMembershipEvent

#: Warehouse event types of membership changes, by the state event's kind.
EVENT_TYPES: dict[str, str] = {
    "join": "membership_joined",
    "renewal": "membership_renewed",
    "cancel": "membership_cancelled",
    "lapse": "membership_lapsed",
    "reminder": "membership_renewal_due",
}
MEMBERSHIP_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_TYPES.values())
_RUNNING = ("active", "cancelled")


class MembershipRefused(LiucunError, ValueError):
    """A membership write was refused (unknown plan, already a member, a renewal of a
    cancelled or lapsed membership); nothing was written. The CLI exits with code 2."""


@dataclass(frozen=True)
class Membership:
    """A customer's membership of a plan after a write (or as listed).

    ``term_start`` / ``term_end`` bound the current term (UTC, end exclusive);
    ``renewals`` counts the renewals since the (last) join; ``price`` is what the current
    term cost, in ``currency`` (the program's)."""

    program: str
    user_id: str
    plan_id: str
    status: str
    joined_at: datetime
    term_start: datetime
    term_end: datetime
    auto_renew: bool
    renewals: int
    price: float
    currency: str
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        for name in ("joined_at", "term_start", "term_end"):
            out[name] = out[name].isoformat()
        return out


@dataclass(frozen=True)
class MembershipEvent:
    """One change of a membership: ``kind`` (join, renewal, cancel, lapse, reminder),
    when (``at``), the term it concerns, the ``amount`` booked (the price paid by a join
    or a renewal, else 0) and the warehouse ``event_id``."""

    key: str
    kind: str
    program: str
    user_id: str
    plan_id: str
    at: datetime
    term_start: datetime | None
    term_end: datetime | None
    amount: float
    currency: str
    event_id: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        for name in ("at", "term_start", "term_end"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


@dataclass(frozen=True)
class SettleResult:
    """What :func:`lapse_due` did: the automatic renewals and the lapses it recorded
    (new ones only; a second run finds none), and how many events it wrote to the
    warehouse (including any an earlier interrupted run had not)."""

    as_of: datetime
    renewed: tuple[MembershipEvent, ...] = ()
    lapsed: tuple[MembershipEvent, ...] = ()
    published: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "renewed": [e.to_dict() for e in self.renewed],
            "lapsed": [e.to_dict() for e in self.lapsed],
            "published": self.published,
        }


@dataclass(frozen=True)
class ReminderResult:
    """What :func:`renewal_reminders` did: the reminders it recorded now (a term gets one
    reminder, ever), how many were already recorded, and the events written."""

    as_of: datetime
    reminders: tuple[MembershipEvent, ...] = ()
    already: int = 0
    published: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "reminders": [e.to_dict() for e in self.reminders],
            "already": self.already,
            "published": self.published,
        }


@dataclass
class _Run:
    """The events one write transaction added (published after it commits)."""

    events: list[LoyaltyMembershipEvent] = field(default_factory=list)


# -- writes -------------------------------------------------------------------------------


def join(
    ws: Any,
    user_id: str,
    plan_id: str,
    *,
    key: str,
    at: datetime | None = None,
    program: str = DEFAULT_PROGRAM,
    publish: bool = True,
) -> Membership:
    """Make ``user_id`` a member of ``plan_id`` from ``at`` (default now) under ``key``.

    The first term runs from ``at`` for the plan's term (calendar months or days in the
    program's time zone); the plan's price is booked in the program currency. Refused
    (:class:`MembershipRefused`) for an unknown plan (with the nearest plan id), and when
    the customer already has a running membership (active or cancelled, before its
    term's end) in the program. A membership that lapsed may be joined again: a new term
    from ``at``. ``publish=False`` leaves the warehouse event to
    :func:`publish_membership_events` (for bulk callers).
    """
    prog = active_program(ws, program)
    plan = _plan(prog, plan_id)
    moment_given = _check_write(user_id, key, at)
    request = _request("join", program, user_id, plan_id, moment_given)
    run = _Run()

    def body(s: Session, now: datetime) -> Membership:
        moment = _moment(moment_given, now)
        _lock_user(s, program, user_id)
        if (done := _find(s, key)) is not None:
            return _replayed(s, done, request, run)
        rows = _rows(s, program, user_id)
        for row in rows:
            run.events += _settle(s, row, prog, moment, now)
        running = [r for r in rows if r.status in _RUNNING and r.term_end > moment]
        if running:
            r = running[0]
            state = "cancelled; it ends" if r.status == "cancelled" else "running until"
            raise MembershipRefused(
                f"user {user_id!r} is already a member of plan {r.plan_id!r} in program "
                f"{program!r} ({state} {_day(r.term_end, prog)}); nothing was written (key "
                f"{key!r} was not used). Renew that membership instead, or join again once "
                "it has ended"
            )
        end = _term_end(moment, plan, 1, prog.timezone)
        found = next((r for r in rows if r.plan_id == plan_id), None)
        row = found or LoyaltyMembership(
            program=program, user_id=user_id, plan_id=plan_id, version=0
        )
        if found is None:
            s.add(row)
        row.status, row.joined_at, row.term_start, row.term_end = "active", moment, moment, end
        row.auto_renew, row.renewals = plan.auto_renew, 0
        row.price, row.currency = float(plan.price), prog.currency
        row.version += 1
        row.updated_at = now
        s.flush()
        run.events.append(
            _event(s, row, key, request, "join", moment, moment, end, float(plan.price))
        )
        return _membership(row)

    return _commit(ws, run, body, publish=publish)


def renew(
    ws: Any,
    user_id: str,
    plan_id: str | None = None,
    *,
    key: str,
    at: datetime | None = None,
    program: str = DEFAULT_PROGRAM,
    publish: bool = True,
) -> Membership:
    """Renew ``user_id``'s running membership (of ``plan_id``, or the one they hold) by one
    term from its current term's end — not from now — charging the plan's price in force.

    Refused (:class:`MembershipRefused`) when the customer has no membership, when it was
    cancelled (it stays active to its end; join again after) or has lapsed (join again),
    and when the plan is no longer in the program.
    """
    prog = active_program(ws, program)
    moment_given = _check_write(user_id, key, at)
    request = _request("renew", program, user_id, plan_id, moment_given)
    run = _Run()

    def body(s: Session, now: datetime) -> Membership:
        moment = _moment(moment_given, now)
        _lock_user(s, program, user_id)
        if (done := _find(s, key)) is not None:
            return _replayed(s, done, request, run)
        row = _current(s, prog, program, user_id, plan_id, moment, now, run, "renewed", key)
        if row.status == "cancelled":
            raise MembershipRefused(
                f"the membership of {user_id!r} in plan {row.plan_id!r} was cancelled and "
                f"stays active until {_day(row.term_end, prog)}; a cancelled membership "
                f"cannot be renewed (key {key!r} was not used). Join the plan again once it "
                f"has ended: liucun loyalty member join {user_id} {row.plan_id} --key …"
            )
        plan = _plan(prog, row.plan_id)
        start = row.term_end
        end = _next_end(row, plan, prog.timezone)
        _extend(row, plan, end, now)
        run.events.append(
            _event(s, row, key, request, "renewal", moment, start, end, float(plan.price))
        )
        return _membership(row)

    return _commit(ws, run, body, publish=publish)


def cancel(
    ws: Any,
    user_id: str,
    plan_id: str | None = None,
    *,
    key: str,
    at: datetime | None = None,
    program: str = DEFAULT_PROGRAM,
    publish: bool = True,
) -> Membership:
    """Stop the automatic renewal of ``user_id``'s running membership: it stays active to
    the end of the term already paid, then lapses. Nothing is refunded. Refused when there
    is no running membership or it is already cancelled."""
    prog = active_program(ws, program)
    moment_given = _check_write(user_id, key, at)
    request = _request("cancel", program, user_id, plan_id, moment_given)
    run = _Run()

    def body(s: Session, now: datetime) -> Membership:
        moment = _moment(moment_given, now)
        _lock_user(s, program, user_id)
        if (done := _find(s, key)) is not None:
            return _replayed(s, done, request, run)
        row = _current(s, prog, program, user_id, plan_id, moment, now, run, "cancelled", key)
        if row.status == "cancelled":
            raise MembershipRefused(
                f"the membership of {user_id!r} in plan {row.plan_id!r} is already "
                f"cancelled; it ends on {_day(row.term_end, prog)} (key {key!r} was not "
                "used)"
            )
        row.status, row.auto_renew = "cancelled", False
        row.version += 1
        row.updated_at = now
        run.events.append(
            _event(s, row, key, request, "cancel", moment, row.term_start, row.term_end, 0.0)
        )
        return _membership(row)

    return _commit(ws, run, body, publish=publish)


def lapse_due(
    ws: Any,
    *,
    as_of: datetime | date | None = None,
    program: str = DEFAULT_PROGRAM,
    on_progress: Callable[[int, int], None] | None = None,
) -> SettleResult:
    """Settle every membership whose term ended by ``as_of`` (default now; never later
    than now): an ``auto_renew`` membership that was not cancelled renews at its term's
    end (as many terms as ended), any other lapses at its term's end. Idempotent: the
    events are keyed by membership and term, so a second run writes nothing. One state
    transaction per membership; then the warehouse events (also those an interrupted
    earlier run left unwritten)."""
    cutoff = _cutoff(ws, as_of)
    prog = active_program(ws, program)
    with ws.state.read() as s:
        ids = list(
            s.scalars(
                select(LoyaltyMembership.id)
                .where(
                    LoyaltyMembership.program == program,
                    LoyaltyMembership.status.in_(_RUNNING),
                    LoyaltyMembership.term_end <= cutoff,
                )
                .order_by(LoyaltyMembership.id)
            ).all()
        )
    written: list[MembershipEvent] = []
    for done, membership_id in enumerate(ids):
        if on_progress is not None:
            on_progress(done, len(ids))

        def body(s: Session, now: datetime, membership_id: int = membership_id) -> list[Any]:
            row = s.get(LoyaltyMembership, membership_id)
            if row is None:  # pragma: no cover - rows are never deleted
                return []
            _lock_user(s, program, row.user_id)
            s.refresh(row)
            return [_as_event(e, row) for e in _settle(s, row, prog, cutoff, now)]

        written += _write(ws, body)
    if on_progress is not None:
        on_progress(len(ids), len(ids))
    return SettleResult(
        as_of=cutoff,
        renewed=tuple(e for e in written if e.kind == "renewal"),
        lapsed=tuple(e for e in written if e.kind == "lapse"),
        published=publish_membership_events(ws, program=program),
    )


def renewal_reminders(
    ws: Any, *, as_of: datetime | date | None = None, program: str = DEFAULT_PROGRAM
) -> ReminderResult:
    """One reminder per term of every active (not cancelled) membership whose term ends
    within its plan's ``reminder_days`` of ``as_of`` (default now; never later).

    The reminder is due exactly ``reminder_days`` calendar days (program time zone)
    before the term's end — at the term's start when the term is shorter — and is
    recorded at that moment (key ``reminder:<membership>:<term end>``), then written to
    the warehouse as a ``membership_renewal_due`` event for journeys to trigger on. A plan
    with ``reminder_days: 0`` sends none. Running it again adds nothing.
    """
    cutoff = _cutoff(ws, as_of)
    prog = active_program(ws, program)
    plans = {p.id: p for p in prog.plans}
    with ws.state.read() as s:
        rows = s.scalars(
            select(LoyaltyMembership)
            .where(
                LoyaltyMembership.program == program,
                LoyaltyMembership.status == "active",
                LoyaltyMembership.term_end > cutoff,
            )
            .order_by(LoyaltyMembership.id)
        ).all()
        due = [
            (r.id, r.term_end, when)
            for r in rows
            if r.plan_id in plans
            and (when := _reminder_at(r, plans[r.plan_id], prog.timezone)) is not None
            and when <= cutoff
        ]
    added: list[MembershipEvent] = []
    already = 0
    for membership_id, term_end, when in due:
        key = f"reminder:{membership_id}:{term_end.isoformat()}"

        def body(
            s: Session,
            now: datetime,
            mid: int = membership_id,
            at: datetime = when,
            key: str = key,
            term_end: datetime = term_end,
        ) -> Any:
            row = s.get(LoyaltyMembership, mid)
            if row is None:  # pragma: no cover - rows are never deleted
                return False
            _lock_user(s, program, row.user_id)
            if _find(s, key) is not None:
                return None
            s.refresh(row)
            if row.status != "active" or as_utc(row.term_end) != as_utc(term_end):
                return False  # renewed early or cancelled since: no reminder for that term
            request = {"op": "reminder", "membership_id": mid, "term_end": row.term_end}
            event = _event(s, row, key, request, "reminder", at, row.term_start, row.term_end, 0.0)
            return _as_event(event, row)

        event = _write(ws, body)
        if event is None:
            already += 1
        elif event is not False:
            added.append(event)
    return ReminderResult(
        as_of=cutoff,
        reminders=tuple(added),
        already=already,
        published=publish_membership_events(ws, program=program),
    )


def publish_membership_events(ws: Any, *, program: str = DEFAULT_PROGRAM) -> int:
    """Write to the warehouse every membership event of ``program`` it does not hold yet
    (after ``publish=False`` writes, or a crash between the state commit and the load);
    returns how many were written."""
    with ws.state.read() as s:
        rows = list(
            s.scalars(
                select(LoyaltyMembershipEvent)
                .join(
                    LoyaltyMembership, LoyaltyMembership.id == LoyaltyMembershipEvent.membership_id
                )
                .where(LoyaltyMembership.program == program)
                .order_by(LoyaltyMembershipEvent.id)
            ).all()
        )
    if not rows:
        return 0
    t = ws.table("events")
    held = t.filter(t.event_type.isin(list(MEMBERSHIP_EVENT_TYPES))).select("event_id")
    present = set(held.to_pyarrow().column(0).to_pylist())
    return _publish(ws, [r for r in rows if r.event_id not in present])


# -- reads --------------------------------------------------------------------------------


def memberships(
    ws: Any,
    *,
    program: str = DEFAULT_PROGRAM,
    user_id: str | None = None,
    status: str | None = None,
) -> list[Membership]:
    """The memberships of ``program`` (of one customer, or with one status), by user."""
    query = select(LoyaltyMembership).where(LoyaltyMembership.program == program)
    if user_id is not None:
        query = query.where(LoyaltyMembership.user_id == user_id)
    if status is not None:
        query = query.where(LoyaltyMembership.status == status)
    with ws.state.read() as s:
        rows = s.scalars(query.order_by(LoyaltyMembership.user_id, LoyaltyMembership.plan_id)).all()
        return [_membership(r) for r in rows]


def membership_events(ws: Any, *, program: str = DEFAULT_PROGRAM) -> list[MembershipEvent]:
    """Every membership event of ``program``, oldest first (the analytics' input)."""
    with ws.state.read() as s:
        pairs = s.execute(
            select(LoyaltyMembershipEvent, LoyaltyMembership)
            .join(LoyaltyMembership, LoyaltyMembership.id == LoyaltyMembershipEvent.membership_id)
            .where(LoyaltyMembership.program == program)
            .order_by(LoyaltyMembershipEvent.at, LoyaltyMembershipEvent.id)
        ).all()
        return [_as_event(e, m) for e, m in pairs]


# -- terms --------------------------------------------------------------------------------


def term_end(start: datetime, plan: Plan, *, terms: int = 1, timezone: str = "UTC") -> datetime:
    """The end of the ``terms``-th term of ``plan`` anchored at ``start``: ``terms`` ×
    the plan's term later on the calendar of ``timezone`` (a month's day clamped to the
    month's end), at the same local time of day.

    >>> from datetime import UTC
    >>> p = Plan(id="m", name="monthly", price=9, term={"amount": 1, "unit": "months"})
    >>> [term_end(datetime(2026, 1, 31, 2, tzinfo=UTC), p, terms=n).date().isoformat()
    ...  for n in (1, 2, 3)]
    ['2026-02-28', '2026-03-31', '2026-04-30']
    """
    return _term_end(start, plan, terms, timezone)


def _term_end(start: datetime, plan: Plan, terms: int, timezone: str) -> datetime:
    n = plan.term.amount * terms
    if plan.term.unit == "months":
        return valid_until(start, months=n, timezone=timezone)
    return valid_until(start, days=n, timezone=timezone)


def _next_end(row: LoyaltyMembership, plan: Plan, timezone: str) -> datetime:
    """The end of the term after the current one, anchored on the join (a plan whose term
    was shortened since falls back to one term after the current end)."""
    end = _term_end(row.joined_at, plan, row.renewals + 2, timezone)
    return end if end > row.term_end else _term_end(row.term_end, plan, 1, timezone)


def _reminder_at(row: LoyaltyMembership, plan: Plan, timezone: str) -> datetime | None:
    if plan.reminder_days <= 0:
        return None
    zone = ZoneInfo(timezone)
    local = row.term_end.astimezone(zone)
    before = (local.replace(tzinfo=None) - timedelta(days=plan.reminder_days)).replace(tzinfo=zone)
    return max(as_utc(before), row.term_start)


# -- helpers ------------------------------------------------------------------------------


def _settle(
    s: Session, row: LoyaltyMembership, prog: Program, upto: datetime, now: datetime
) -> list[LoyaltyMembershipEvent]:
    """Renew (auto-renewal) or lapse ``row``'s terms that ended by ``upto``."""
    out: list[LoyaltyMembershipEvent] = []
    plans = {p.id: p for p in prog.plans}
    while row.status in _RUNNING and row.term_end <= upto:
        plan = plans.get(row.plan_id)
        start = row.term_end
        if row.status == "active" and row.auto_renew and plan is not None:
            end = _next_end(row, plan, prog.timezone)
            key = f"auto-renewal:{row.id}:{start.isoformat()}"
            request = {"op": "auto_renew", "membership_id": row.id, "term_start": start}
            _extend(row, plan, end, now)
            out.append(_event(s, row, key, request, "renewal", start, start, end, row.price))
        else:
            key = f"lapse:{row.id}:{start.isoformat()}"
            request = {"op": "lapse", "membership_id": row.id, "term_end": start}
            row.status = "lapsed"
            row.version += 1
            row.updated_at = now
            out.append(_event(s, row, key, request, "lapse", start, row.term_start, start, 0.0))
    return out


def _extend(row: LoyaltyMembership, plan: Plan, end: datetime, now: datetime) -> None:
    row.term_start, row.term_end = row.term_end, end
    row.renewals += 1
    row.price = float(plan.price)
    row.version += 1
    row.updated_at = now


def _current(
    s: Session,
    prog: Program,
    program: str,
    user_id: str,
    plan_id: str | None,
    moment: datetime,
    now: datetime,
    run: _Run,
    verb: str,
    key: str,
) -> LoyaltyMembership:
    """The customer's running membership (of ``plan_id`` when given) after settling, or a
    refusal saying why there is none and what to do."""
    rows = _rows(s, program, user_id)
    for row in rows:
        run.events += _settle(s, row, prog, moment, now)
    if plan_id is not None:
        rows = [r for r in rows if r.plan_id == plan_id]
    running = [r for r in rows if r.status in _RUNNING]
    if running:
        return running[0]
    join_hint = f"liucun loyalty member join {user_id} {plan_id or 'PLAN'} --key …"
    if rows:
        last = max(rows, key=lambda r: r.term_end)
        raise MembershipRefused(
            f"the membership of {user_id!r} in plan {last.plan_id!r} lapsed on "
            f"{_day(last.term_end, prog)}, so it cannot be {verb} (key {key!r} was not "
            f"used); join again to start a new term: {join_hint}"
        )
    of_plan = f" of plan {plan_id!r}" if plan_id else ""
    raise MembershipRefused(
        f"user {user_id!r} is not a member{of_plan} in program {program!r}, so there is "
        f"nothing to be {verb} (key {key!r} was not used); join first: {join_hint}"
    )


def _event(
    s: Session,
    row: LoyaltyMembership,
    key: str,
    request: dict[str, Any],
    kind: str,
    at: datetime,
    start: datetime | None,
    end: datetime | None,
    amount: float,
) -> LoyaltyMembershipEvent:
    event = LoyaltyMembershipEvent(
        key=key,
        request=_canonical(request),
        membership_id=row.id,
        kind=kind,
        at=at,
        term_start=start,
        term_end=end,
        amount=float(amount),
        currency=row.currency,
    )
    s.add(event)
    s.flush()
    event.event_id = f"loyalty:{row.program}:membership:{event.id}"
    s.flush()
    return event


def _publish(ws: Any, events: Iterable[LoyaltyMembershipEvent]) -> int:
    """Load ``events`` into the warehouse ``events`` table (their ids make it idempotent:
    an event already there is a duplicate and adds nothing)."""
    events = list(events)
    if not events:
        return 0
    from liucun.ingest import IngestOptions, ingest_tables

    with ws.state.read() as s:
        owners = {
            m.id: m
            for m in s.scalars(
                select(LoyaltyMembership).where(
                    LoyaltyMembership.id.in_(sorted({e.membership_id for e in events}))
                )
            ).all()
        }
    table = pa.table(
        {
            "event_id": [e.event_id for e in events],
            "user_id": [owners[e.membership_id].user_id for e in events],
            "event_type": [EVENT_TYPES[e.kind] for e in events],
            "ts": pa.array([as_utc(e.at) for e in events], type=pa.timestamp("us", tz="UTC")),
            "properties": [_properties(e, owners[e.membership_id]) for e in events],
        }
    )
    options = IngestOptions(custom_event_types=MEMBERSHIP_EVENT_TYPES, clock=ws.clock)
    ingest_tables(ws.warehouse, events=table, source="loyalty memberships", options=options)
    return len(events)


def _properties(e: LoyaltyMembershipEvent, m: LoyaltyMembership) -> str:
    """The event's properties: only what never changes after it is written."""
    return json.dumps(
        {
            "program": m.program,
            "plan_id": m.plan_id,
            "key": e.key,
            "term_start": None if e.term_start is None else as_utc(e.term_start).isoformat(),
            "term_end": None if e.term_end is None else as_utc(e.term_end).isoformat(),
            "amount": e.amount,
            "currency": e.currency,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def _commit(ws: Any, run: _Run, body: Callable[[Session, datetime], Any], *, publish: bool) -> Any:
    """``body`` in one write transaction (the run's events reset on each attempt: a
    retried transaction starts over), then its events to the warehouse if ``publish``."""

    def attempt(s: Session, now: datetime) -> Any:
        run.events.clear()
        return body(s, now)

    result = _write(ws, attempt)
    if publish:
        _publish(ws, run.events)
    return result


def _replayed(
    s: Session, done: LoyaltyMembershipEvent, request: dict[str, Any], run: _Run
) -> Membership:
    row = s.get(LoyaltyMembership, done.membership_id)
    assert row is not None
    _same_request(done.key, done.request, request, row.user_id)
    run.events.append(done)  # written again to the warehouse: heals a crash after commit
    result = _membership(row)
    return Membership(**{**result.__dict__, "replayed": True})


def _find(s: Session, key: str) -> LoyaltyMembershipEvent | None:
    return s.scalar(select(LoyaltyMembershipEvent).where(LoyaltyMembershipEvent.key == key))


def _rows(s: Session, program: str, user_id: str) -> list[LoyaltyMembership]:
    return list(
        s.scalars(
            select(LoyaltyMembership)
            .where(LoyaltyMembership.program == program, LoyaltyMembership.user_id == user_id)
            .order_by(LoyaltyMembership.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    )


def _lock_user(s: Session, program: str, user_id: str) -> None:
    """Serialize the membership writes of one customer (PostgreSQL: an advisory lock to
    the end of the transaction, which also covers a customer without a row yet; SQLite's
    ``BEGIN IMMEDIATE`` serialized us already)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
            {"n": f"liucun.memberships:{program}:{user_id}"},
        )


def _plan(prog: Program, plan_id: str) -> Plan:
    for p in prog.plans:
        if p.id == plan_id:
            return p
    ids = sorted(p.id for p in prog.plans)
    near = difflib.get_close_matches(str(plan_id), ids, n=1, cutoff=0.5)
    tip = f" (did you mean {near[0]!r}?)" if near else ""
    raise MembershipRefused(
        f"program {prog.name!r} has no plan {plan_id!r}{tip}; its plans are "
        f"{ids or 'none (define them under plans in the program file)'}",
        hint=Hint(option="plan_id", example=near[0] if near else (ids[0] if ids else None)),
    )


def _check_write(user_id: str, key: str, at: datetime | None) -> datetime | None:
    _check_user(user_id)
    _check_key(key)
    return None if at is None else _aware(at, "at")


def _moment(given: datetime | None, now: datetime) -> datetime:
    if given is None:
        return now
    if given > now:
        raise MembershipRefused(
            f"at {given.isoformat()} is after now ({now.isoformat()}): a membership change "
            "is recorded when it happens, not ahead of time; pass a moment up to now"
        )
    return given


def _cutoff(ws: Any, as_of: datetime | date | None) -> datetime:
    now = as_utc(ws.clock.now())
    if as_of is None:
        return now
    cutoff = as_utc(as_of)
    if cutoff > now:
        raise ConfigError(
            f"as_of {cutoff.isoformat()} is after now ({now.isoformat()}): terms are "
            "settled and reminders sent when they are due, not ahead of time; pass a day "
            "up to today",
            hint=Hint(option="as_of", example=f"{now:%Y-%m-%d}"),
        )
    return cutoff


def _request(
    op: str, program: str, user_id: str, plan_id: str | None, at: datetime | None
) -> dict[str, Any]:
    return {
        "op": op,
        "program": program,
        "user_id": user_id,
        "plan_id": plan_id,
        "at": None if at is None else at.isoformat(),
    }


def _day(at: datetime, prog: Program) -> str:
    return f"{as_utc(at).astimezone(ZoneInfo(prog.timezone)):%Y-%m-%d %H:%M} ({prog.timezone})"


def _membership(row: LoyaltyMembership) -> Membership:
    return Membership(
        program=row.program,
        user_id=row.user_id,
        plan_id=row.plan_id,
        status=row.status,
        joined_at=as_utc(row.joined_at),
        term_start=as_utc(row.term_start),
        term_end=as_utc(row.term_end),
        auto_renew=bool(row.auto_renew),
        renewals=row.renewals,
        price=row.price,
        currency=row.currency,
    )


def _as_event(e: LoyaltyMembershipEvent, m: LoyaltyMembership) -> MembershipEvent:
    return MembershipEvent(
        key=e.key,
        kind=e.kind,
        program=m.program,
        user_id=m.user_id,
        plan_id=m.plan_id,
        at=as_utc(e.at),
        term_start=None if e.term_start is None else as_utc(e.term_start),
        term_end=None if e.term_end is None else as_utc(e.term_end),
        amount=e.amount,
        currency=e.currency,
        event_id=e.event_id or "",
    )
