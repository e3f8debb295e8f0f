"""What the ledger hands back: postings, accounts, the check report, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from liucun.core import LiucunError

#: Kinds of ledger transactions (``Posting.kind``, ``Entry.kind``).
KINDS = (
    "addition",
    "redemption",
    "expiry",
    "reversal",
    "adjustment",
    "growth",
    "release",
    "decay",
)
#: ``award(..., available_at=ON_RELEASE)``: pending until :func:`release` (a later action,
#: e.g. the order's delivery), not until a time.
ON_RELEASE = "on_release"
#: The ``available_at`` stored for points pending until released.
UNTIL_RELEASED = datetime(9999, 12, 31, tzinfo=UTC)
#: The program accounts on the other side of member legs.
#: ``decayed`` receives what the loss-aversion decay takes from idle members (breakage, like
#: ``expired``).
PROGRAM_ACCOUNTS = ("issued", "redeemed", "expired", "adjustment", "growth", "decayed")


class InsufficientPoints(LiucunError, ValueError):
    """A redemption (or a reversal or adjustment under a forbid-negative policy) would take
    more points than the member has available; nothing was written."""


class IdempotencyConflict(LiucunError, ValueError):
    """An idempotency key was used again with other arguments; nothing was written."""


class LedgerError(LiucunError, ValueError):
    """A ledger call that cannot be carried out as asked (unknown key, a reversal of a
    reversal, a non-positive amount); nothing was written."""


@dataclass(frozen=True)
class Posting:
    """The result of one ledger write (or of its replay: ``replayed`` is then True).

    ``points`` and ``growth`` are the signed effect on the member's account;
    ``balance_after`` the account's points (pending included) right after this write.
    """

    key: str
    kind: str
    program: str
    user_id: str
    points: int
    growth: int
    balance_after: int
    created_at: datetime
    reason: str | None = None
    reverses: str | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "program": self.program,
            "user_id": self.user_id,
            "points": self.points,
            "growth": self.growth,
            "balance_after": self.balance_after,
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
            "reverses": self.reverses,
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class Entry:
    """One transaction on a member's account, as :func:`account` lists it (oldest first)."""

    key: str
    kind: str
    points: int
    growth: int
    balance_after: int
    created_at: datetime
    reason: str | None = None
    reverses: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "points": self.points,
            "growth": self.growth,
            "balance_after": self.balance_after,
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
            "reverses": self.reverses,
        }


@dataclass(frozen=True)
class Lot:
    """Points of one addition still held: ``remaining`` of ``points``."""

    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "points": self.points,
            "remaining": self.remaining,
            "available_at": self.available_at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class Account:
    """A member's account at ``as_of``.

    ``balance`` is what the member can spend now; ``pending`` the points awarded but not
    yet available; ``posted`` the ledger balance (what ``check`` verifies): balance plus
    pending plus any points past their expiry that :func:`expire` has not taken yet.
    ``growth_value`` is earned and never spent. ``tier`` is the effective tier (a
    temporary upgrade while it lasts, else the tier of the last review), None before the
    member's first review (tiers are computed from growth value, not from the balance).
    """

    user_id: str
    program: str
    balance: int
    pending: int
    posted: int
    growth_value: int
    version: int
    as_of: datetime
    tier: str | None = None
    entries: list[Entry] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "program": self.program,
            "balance": self.balance,
            "pending": self.pending,
            "posted": self.posted,
            "tier": self.tier,
            "growth_value": self.growth_value,
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "entries": [e.to_dict() for e in self.entries],
            "lots": [lot.to_dict() for lot in self.lots],
        }


@dataclass(frozen=True)
class ExpiryResult:
    """What :func:`expire` did: points expired, over how many accounts and lots."""

    as_of: datetime
    points: int
    accounts: int
    lots: int
    keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "points": self.points,
            "accounts": self.accounts,
            "lots": self.lots,
            "keys": list(self.keys),
        }


@dataclass(frozen=True)
class CheckReport:
    """The ledger's invariants: ``ok`` when ``violations`` is empty."""

    accounts: int
    transactions: int
    entries: int
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "accounts": self.accounts,
            "transactions": self.transactions,
            "entries": self.entries,
            "violations": list(self.violations),
        }
