"""``accrue``: what the program in force earns from the warehouse, written to the ledger.

One run (``liucun loyalty accrue``):

1. reads the identity-resolved events (``ws.events()``: an offline-store card, a
   mini-program or app id merged by ingest earns into the canonical customer's one
   account) before ``as_of`` (default now), and plans them with
   :func:`~liucun.loyalty.plan_accrual` over the whole history (caps and the first
   order need it), with each member's stored tier for tier multipliers;
2. selects the rows whose event is at or after ``since`` — by default the ``until`` of
   the program's last finished run (the first run takes everything);
3. turns them into ledger operations: an earn row is an award keyed ``accrue:<event
   id>:<rule>`` (pending until released when its order awaits delivery, or until its
   ``available_at``), a refund row a share reversal of what its order's row booked under
   the program's ``return_policy`` (:func:`~liucun.loyalty.reverse_share`), and points
   still waiting for a delivery that has now arrived are released at the delivery's
   time with their validity from then;
4. writes them in batches (:mod:`liucun.loyalty._batch`) and records the run in
   ``loyalty_accrual_runs``.

Keys make it idempotent: a second run writes nothing. A key already booked with other
figures (the tier or the program changed since) keeps what was booked and is counted
as drifted. ``dry_run`` does all of it in a transaction that is rolled back.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._batch import apply_batch
from liucun.loyalty._models import ON_RELEASE, UNTIL_RELEASED
from liucun.loyalty._ops import Earn, Op, Outcome, Release, ShareBack
from liucun.loyalty._rules import plan_accrual
from liucun.loyalty._tier_store import current_tiers
from liucun.state import LoyaltyAccrualRun, LoyaltyLot, LoyaltyTransaction, current_actor

#: Prefix of the keys accrual writes (``accrue:<event id>:<rule>``).
ACCRUAL_KEY_PREFIX = "accrue:"
#: Suffix of the key of the release of an accrued award's pending points.
RELEASE_SUFFIX = ":released"
_SAMPLE = 20


@dataclass(frozen=True)
class AccrualResult:
    """What one accrual run did (or, with ``dry_run``, would do).

    ``written`` ledger writes, of which ``released`` releases of pending points;
    ``replayed`` keys already written; ``drifted`` keys written earlier with other
    figures (kept as booked); ``skipped`` refunds or releases with nothing to act on;
    ``limited``: refunds the return policy did not let take all they claimed, and
    ``limited_points`` the points left with the member. ``by_rule`` gives, per rule,
    the written rows and their points and growth (refunds negative).
    """

    program: str
    program_digest: str
    since: datetime | None
    until: datetime
    dry_run: bool
    events_read: int
    rows_planned: int
    written: int
    replayed: int
    drifted: int
    skipped: int
    released: int
    limited: int
    limited_points: int
    points: int
    growth: int
    run_id: int | None = None
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = None if self.since is None else self.since.isoformat()
        out["until"] = self.until.isoformat()
        return out


def accrue(
    ws: Any,
    *,
    program: str = "default",
    since: datetime | date | None = None,
    as_of: datetime | date | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 2000,
) -> AccrualResult:
    """Accrue what ``program`` earns from the warehouse's events (see the module
    docstring). ``on_progress(step, done, total)`` is called with ``"plan"`` and
    ``"write"`` steps."""
    prog = active_program(ws, program)
    now = as_utc(ws.clock.now())
    until = now if as_of is None else as_utc(as_of)
    if until > now:
        raise ConfigError(
            f"as_of {until.isoformat()} is after now ({now.isoformat()}): points cannot be "
            "accrued for events that have not happened; pass a day up to today",
            hint=Hint(option="as_of", example=f"{now:%Y-%m-%d}"),
        )
    last = last_run(ws, program)
    start = as_utc(since) if since is not None else (None if last is None else last["until"])

    def step(name: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(name, done, total)

    step("plan", 0, 1)
    events = ws.events()
    events = events.filter(events.ts < until)
    events_read = int(events.count().to_pyarrow().as_py())
    plan = plan_accrual(
        events, prog, tiers_by_user=current_tiers(ws, program), fx_rates=ws.table("fx_rates")
    )
    ops = accrual_ops(
        plan,
        since=start,
        policy=prog.points.return_policy,
        pending=pending_keys(ws, program),
        released=released_keys(ws, program),
    )
    step("plan", 1, 1)
    started = now
    run_id = None
    if not dry_run:
        run_id = _start_run(ws, program, prog.digest, start, until, events_read, len(ops), now)
    try:
        outcomes = apply_batch(
            ws,
            ops,
            program=program,
            batch_size=batch_size,
            dry_run=dry_run,
            on_progress=lambda done, total: step("write", done, total),
        )
    except Exception as exc:
        if run_id is not None:
            _finish_run(ws, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    result = summarize(
        outcomes,
        program=program,
        program_digest=prog.digest,
        since=start,
        until=until,
        dry_run=dry_run,
        events_read=events_read,
        rows_planned=len(ops),
        run_id=run_id,
    )
    if run_id is not None:
        details = {
            "by_rule": result.by_rule,
            "limited_points": result.limited_points,
            "released": result.released,
            "drifted": result.drifted,
            "skipped": result.skipped,
            "points": result.points,
            "growth": result.growth,
            "notes": result.notes,
            "started_at": started.isoformat(),
        }
        _finish_run(ws, run_id, "finished", details, result)
    return result


def accrual_ops(
    plan: pd.DataFrame,
    *,
    since: datetime | None,
    policy: str,
    pending: set[str] | None = None,
    released: set[str] | None = None,
) -> list[Op]:
    """The ledger operations for an unfiltered plan's rows at or after ``since``, and
    the releases of the ``pending`` award keys whose order was delivered since, in the
    order of their events. An award booked pending until released (``pending`` and
    ``released`` keys) is asked for again as it was booked, so that it replays."""
    at = None if since is None else pd.Timestamp(as_utc(since))
    order: list[tuple[Any, int, Op]] = []
    earn = plan[plan.kind == "earn"]
    refunds = plan[plan.kind == "reversal"]
    chosen = earn if at is None else earn[earn.ts >= at]
    ts = _datetimes(chosen.ts)
    available = _datetimes(chosen.available_at)
    expires = _datetimes(chosen.expires_at)
    held = (pending or set()) | (released or set())
    for i, row in enumerate(chosen.itertuples(index=False)):
        if row.key in held:  # booked until its delivery: the request it was booked with
            available[i], expires[i] = None, None
        order.append(
            (
                ts[i],
                len(order),
                Earn(
                    key=row.key,
                    user_id=row.user_id,
                    points=int(row.points),
                    growth=int(row.growth),
                    available_at=ON_RELEASE if available[i] is None else available[i],
                    expires_at=expires[i],
                    earned_at=ts[i],
                    reason=f"{row.rule}: event {row.source_event_id}",
                    rule=row.rule,
                ),
            )
        )
    if not refunds.empty:
        booked = earn.set_index("key")[["points", "growth"]]
        cum = refunds.assign(p=-refunds.points, g=-refunds.growth).groupby("reverses_key")
        refunds = refunds.assign(cum_p=cum.p.cumsum(), cum_g=cum.g.cumsum())
        if at is not None:
            refunds = refunds[refunds.ts >= at]
        planned = booked.reindex(refunds.reverses_key.to_numpy()).fillna(0)
        rts = _datetimes(refunds.ts)
        for i, (row, p_all, g_all) in enumerate(
            zip(
                refunds.itertuples(index=False),
                planned.points.to_numpy(),
                planned.growth.to_numpy(),
                strict=True,
            )
        ):
            order.append(
                (
                    rts[i],
                    len(order),
                    ShareBack(
                        key=row.key,
                        original_key=row.reverses_key,
                        points_share=_share(int(row.cum_p), int(p_all)),
                        growth_share=_share(int(row.cum_g), int(g_all)),
                        policy=row.return_policy or policy,
                        at=rts[i],
                        reason=f"{row.rule}: refund {row.source_event_id} of {row.order_id}",
                        rule=row.rule,
                    ),
                )
            )
    if pending:
        freed = earn[earn.key.isin(pending) & earn.available_at.notna()]
        fa = _datetimes(freed.available_at)
        fe = _datetimes(freed.expires_at)
        for i, row in enumerate(freed.itertuples(index=False)):
            when = fa[i]
            order.append(
                (
                    when,
                    len(order),
                    Release(
                        key=f"{row.key}{RELEASE_SUFFIX}",
                        original_key=row.key,
                        available_at=when,
                        expires_at=fe[i],
                        reason=f"{row.rule}: order {row.order_id} delivered",
                        rule=row.rule,
                    ),
                )
            )
    order.sort(key=lambda item: (item[0], item[1]))
    return [op for _, _, op in order]


def pending_keys(ws: Any, program: str) -> set[str]:
    """Keys of accrued awards in ``program`` whose points still wait for a release."""
    T, L = LoyaltyTransaction, LoyaltyLot
    with ws.state.read() as s:
        return set(
            s.scalars(
                select(T.key)
                .join(L, L.transaction_id == T.id)
                .where(
                    T.program == program,
                    T.key.startswith(ACCRUAL_KEY_PREFIX),
                    L.available_at == UNTIL_RELEASED,
                )
            )
        )


def released_keys(ws: Any, program: str) -> set[str]:
    """Keys of accrued awards in ``program`` that waited for a release and got it."""
    T = LoyaltyTransaction
    with ws.state.read() as s:
        keys = s.scalars(
            select(T.key).where(
                T.program == program,
                T.kind == "release",
                T.key.startswith(ACCRUAL_KEY_PREFIX),
                T.key.endswith(RELEASE_SUFFIX),
            )
        )
        return {k.removesuffix(RELEASE_SUFFIX) for k in keys}


def last_run(ws: Any, program: str) -> dict[str, Any] | None:
    """The program's last finished accrual run (``id``, ``since``, ``until``, …), or None."""
    R = LoyaltyAccrualRun
    with ws.state.read() as s:
        row = s.scalar(
            select(R)
            .where(R.program == program, R.status == "finished")
            .order_by(R.until.desc(), R.id.desc())
            .limit(1)
        )
        if row is None:
            return None
        return {
            "id": row.id,
            "since": row.since,
            "until": row.until,
            "written": row.written,
            "replayed": row.replayed,
            "limited": row.limited,
            "details": json.loads(row.details),
            "finished_at": row.finished_at,
        }


