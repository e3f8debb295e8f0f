"""``POST /v1/decide``: the next best action for a customer in a context, from memory.

The answer comes from the service's :class:`~liucun.journeys.Decider` snapshot — no
database and no warehouse on the request path, so the handler runs on the event loop
(a decision takes microseconds; a threadpool hop would cost more than the work).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from liucun.api._auth import WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._schemas import DecideIn, DecisionPublic, JsonResponse
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service

api = router("/v1/decide", "decide")
#: A decision is logged (an exposure): a write, so a retry with the same
#: ``Idempotency-Key`` gets the first answer and logs nothing twice.
DecideKey = Annotated[KeyInfo, Depends(WriteRequirement("decide"))]


@api.post(
    "",
    response_model=DecisionPublic,
    responses=errors(*WRITE_ERRORS),
    summary="The next best action for a customer",
)
async def post_decide(request: Request, body: DecideIn, key: DecideKey) -> JsonResponse:
    """The benefits the customer's tier or profile unlocks, the coupons they may be
    issued now (unlock, per-customer count, coupon caps, the cart's `min_order`), the
    offer the uplift policy chose for them when it is one of those, and the next action
    of each journey they are in after the send-time guards (suppression, consent, coupon
    cap, quiet hours, frequency caps). A share of customers (`[serve] decide_holdout`)
    is a holdout: never treated. The decision is logged as an exposure (experiment
    `decide:<placement>`, variant the offer, `none` or `holdout`, with the arm's
    probability). A customer the snapshot does not know gets `known: false`, no offer
    and no exposure. The snapshot is rebuilt every `[serve] decide_refresh_s`, and a
    customer's entry after the loader moved their events (`snapshot_at` says when).
    A retry under the same `Idempotency-Key` gets the first decision again.
    """
    decision = service(request).decider.decide(
        body.user_id, body.placement, channel=body.channel, cart_value=body.cart_value
    )
    return JsonResponse(decision.to_dict())
