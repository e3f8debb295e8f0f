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
    "social": ("review", "share", "referral"),
    # written by liucun itself (journeys may trigger on them)
    "loyalty": ("tier_changed",),
}

STANDARD_EVENT_TYPES: tuple[str, ...] = tuple(t for g in EVENT_TYPE_GROUPS.values() for t in g)

#: Event types that carry money; ``revenue`` must be a number ≥ 0 on them.
MONETARY_EVENT_TYPES: tuple[str, ...] = ("order", "refund")
