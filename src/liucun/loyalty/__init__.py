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

from liucun.loyalty._accrue import AccrualResult, accrue
from liucun.loyalty._apply import AppliedProgram, active_program, apply_program, program_versions
from liucun.loyalty._check import check
from liucun.loyalty._coupons import (
    BenefitGrantResult,
    BenefitRefused,
    BudgetExhausted,
    CouponLimitReached,
    CouponNotEligible,
    CouponNotRedeemable,
    CouponRedemptionResult,
    CouponRefused,
    IssuedCoupon,
    OrderRedemptions,
    Right,
    benefits_for,
    coupon_check,
    coupon_summary,
    eligible_benefits,
    eligible_coupons,
    expire_coupons,
    issue_coupon,
    list_coupons,
    redeem_benefit,
    redeem_coupon,
    redeem_from_orders,
)
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
from liucun.loyalty._partial import ShareReversal, reverse_share
from liucun.loyalty._program import (
    Program,
    ProgramError,
    canonical_json,
    load_program,
    parse_program,
)
from liucun.loyalty._rules import ACCRUAL_COLUMNS, pending_releases, plan_accrual
from liucun.loyalty._tiers import TIER_COLUMNS, evaluate_tiers, tier_changes

__all__ = [
    "ACCRUAL_COLUMNS",
    "DEFAULT_PROGRAM",
    "KINDS",
    "ON_RELEASE",
    "PROGRAM_ACCOUNTS",
    "TIER_COLUMNS",
    "Account",
    "AccrualResult",
    "AppliedProgram",
    "BenefitGrantResult",
    "BenefitRefused",
    "BudgetExhausted",
    "CheckReport",
    "CouponLimitReached",
    "CouponNotEligible",
    "CouponNotRedeemable",
    "CouponRedemptionResult",
    "CouponRefused",
    "Entry",
    "ExpiryResult",
    "IdempotencyConflict",
    "InsufficientPoints",
    "IssuedCoupon",
    "LedgerError",
    "Lot",
    "OrderRedemptions",
    "Posting",
    "Program",
    "ProgramError",
    "Right",
    "ShareReversal",
    "account",
    "accrue",
    "active_program",
    "add_growth",
    "adjust",
    "apply_program",
    "award",
    "benefits_for",
    "canonical_json",
    "check",
    "coupon_check",
    "coupon_summary",
    "eligible_benefits",
    "eligible_coupons",
    "evaluate_tiers",
    "expire",
    "expire_coupons",
    "issue_coupon",
    "list_coupons",
    "load_program",
    "parse_program",
    "pending_releases",
    "plan_accrual",
    "program_versions",
    "redeem",
    "redeem_benefit",
    "redeem_coupon",
    "redeem_from_orders",
    "release",
    "reverse",
    "reverse_share",
    "set_policy",
    "tier_changes",
    "valid_until",
]
