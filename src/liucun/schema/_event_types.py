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
    # a paid-membership purchase (the shop's export; liucun loyalty member import-events)
    "loyalty": ("membership_purchase",),
    # written by liucun itself (the loyalty program) for journeys to trigger on; never
    # the customer's own activity (see LIUCUN_EVENT_TYPES)
    "liucun": (
        "tier_changed",
        "points_silence_warning",
        "points_decayed",
        "membership_joined",
        "membership_renewed",
        "membership_renewal_due",
        "membership_lapsed",
        "membership_cancelled",
        "referral_credited",
        # journeys and delivery (liucun.journeys): outcomes of what liucun sent
        "message_delivered",
        "message_bounced",
        "message_failed",
        "message_unknown",
        "message_unsubscribed",
        "service_task_created",
        "service_task_breached",
        "tag_set",
        # journeys: who entered a journey, who reached its goal (liucun.journeys._partner)
        "journey_entered",
        "journey_converted",
    ),
}

STANDARD_EVENT_TYPES: tuple[str, ...] = tuple(t for g in EVENT_TYPE_GROUPS.values() for t in g)

#: Event types liucun writes itself: a customer's activity (active users, lifecycle,
#: idle days) leaves them out unless they are asked for by name.
LIUCUN_EVENT_TYPES: tuple[str, ...] = EVENT_TYPE_GROUPS["liucun"]

#: Event types that carry money; ``revenue`` must be a number ≥ 0 on them.
MONETARY_EVENT_TYPES: tuple[str, ...] = ("order", "refund")
