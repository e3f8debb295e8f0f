"""Paid-membership purchases from the warehouse: ``membership_purchase`` events → joins
and renewals (``liucun loyalty member import``).

A shop that sells its paid plan elsewhere exports each purchase as an event of type
``membership_purchase`` whose ``properties`` carry the ``plan`` id. Each purchase, in time
order, joins the customer (the canonical id after the identity merge) to that plan at the
event's time, or renews their running membership when they already hold one. The key of
each write is ``purchase:<event id>``, so importing again changes nothing; a purchase the
program refuses (an unknown plan, a renewal of a cancelled membership) is counted with
its sentence and the rest go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select

from liucun.core import as_utc
from liucun.loyalty._ledger import DEFAULT_PROGRAM
from liucun.loyalty._membership import (
    MembershipRefused,
    join,
    memberships,
    publish_membership_events,
    renew,
)
from liucun.metrics import property_text
from liucun.state import LoyaltyMembershipEvent

PURCHASE_EVENT = "membership_purchase"


@dataclass(frozen=True)
class PurchaseImport:
    """What :func:`import_purchases` did: purchases read, joins and renewals written
    (``replayed`` were written by an earlier import), refusals with their sentences."""

    purchases: int
    joined: int
    renewed: int
    replayed: int
    refused: list[tuple[str, str]] = field(default_factory=list)
    published: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "purchases": self.purchases,
            "joined": self.joined,
            "renewed": self.renewed,
            "replayed": self.replayed,
            "refused": [{"event_id": e, "reason": r} for e, r in self.refused],
            "published": self.published,
        }


def import_purchases(
    ws: Any,
    *,
    program: str = DEFAULT_PROGRAM,
    since: datetime | None = None,
) -> PurchaseImport:
    """Join or renew for every ``membership_purchase`` event (see the module docstring);
    ``since`` reads only purchases at or after it."""
    ev = ws.events()
    ev = ev.filter((ev.event_type == PURCHASE_EVENT) & ev.user_id.notnull())
    if since is not None:
        ev = ev.filter(ev.ts >= as_utc(since))
    rows = (
        ev.select(ev.event_id, ev.user_id, ev.ts, plan=property_text(ev.properties, "plan"))
        .order_by(["ts", "event_id"])
        .to_pandas()
    )
    with ws.state.read() as s:
        done_keys = set(
            s.scalars(
                select(LoyaltyMembershipEvent.key).where(
                    LoyaltyMembershipEvent.key.like("purchase:%")
                )
            ).all()
        )
    joined = renewed = replayed = 0
    refused: list[tuple[str, str]] = []
    for r in rows.itertuples(index=False):
        key, at = f"purchase:{r.event_id}", r.ts.to_pydatetime()
        if key in done_keys:
            replayed += 1
            continue
        if pd.isna(r.plan) or not str(r.plan):
            refused.append((r.event_id, "the purchase names no plan (properties.plan)"))
            continue
        running = any(
            m.status in ("active", "cancelled") and m.term_end > at
            for m in memberships(ws, program=program, user_id=r.user_id)
        )
        write = renew if running else join
        try:
            write(ws, r.user_id, str(r.plan), key=key, at=at, program=program, publish=False)
        except MembershipRefused as exc:
            refused.append((r.event_id, str(exc)))
            continue
        renewed += running
        joined += not running
    published = publish_membership_events(ws, program=program)
    return PurchaseImport(
        purchases=len(rows),
        joined=joined,
        renewed=renewed,
        replayed=replayed,
        refused=refused,
        published=published,
    )
