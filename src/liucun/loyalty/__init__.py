"""Loyalty: the points ledger (double-entry, append-only, idempotent), growth value, and
(from the program modules) tiers, earning rules and benefits. See docs/loyalty.md.

Every function takes the workspace first and writes to its state database::

    import liucun
    from liucun import loyalty

    with liucun.open("shop") as ws:
        loyalty.award(ws, "u1", 100, key="order-1001:points")
        loyalty.redeem(ws, "u1", 40, key="checkout-77")
        loyalty.account(ws, "u1").balance        # 60
        assert loyalty.check(ws).ok
"""

from liucun.loyalty._check import check
from liucun.loyalty._ledger import (
    DEFAULT_PROGRAM,
    account,
    add_growth,
    adjust,
    award,
    expire,
    redeem,
    release,
    reverse,
    set_policy,
    valid_until,
)
from liucun.loyalty._models import (
    KINDS,
    ON_RELEASE,
    PROGRAM_ACCOUNTS,
    Account,
    CheckReport,
    Entry,
    ExpiryResult,
    IdempotencyConflict,
    InsufficientPoints,
    LedgerError,
    Lot,
    Posting,
)

__all__ = [
    "DEFAULT_PROGRAM",
    "KINDS",
    "ON_RELEASE",
    "PROGRAM_ACCOUNTS",
    "Account",
    "CheckReport",
    "Entry",
    "ExpiryResult",
    "IdempotencyConflict",
    "InsufficientPoints",
    "LedgerError",
    "Lot",
    "Posting",
    "account",
    "add_growth",
    "adjust",
    "award",
    "check",
    "expire",
    "redeem",
    "release",
    "reverse",
    "set_policy",
    "valid_until",
]
