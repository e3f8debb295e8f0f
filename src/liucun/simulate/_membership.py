"""Paid membership purchases: a share of the repeat buyers buys a yearly plan.

With ``membership_share`` > 0 (off by default) each customer whose second order falls in
the window buys the paid plan :data:`PLAN_ID` with that probability, a few minutes after
that order: a ``membership_purchase`` event whose ``properties`` carry ``plan``. Buying
changes nothing the customer does afterwards — so members retain better than non-members
only because they were chosen among repeat buyers (the selection a real shop's
member-vs-non-member comparison also carries; docs/loyalty.md says so in the report).

The draws come from their own stream (``SeedSequence([seed, chunk, MEMBERSHIP_STREAM])``),
so a simulation without members is byte-identical to one from before this option.
"""

from __future__ import annotations

import numpy as np

from liucun.simulate._events import Block, Chunk, block
from liucun.simulate._process import Orders
from liucun.simulate._strings import json_object

MEMBERSHIP_STREAM = 20_261_203
PLAN_ID = "plus_yearly"
#: Days between the second order and the purchase (about 15 minutes).
PURCHASE_DELAY_DAYS = 0.01


def membership_block(ctx: Chunk, orders: Orders, share: float, rng: np.random.Generator) -> Block:
    """``membership_purchase`` events of the chunk (see the module docstring)."""
    second = np.flatnonzero(orders.k == 1)
    rows = orders.row[second]
    t = ctx.to_utc(orders.t[second], rows) + PURCHASE_DELAY_DAYS
    draws = rng.random(second.size) if share > 0 else np.ones(second.size)
    keep = np.flatnonzero((draws < share) & ctx.in_window(t))
    props = json_object([("plan", f'"{PLAN_ID}"')], keep.size)
    return block("membership_purchase", rows[keep], t[keep], props)
