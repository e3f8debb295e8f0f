"""Loss aversion: the silence warning, the decay of idle points and the recall package.

**Idle** is defined in :mod:`liucun.loyalty._idle`: the days since the member's last
activity (an event in the warehouse, a ledger earning or spending), on the program time
zone's calendar, for members holding available points.

**An idle spell** runs from a last activity to the next activity; it is named by the
local date of that last activity. Every rule acts at most once per spell (the decay once
per period of it), under keys built from the spell, so running the rules again — at the
same ``as_of`` or later — adds nothing that was already done, and a new activity starts
a new spell.

1. **Silence warning**: a member idle for ``silence_warning_days`` (30) days or more gets
   one warning per spell (``loyalty_notices``, key ``loss:warn:<program>:<user>:<date of
   the last activity>``) and a ``points_silence_warning`` event in the warehouse (the
   same key as its event id; properties: the points at stake, the date of the decay it
   warns of and its amount) for journeys to trigger on.
2. **Decay**: the member became *idle* with the warning; after each full
   ``idle_months`` (1) calendar months of idleness counted from the day of the warning
   (program time zone), ``share`` (10 %) of the available points, rounded down, decays:
   a ledger transaction of kind ``decay`` to the program account ``decayed`` (breakage,
   like ``expired``), taking from the available lots first to expire first (FIFO, like a
   redemption; pending points never decay). So the warning always comes at least one
   idle month before the first decay, and the longer the silence the more decays: with
   the defaults, 10 % about two months after the last activity, 10 % of the rest a month
   later, and so on, until the member comes back. Decays are never booked
   retroactively: a run books at most one per member, for the latest period due (key
   ``loss:decay:<program>:<user>:<spell>:<period>``); periods missed while the rule did not
   run are skipped. A decay that rounds to 0 points is not booked.
3. **Recall package**: once per spell, when its first decay is due, the member is issued
   the recall coupon (``recall.coupon`` through :func:`issue_coupon`, which enforces its
   per-customer limit, the value cap and the budgets: a refusal is recorded with its
   sentence, not raised) and a temporary tier upgrade for ``tier_upgrade_months``
   (:func:`boost_tier`) to the tier above the member's stored tier (a member with no
   stored tier holds the lowest tier when its threshold is 0, else none: the upgrade is
   then to the lowest tier); nothing above the highest tier.

Every rule can be previewed (``dry_run=True``): the same plan from the same reads, with
nothing written, so a real run right after does exactly what the preview showed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import _Book, _find, _lock_member, _spendable, _write
from liucun.loyalty._boost import boost_tier, notice_json
from liucun.loyalty._coupons import CouponRefused, check_issuance, issue_coupon
from liucun.loyalty._idle import (
    IdleMember,
    add_months,
    find_idle,
    judge_as_of,
    local_midnight,
)
from liucun.loyalty._ledger import DEFAULT_PROGRAM, valid_until
from liucun.loyalty._program import Program, Recall
from liucun.loyalty._silence import WARNING_NOTICE, sync_warnings
from liucun.state import CouponCode, LoyaltyMemberTier, LoyaltyNotice

#: The rules, in the order they run.
RULES = ("warn", "decay", "recall")
#: ``loyalty_notices.kind`` of each rule's notice.
NOTICE_KINDS = {"warn": WARNING_NOTICE, "decay": "decay", "recall": "recall"}
_KEY_MAX = 200
_CHUNK = 500


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossRow:
    """One rule for one member: ``status`` is ``planned`` (dry run), ``done`` or
    ``skipped`` (a decay that rounds to 0 points). ``points``: at stake (warn), taken
    (decay), 0 (recall); ``details`` what the rule did or would do."""

    rule: str
    user_id: str
    key: str
    status: str
    idle_days: int
    last_activity: datetime
    points: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "user_id": self.user_id,
            "key": self.key,
            "status": self.status,
            "idle_days": self.idle_days,
            "last_activity": self.last_activity.isoformat(),
            "points": self.points,
            "details": self.details,
        }


@dataclass(frozen=True)
class LossAversionResult:
    """What :func:`loss_aversion` did (or, with ``dry_run``, would do)."""

    program: str
    as_of: datetime
    dry_run: bool
    only: str | None
    members: int
    idle: int
    rows: list[LossRow]
    #: ``points_silence_warning`` events written to the warehouse (repairs included);
    #: in a dry run, how many would be
    events: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Members affected per rule (decays that round to 0 are not counted)."""
        return {
            rule: sum(1 for r in self.rows if r.rule == rule and r.status != "skipped")
            for rule in RULES
        }

    @property
    def points_decayed(self) -> int:
        return sum(r.points for r in self.rows if r.rule == "decay" and r.status != "skipped")

    @property
    def coupons(self) -> int:
        return sum(1 for r in self.rows if r.rule == "recall" and r.details.get("coupon_value"))

    @property
    def coupon_value(self) -> float:
        return round(sum(r.details.get("coupon_value") or 0.0 for r in self.rows), 2)

    @property
    def boosts(self) -> int:
        return sum(1 for r in self.rows if r.rule == "recall" and r.details.get("boost_tier"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "only": self.only,
            "members": self.members,
            "idle": self.idle,
            "counts": self.counts,
            "points_decayed": self.points_decayed,
            "coupons": self.coupons,
            "coupon_value": self.coupon_value,
            "boosts": self.boosts,
            "events": self.events,
            "rows": [r.to_dict() for r in self.rows],
        }


# -- public API ---------------------------------------------------------------------------


def loss_aversion(
    ws: Any,
    *,
    program: str = DEFAULT_PROGRAM,
    as_of: datetime | date | None = None,
    dry_run: bool = False,
    only: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> LossAversionResult:
    """Run the loss-aversion rules of ``program`` (the version in force) at ``as_of``
    (default the workspace clock's now; a date is the start of that day in the program
    time zone; never after now): the silence warning, the decay and the recall package,
    or ``only`` one of them (``"warn"``, ``"decay"``, ``"recall"``). With ``dry_run``
    nothing is written and the rows say who would be affected and by how much.

    A past ``as_of`` reads the ledger as it stands now (balances are not rewound): it is
    meant to catch up a missed day, not to replay history. ``on_progress(done, total)``
    is called before each member's rule and once at the end.
    """
    if only is not None and only not in RULES:
        raise ConfigError(
            f"only must be one of {', '.join(RULES)} (or none for every rule), got {only!r}",
            hint=Hint(option="only", example="warn"),
        )
    prog = active_program(ws, program)
    tz = prog.timezone
    cutoff = judge_as_of(ws, as_of, tz)
    la = prog.loss_aversion
    members = find_idle(ws, program, cutoff, tz)
    idle = [m for m in members if m.idle_days >= la.silence_warning_days]
    plan = _plan(ws, prog, program, idle, cutoff, only)
    rows: list[LossRow] = []
    total = len(plan)
    for done, (rule, member, info) in enumerate(plan):
        if on_progress is not None:
            on_progress(done, total)
        if dry_run:
            rows.append(_planned(rule, member, info))
        elif rule == "warn":
            rows.append(_warn(ws, program, member, info))
        elif rule == "decay":
            rows.append(_decay(ws, program, member, info, cutoff))
        else:
            rows.append(_recall(ws, prog, program, member, info, cutoff))
    if on_progress is not None:
        on_progress(total, total)
    events = 0
    if only in (None, "warn"):
        events = sync_warnings(
            ws, program, dry_run=dry_run, planned=[r.key for r in rows if r.rule == "warn"]
        )
    return LossAversionResult(
        program=program,
        as_of=cutoff,
        dry_run=dry_run,
        only=only,
        members=len(members),
        idle=len(idle),
        rows=rows,
        events=events,
    )


# -- the plan -----------------------------------------------------------------------------


def _plan(
    ws: Any,
    prog: Program,
    program: str,
    idle: list[IdleMember],
    as_of: datetime,
    only: str | None,
) -> list[tuple[str, IdleMember, dict[str, Any]]]:
    """The rules due for each idle member at ``as_of``, in order (warn, decay, recall)."""
    la = prog.loss_aversion
    tz = prog.timezone
    decay, recall = la.decay, la.recall
    idle_months = decay.idle_months if decay is not None else 1
    today = as_of.astimezone(ZoneInfo(tz)).date()
    now = as_utc(ws.clock.now())
    warn_keys = {m.user_id: _key("warn", program, m.user_id, m.spell.isoformat()) for m in idle}
    with ws.state.read() as s:
        warned = _notices(s, warn_keys.values())
    decay_due: dict[str, tuple[int, date]] = {}
    recall_keys: dict[str, str] = {}
    for m in idle:
        notice = warned.get(warn_keys[m.user_id])
        if notice is None:
            continue
        warned_on = date.fromisoformat(json.loads(notice.details)["warned_on"])
        period = _periods_due(warned_on, today, idle_months)
        if period:
            decay_due[m.user_id] = (period, warned_on)
            recall_keys[m.user_id] = _key("recall", program, m.user_id, m.spell.isoformat())
    spells = {m.user_id: m.spell.isoformat() for m in idle}
    decay_keys = {
        user: _key("decay", program, user, spells[user], str(period))
        for user, (period, _) in decay_due.items()
    }
    with ws.state.read() as s:
        done = _notices(s, [*decay_keys.values(), *recall_keys.values()])
        tiers = {
            r.user_id: r.tier
            for r in s.execute(
                select(LoyaltyMemberTier.user_id, LoyaltyMemberTier.tier).where(
                    LoyaltyMemberTier.program == program,
                    LoyaltyMemberTier.user_id.in_(list(recall_keys) or [""]),
                )
            )
        }
    plan: list[tuple[str, IdleMember, dict[str, Any]]] = []
    share = Decimal(str(decay.share)) if decay is not None else Decimal(0)
    for m in idle:
        wkey = warn_keys[m.user_id]
        if only in (None, "warn") and wkey not in warned:
            first = (
                local_midnight(add_months(today, idle_months), tz) if decay is not None else None
            )
            plan.append(
                (
                    "warn",
                    m,
                    {
                        "key": wkey,
                        "warned_on": today.isoformat(),
                        "as_of": as_of.isoformat(),
                        "decay_at": None if first is None else first.isoformat(),
                        "decay_on": None
                        if first is None
                        else add_months(today, idle_months).isoformat(),
                        "decay_points": _floor(share * m.available),
                        "last_activity": m.last_activity.isoformat(),
                        "idle_days": m.idle_days,
                        "points_at_stake": m.available,
                    },
                )
            )
        due = decay_due.get(m.user_id)
        if due is None:
            continue
        period, warned_on = due
        dkey = decay_keys[m.user_id]
        if decay is not None and only in (None, "decay") and dkey not in done:
            plan.append(
                (
                    "decay",
                    m,
                    {
                        "key": dkey,
                        "period": period,
                        "warned_on": warned_on.isoformat(),
                        "share": decay.share,
                        "points": _floor(share * m.available),
                    },
                )
            )
        rkey = recall_keys[m.user_id]
        if recall is not None and only in (None, "recall") and rkey not in done:
            plan.append(
                ("recall", m, _recall_plan(prog, recall, rkey, tiers.get(m.user_id), as_of, now))
            )
    if only in (None, "recall"):
        _preview_coupons(ws, prog, plan)
    return plan


def _recall_plan(
    prog: Program, recall: Recall, key: str, stored: str | None, as_of: datetime, now: datetime
) -> dict[str, Any]:
    """The recall package for one member: the coupon and the tier upgrade (the tier above
    the stored one, see the module docstring) until ``tier_upgrade_months`` after as-of."""
    names = prog.tier_names()
    if stored in names:
        base: str | None = stored
    elif prog.tiers and prog.tiers[0].threshold == 0:
        base = names[0]
    else:
        base = None
    target: str | None = None
    note = None
    if recall.tier_upgrade_months and names:
        above = names.index(base) + 1 if base is not None else 0
        if above < len(names):
            target = names[above]
        else:
            note = f"already at the highest tier {base}"
    until = (
        valid_until(
            as_of, months=recall.tier_upgrade_months, round_to="day", timezone=prog.timezone
        )
        if target is not None
        else None
    )
    if until is not None and until <= now:
        target, until, note = None, None, "the upgrade would already be over at as-of"
    return {
        "key": key,
        "coupon_value": 0.0,
        "coupon_code": None,
        "coupon_refused": None,
        "coupon_id": recall.coupon,
        "coupon_key": f"{key}:coupon" if recall.coupon else None,
        "boost_key": f"{key}:boost" if target else None,
        "base_tier": base,
        "boost_tier": target,
        "boost_until": None if until is None else until.isoformat(),
        "boost_note": note,
    }


def _preview_coupons(
    ws: Any, prog: Program, plan: list[tuple[str, IdleMember, dict[str, Any]]]
) -> None:
    """What issuing each planned recall coupon would do, checked against the limits as
    they stand plus the codes planned before it in this run (recorded in the plan)."""
    reserved = 0.0
    now = as_utc(ws.clock.now())
    coupons = {c.id: c for c in prog.coupons}
    with ws.state.read() as s:
        for rule, m, info in plan:
            if rule != "recall" or not info["coupon_id"]:
                continue
            coupon = coupons[info["coupon_id"]]
            value = float(coupon.amount) if coupon.kind == "value" else 0.0
            existing = s.scalar(select(CouponCode).where(CouponCode.key == info["coupon_key"]))
            if existing is not None:
                info["coupon_value"] = float(existing.amount) if existing.kind == "value" else 0.0
                continue
            try:
                check_issuance(
                    s, prog, coupon, m.user_id, key=info["coupon_key"], now=now, reserved=reserved
                )
            except CouponRefused as exc:
                info["coupon_refused"] = str(exc)
                info["coupon_value"] = 0.0
                continue
            info["coupon_value"] = value
            reserved += value


def _periods_due(warned_on: date, today: date, months: int) -> int:
    """How many full periods of ``months`` calendar months lie between the warning's day
    and ``today`` (each counted from the warning's day, a month-end day clamped)."""
    k = 0
    while add_months(warned_on, (k + 1) * months) <= today:
        k += 1
    return k


# -- the rules ----------------------------------------------------------------------------


def _planned(rule: str, m: IdleMember, info: dict[str, Any]) -> LossRow:
    points = {"warn": m.available, "decay": info.get("points", 0), "recall": 0}[rule]
    status = "skipped" if rule == "decay" and points == 0 else "planned"
    return LossRow(
        rule, m.user_id, info["key"], status, m.idle_days, m.last_activity, points, _details(info)
    )


def _details(info: dict[str, Any]) -> dict[str, Any]:
    """A planned rule's details as its row shows them (the key is the row's own field)."""
    return {k: v for k, v in info.items() if k != "key"}


def _warn(ws: Any, program: str, m: IdleMember, info: dict[str, Any]) -> LossRow:
    details = _details(info)

    _notice(
        ws,
        info["key"],
        program,
        m.user_id,
        NOTICE_KINDS["warn"],
        m.available,
        details,
        event_id=info["key"],
    )
    return LossRow(
        "warn", m.user_id, info["key"], "done", m.idle_days, m.last_activity, m.available, details
    )


def _decay(ws: Any, program: str, m: IdleMember, info: dict[str, Any], as_of: datetime) -> LossRow:
    key = info["key"]
    share = Decimal(str(info["share"]))

    def run(s: Session, now: datetime) -> int:
        acct = _lock_member(s, program, m.user_id, now, create=False)
        if acct is None:
            return 0
        if (done := _find(s, key)) is not None:
            return -done.points
        book = _Book(s, acct, now)
        lots = [lot for lot in book.lots() if _spendable(lot, as_of)]
        points = _floor(share * sum(lot.remaining for lot in lots))
        if points == 0:
            return 0
        book.debit(points, lots, allow_negative=False)
        book.program_leg("decayed", points)
        request = {
            "op": "decay",
            "user_id": m.user_id,
            "program": program,
            "share": info["share"],
            "period": info["period"],
            "as_of": as_of.isoformat(),
        }
        reason = (
            f"loss aversion: {info['share']:.0%} of the available points decay after "
            f"{info['period']} idle period(s) since the warning of {info['warned_on']}"
        )
        book.commit(key, "decay", request, reason)
        s.add(
            LoyaltyNotice(
                key=key,
                program=program,
                user_id=m.user_id,
                kind=NOTICE_KINDS["decay"],
                points=points,
                details=notice_json(
                    {**_details(info), "points": points, "as_of": as_of.isoformat()}
                ),
                event_id=None,
                created_at=now,
            )
        )
        s.flush()
        return points

    points = _write(ws, key, info, run)
    status = "done" if points else "skipped"
    return LossRow(
        "decay",
        m.user_id,
        key,
        status,
        m.idle_days,
        m.last_activity,
        points,
        {**_details(info), "points": points},
    )


def _recall(
    ws: Any, prog: Program, program: str, m: IdleMember, info: dict[str, Any], as_of: datetime
) -> LossRow:
    details = {**_details(info), "coupon_value": 0.0, "coupon_code": None, "coupon_refused": None}
    if info["coupon_id"]:
        try:
            code = issue_coupon(
                ws, info["coupon_id"], m.user_id, key=info["coupon_key"], program=prog
            )
        except CouponRefused as exc:
            details["coupon_refused"] = str(exc)
        else:
            details["coupon_code"] = code.code
            details["coupon_value"] = code.amount if code.kind == "value" else 0.0
    if info["boost_tier"]:
        boost_tier(
            ws,
            m.user_id,
            tier=info["boost_tier"],
            until=datetime.fromisoformat(info["boost_until"]),
            key=info["boost_key"],
            program=program,
            loaded=prog,
        )
    stored = {k: v for k, v in details.items() if k != "coupon_code"}  # codes stay secret

    _notice(ws, info["key"], program, m.user_id, NOTICE_KINDS["recall"], 0, stored)
    return LossRow(
        "recall", m.user_id, info["key"], "done", m.idle_days, m.last_activity, 0, details
    )


# -- helpers ------------------------------------------------------------------------------


def _notice(
    ws: Any,
    key: str,
    program: str,
    user_id: str,
    kind: str,
    points: int,
    details: dict[str, Any],
    *,
    event_id: str | None = None,
) -> None:
    """Record a notice under ``key`` (nothing when the key is recorded already)."""

    def run(s: Session, now: datetime) -> None:
        if s.scalar(select(LoyaltyNotice.id).where(LoyaltyNotice.key == key)) is None:
            s.add(
                LoyaltyNotice(
                    key=key,
                    program=program,
                    user_id=user_id,
                    kind=kind,
                    points=points,
                    details=notice_json(details),
                    event_id=event_id,
                    created_at=now,
                )
            )
            s.flush()

    _write(ws, key, details, run)


def _notices(s: Session, keys: Iterable[str]) -> dict[str, LoyaltyNotice]:
    wanted = sorted(set(keys))
    out: dict[str, LoyaltyNotice] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        for n in s.scalars(select(LoyaltyNotice).where(LoyaltyNotice.key.in_(chunk))):
            out[n.key] = n
    return out


def _key(rule: str, program: str, user: str, *parts: str) -> str:
    """``loss:<rule>:<program>:<user>:<parts…>``; a digest when that is too long a key."""
    text = ":".join(["loss", rule, program, user, *parts])
    if len(text) <= _KEY_MAX:
        return text
    return f"loss:{rule}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def _floor(value: Decimal) -> int:
    """Whole points, rounded down (exact: the share is a decimal, 0.29 × 100 = 29)."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))
