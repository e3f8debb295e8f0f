"""The standard event types, grouped by the part of the customer journey they describe."""

from __future__ import annotations

EVENT_TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "commerce": ("signup", "visit", "search", "view", "add_to_cart", "order", "refund"),
    "service": ("delivery", "ticket_opened", "ticket_resolved", "nps_response"),
    "engagement": (
        "message_sent",
        "message_opened",
        "message_clicked",
        "coupon_issued",
        "coupon_redeemed",
    ),
    "social": ("review", "share", "referral", "check_in"),
    # the shop's paid-membership purchases (an export), then what liucun's loyalty
    # program itself writes for journeys to trigger on (docs/loyalty.md)
    "loyalty": (
        "membership_purchase",
        "tier_changed",
        "points_silence_warning",
        "points_decayed",
        "membership_joined",
        "membership_renewed",
        "membership_renewal_due",
        "membership_lapsed",
        "membership_cancelled",
        "referral_credited",
    ),
}

STANDARD_EVENT_TYPES: tuple[str, ...] = tuple(t for g in EVENT_TYPE_GROUPS.values() for t in g)

#: Event types that carry money; ``revenue`` must be a number ≥ 0 on them.
MONETARY_EVENT_TYPES: tuple[str, ...] = ("order", "refund")
