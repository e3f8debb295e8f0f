"""Paid-membership analytics for the report: :func:`membership_summary` (members,
joins, renewals, lapses, renewal rate, revenue) and :func:`member_retention` (the repeat
purchase rate of members' and non-members' orders).

Both read the membership history (``loyalty_membership_events``, the source of truth)
and return small frozen dataclasses; the definitions are in docs/loyalty.md,
"Paid membership", and repeated on the fields below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import ibis
import pyarrow as pa

from liucun.core import as_utc
from liucun.loyalty._apply import active_program
from liucun.loyalty._ledger import DEFAULT_PROGRAM
from liucun.loyalty._membership import MembershipEvent, membership_events

_PAID = ("join", "renewal")


@dataclass(frozen=True)
class MembershipSummary:
    """Paid membership over the period ``[since, as_of)`` (``since`` None: all history).

    - ``active``: customers holding a paid term at ``as_of`` (a join's or renewal's
      ``term_start <= as_of < term_end``; a cancelled member counts to the term's end).
    - ``joined`` / ``renewed`` / ``auto_renewed`` / ``cancelled`` / ``lapsed``: events of
      that kind whose time falls in the period (``renewed`` includes ``auto_renewed``).
    - ``terms_due``: paid terms whose end falls in the period; ``terms_renewed``: those of
      them followed by a renewal (a term starting at their end), whenever it was paid.
    - ``renewal_rate``: ``terms_renewed / terms_due`` (None when no term came due).
      A term that ended but was not settled yet (``lapse_due`` not run) counts as not
      renewed.
    - ``revenue``: the prices booked by joins and renewals in the period, in ``currency``.
    """

    program: str
    since: datetime | None
    as_of: datetime
    currency: str
    active: int
    joined: int
    renewed: int
    auto_renewed: int
    cancelled: int
    lapsed: int
    terms_due: int
    terms_renewed: int
    renewal_rate: float | None
    revenue: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = None if self.since is None else self.since.isoformat()
        out["as_of"] = self.as_of.isoformat()
        return out


@dataclass(frozen=True)
class RepeatGroup:
    """``units``: (customer, local order day) pairs of the group whose ``days``-day window
    ended by ``as_of``; ``repeated``: those with another order on days 1 … ``days``
    after; ``rate``: ``repeated / units`` (None when ``units`` is 0)."""

    group: str
    units: int
    repeated: int
    rate: float | None


@dataclass(frozen=True)
class MemberRetention:
    """Repeat purchase within ``days`` of members' vs non-members' orders.

    An order is a **member's order** when its customer (canonical id, through the identity
    merge) held a paid term of the program at the order's time (``term_start <= ts <
    term_end`` of a join or renewal; a cancelled member is a member to the term's end);
    any other order is a non-member's. The unit is a customer's order day (program time
    zone), in the group of that day's first order — liucun.metrics.repeat_within with
    recurring cohorts broken down by the flag — so a customer who joined contributes
    their earlier days to ``non_members`` and their later ones to ``members``.
    ``units`` and ``repeated`` are counts, for an interval around each rate.
    """

    program: str
    as_of: datetime
    days: int
    timezone: str
    members: RepeatGroup
    non_members: RepeatGroup

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def membership_summary(
    ws: Any,
    *,
    as_of: datetime | date,
    since: datetime | date | None = None,
    program: str = DEFAULT_PROGRAM,
) -> MembershipSummary:
    """The paid-membership figures of ``program`` over ``[since, as_of)`` (see
    :class:`MembershipSummary` for each definition)."""
    end = as_utc(as_of)
    start = None if since is None else as_utc(since)
    currency = active_program(ws, program).currency
    events = membership_events(ws, program=program)

    def inside(at: datetime) -> bool:
        return at < end and (start is None or at >= start)

    def count(kind: str) -> int:
        return sum(1 for e in events if e.kind == kind and inside(e.at))

    paid = [e for e in events if e.kind in _PAID and e.term_start is not None]
    renewal_starts = {(e.user_id, e.plan_id, e.term_start) for e in events if e.kind == "renewal"}
    due = [e for e in paid if e.term_end is not None and inside(e.term_end)]
    renewed_due = sum(1 for e in due if (e.user_id, e.plan_id, e.term_end) in renewal_starts)
    active = {e.user_id for e in paid if _covers(e, end)}
    return MembershipSummary(
        program=program,
        since=start,
        as_of=end,
        currency=currency,
        active=len(active),
        joined=count("join"),
        renewed=count("renewal"),
        auto_renewed=sum(
            1 for e in events if e.kind == "renewal" and inside(e.at) and _automatic(e)
        ),
        cancelled=count("cancel"),
        lapsed=count("lapse"),
        terms_due=len(due),
        terms_renewed=renewed_due,
        renewal_rate=None if not due else renewed_due / len(due),
        revenue=round(sum(e.amount for e in paid if inside(e.at)), 2),
    )


def member_retention(
    ws: Any,
    *,
    as_of: datetime | date,
    days: int = 90,
    program: str = DEFAULT_PROGRAM,
    timezone: str | None = None,
) -> MemberRetention:
    """Repeat purchase within ``days`` of members' and non-members' orders placed before
    ``as_of`` (see :class:`MemberRetention`); days are counted in ``timezone`` (default:
    the program's)."""
    from liucun.metrics import repeat_within
    from liucun.warehouse import current_identities

    end = as_utc(as_of)
    zone = timezone or active_program(ws, program).timezone
    terms = [e for e in membership_events(ws, program=program) if e.kind in _PAID]
    t = ws.events()
    orders = t.filter((t.event_type == "order") & t.user_id.notnull() & (t.ts < end))
    if terms:
        raw = ibis.memtable(
            pa.table(
                {
                    "_m_user": [e.user_id for e in terms],
                    "_m_start": pa.array(
                        [e.term_start for e in terms], type=pa.timestamp("us", tz="UTC")
                    ),
                    "_m_end": pa.array(
                        [e.term_end for e in terms], type=pa.timestamp("us", tz="UTC")
                    ),
                }
            )
        )
        ids = current_identities(ws.table("identities"))
        ids = ids.filter(ids.alias_type == "user_id").select(
            _alias=ids["alias"], _canon=ids.canonical
        )
        mapped = raw.left_join(ids, raw._m_user == ids._alias)
        spans = mapped.select(
            _m_canon=ibis.coalesce(mapped._canon, mapped._m_user),
            _m_start=mapped._m_start,
            _m_end=mapped._m_end,
        )
        inside = orders.join(
            spans,
            [
                orders.user_id == spans._m_canon,
                orders.ts >= spans._m_start,
                orders.ts < spans._m_end,
            ],
        )
        member_ids = inside.select(_mid=inside.event_id).distinct()
        flag = orders.event_id.isin(member_ids._mid)
    else:
        flag = ibis.literal(False)
    flagged = orders.mutate(member=ibis.ifelse(flag, "members", "non_members"))
    table = repeat_within(
        flagged,
        days=(days,),
        as_of=end,
        timezone=zone,
        cohort_type="recurring",
        breakdown="member",
    ).to_pyarrow()
    found = {
        row["breakdown"]: (int(row["cohort_size"]), int(row["retained"]))
        for row in table.to_pylist()
    }

    def group(name: str) -> RepeatGroup:
        units, repeated = found.get(name, (0, 0))
        return RepeatGroup(name, units, repeated, repeated / units if units else None)

    return MemberRetention(
        program=program,
        as_of=end,
        days=days,
        timezone=zone,
        members=group("members"),
        non_members=group("non_members"),
    )


def _covers(e: MembershipEvent, at: datetime) -> bool:
    return e.term_start is not None and e.term_end is not None and e.term_start <= at < e.term_end


def _automatic(e: MembershipEvent) -> bool:
    return e.key.startswith("auto-renewal:")