def summarize(outcomes: list[Outcome], **head: Any) -> AccrualResult:
    """An :class:`AccrualResult` from a run's outcomes."""
    by_rule: defaultdict[str, dict[str, int]] = defaultdict(
        lambda: {"rows": 0, "points": 0, "growth": 0, "limited": 0, "limited_points": 0}
    )
    count: defaultdict[str, int] = defaultdict(int)
    released = limited = limited_points = points = growth = 0
    notes: list[str] = []
    for o in outcomes:
        count[o.status] += 1
        if o.status == "skipped" and o.note and len(notes) < _SAMPLE:
            notes.append(o.note)
        if o.status != "written":
            continue
        released += o.op == "release"
        figures = by_rule[o.rule]
        figures["rows"] += 1
        figures["points"] += o.points
        figures["growth"] += o.growth
        points += o.points
        growth += o.growth
        if o.limited:
            figures["limited"] += 1
            figures["limited_points"] += o.limited
            limited += 1
            limited_points += o.limited
    return AccrualResult(
        **head,
        written=count["written"],
        replayed=count["replayed"],
        drifted=count["drifted"],
        skipped=count["skipped"],
        released=released,
        limited=limited,
        limited_points=limited_points,
        points=points,
        growth=growth,
        by_rule=dict(sorted(by_rule.items())),
        notes=notes,
    )


