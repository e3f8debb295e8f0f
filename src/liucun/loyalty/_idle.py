"""Who is idle: members holding available points and the days since their last activity.

A member's **last activity** in a program is the latest of

- their last event in the identity-resolved warehouse events (``ws.events()``) at or
  before ``as_of`` — an order, a refund, a visit, a review, any behaviour — except the
  events that are the shop's or liucun's own doing (:data:`NOT_ACTIVITY`: messages sent
  and reactions to them, coupons issued, deliveries, resolved tickets, and everything
  liucun writes: tier changes, the silence warnings themselves, membership notices),
  matched by the account's id or by the canonical
  customer that id is an alias of;
- their last ledger earning or spending booked by ``as_of`` (:data:`ACTIVITY_KINDS`: an
  ``addition`` at the time it was earned, a ``growth`` award, a ``redemption``);
- the opening of their account, when neither exists.

They are **idle** for the days between the local date of that activity and the local
date of ``as_of``, on the program time zone's calendar: a member last active on 1
January, whatever the hour, is 30 days idle on 31 January. Only members holding
*available* points at ``as_of`` (not pending, not past their expiry) are listed — nobody
with nothing to lose is warned, decayed or recalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, type_coerce

from liucun.core import ConfigError, Hint, as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._book import _spendable, not_after_now
from liucun.loyalty._ledger import DEFAULT_PROGRAM, valid_until
from liucun.schema import LIUCUN_EVENT_TYPES
from liucun.state import LoyaltyAccount, LoyaltyLot, LoyaltyTransaction, UTCDateTime

#: The warehouse event of a silence warning (journeys trigger on it).
SILENCE_WARNING = "points_silence_warning"
#: Event types that are not the member's own activity: what the shop did, and every
#: event liucun writes itself (tier changes, the warnings, membership notices).
NOT_ACTIVITY = (
    "message_sent",
    "message_opened",
    "message_clicked",
    "coupon_issued",
    "delivery",
    "ticket_resolved",
    *LIUCUN_EVENT_TYPES,
)
#: Ledger kinds that are the member's activity (earning or spending points).
ACTIVITY_KINDS = ("addition", "growth", "redemption")


@dataclass(frozen=True)
class IdleMember:
    """A member holding available points, and how long they have been idle."""

    user_id: str
    available: int
    last_activity: datetime
    idle_days: int
    #: the local date of the last activity: names the idle spell
    spell: date

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "available": self.available,
            "last_activity": self.last_activity.isoformat(),
            "idle_days": self.idle_days,
            "spell": self.spell.isoformat(),
        }


def idle_members(
    ws: Any, *, program: str = DEFAULT_PROGRAM, as_of: datetime | date | None = None
) -> list[IdleMember]:
    """Every member of ``program`` holding available points at ``as_of`` (default now),
    with their last activity and idle days (see the module docstring), by user id."""
    prog = active_program(ws, program)
    return find_idle(ws, program, judge_as_of(ws, as_of, prog.timezone), prog.timezone)


def judge_as_of(ws: Any, as_of: datetime | date | None, tz: str) -> datetime:
    """``as_of`` as a UTC instant: now when None, a date's midnight in ``tz``; refused
    when naive or after now."""
    if as_of is None:
        return as_utc(ws.clock.now())
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            raise ConfigError(
                f"as_of {as_of.isoformat()} has no time zone; pass an aware datetime or a date",
                hint=Hint(option="as_of"),
            )
        cutoff = as_utc(as_of)
    else:
        cutoff = local_midnight(as_of, tz)
    return not_after_now(ws, cutoff, "idleness cannot be judged ahead of time")


def find_idle(ws: Any, program: str, as_of: datetime, tz: str) -> list[IdleMember]:
    """Members holding available points at ``as_of`` and their last activity."""
    holding: dict[int, int] = {}
    with ws.state.read() as s:
        accounts = {
            a.id: a
            for a in s.execute(
                select(LoyaltyAccount.id, LoyaltyAccount.user_id, LoyaltyAccount.opened_at).where(
                    LoyaltyAccount.program == program, LoyaltyAccount.balance > 0
                )
            )
        }
        for lot in s.scalars(
            select(LoyaltyLot)
            .join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyLot.account_id)
            .where(LoyaltyAccount.program == program, LoyaltyLot.remaining > 0)
        ):
            if _spendable(lot, as_of):
                holding[lot.account_id] = holding.get(lot.account_id, 0) + lot.remaining
        T = LoyaltyTransaction
        when = type_coerce(func.max(func.coalesce(T.earned_at, T.created_at)), UTCDateTime)
        ledger = dict(
            s.execute(
                select(T.account_id, when)
                .where(T.program == program, T.kind.in_(ACTIVITY_KINDS), T.created_at <= as_of)
                .group_by(T.account_id)
            ).all()
        )
    users = {accounts[a].user_id for a in holding if a in accounts}
    seen = _last_events(ws, users, as_of)
    zone = ZoneInfo(tz)
    today = as_of.astimezone(zone).date()
    out = []
    for account_id, points in holding.items():
        acct = accounts.get(account_id)
        if acct is None or points <= 0:
            continue
        times = [t for t in (seen.get(acct.user_id), ledger.get(account_id)) if t is not None]
        last = max(as_utc(t) for t in times) if times else as_utc(acct.opened_at)
        spell = last.astimezone(zone).date()
        out.append(IdleMember(acct.user_id, points, last, (today - spell).days, spell))
    return sorted(out, key=lambda m: m.user_id)


def _last_events(ws: Any, users: set[str], as_of: datetime) -> dict[str, datetime]:
    """Each member's last activity event at or before ``as_of``, by their own id and by
    the canonical customer their id is an alias of."""
    if not users:
        return {}
    from liucun.warehouse import current_identities

    ev = ws.events()
    act = ev.filter(ev.user_id.notnull(), ev.ts <= as_of, ~ev.event_type.isin(NOT_ACTIVITY))
    last = act.group_by("user_id").aggregate(last=act.ts.max()).to_pyarrow().to_pylist()
    by_user = {r["user_id"]: r["last"] for r in last}
    ids = current_identities(ws.table("identities"))
    aliases = ids.filter(ids.alias_type == "user_id", ids.alias != ids.canonical)
    canon = {
        r["alias"]: r["canonical"]
        for r in aliases.select("alias", "canonical").to_pyarrow().to_pylist()
    }
    out = {}
    for user in users:
        when = by_user.get(canon.get(user, user)) or by_user.get(user)
        if when is not None:
            out[user] = as_utc(when)
    return out


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months (31 January + 1 = 28 or 29 February)."""
    moved = valid_until(datetime.combine(day, time(), tzinfo=ZoneInfo("UTC")), months=months)
    return moved.date()


def local_midnight(day: date, tz: str) -> datetime:
    return as_utc(datetime.combine(day, time(), tzinfo=ZoneInfo(tz)))
