"""One row per customer with everything a segment filter may ask about."""

from __future__ import annotations

from datetime import datetime

import ibis.expr.types as ir

from liucun.segments._rfm import rfm
from liucun.segments._stages import StageRules, lifecycle_stages

_USER_FIELDS = (
    "customer_type",
    "country",
    "region",
    "language",
    "acquisition_channel",
    "company_size",
    "industry",
    "account_id",
)


def customer_profiles(
    events: ir.Table, users: ir.Table, *, as_of: datetime, rules: StageRules | None = None
) -> ir.Table:
    """Stage, RFM scores, segment and class, and the user's attributes, per customer.

    Customers without orders have ``stage = "potential"`` and NULL RFM columns. Feed the
    result to :func:`parse_filter` to pick customers.
    """
    stages = lifecycle_stages(events, as_of=as_of, users=users, rules=rules)
    scores = rfm(events, as_of=as_of)
    with_rfm = stages.left_join(scores, stages.user_id == scores.user_id)
    with_rfm = with_rfm.select(
        *stages.columns, *[c for c in scores.columns if c not in stages.columns]
    )
    attrs = users.select("user_id", *[c for c in _USER_FIELDS if c in users.columns])
    joined = with_rfm.left_join(attrs, with_rfm.user_id == attrs.user_id)
    return joined.select(*with_rfm.columns, *[c for c in attrs.columns if c != "user_id"])