# -- the runs' table ------------------------------------------------------------------------


def _start_run(
    ws: Any,
    program: str,
    digest: str,
    since: datetime | None,
    until: datetime,
    events_read: int,
    planned: int,
    now: datetime,
) -> int:
    with ws.state.write() as s:
        row = LoyaltyAccrualRun(
            program=program,
            program_digest=digest,
            since=since,
            until=until,
            status="running",
            events_read=events_read,
            rows_planned=planned,
            written=0,
            replayed=0,
            limited=0,
            details="{}",
            started_at=now,
            finished_at=None,
            started_by=current_actor(),
        )
        s.add(row)
        s.flush()
        return int(row.id)


def _finish_run(
    ws: Any,
    run_id: int,
    status: str,
    details: dict[str, Any],
    result: AccrualResult | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "details": json.dumps(details, ensure_ascii=False, sort_keys=True),
        "finished_at": as_utc(ws.clock.now()),
    }
    if result is not None:
        values.update(written=result.written, replayed=result.replayed, limited=result.limited)
    with ws.state.write() as s:
        s.execute(update(LoyaltyAccrualRun).where(LoyaltyAccrualRun.id == run_id).values(**values))


def _datetimes(values: pd.Series) -> list[datetime | None]:
    """UTC instants as aware datetimes (None for NaT)."""
    stamps = pd.to_datetime(values, utc=True)
    return [None if pd.isna(v) else v.to_pydatetime() for v in stamps]


def _share(part: int, whole: int) -> Fraction:
    """``part / whole`` as an exact fraction within 0..1 (0 when the order earned none)."""
    if whole <= 0:
        return Fraction(0)
    return min(Fraction(max(part, 0), whole), Fraction(1))
