"""Orders inside the window and everything that follows them.

For each order: its session, the ``order`` event (revenue, coupon), ``coupon_redeemed``,
``delivery`` (promised vs actual), support tickets, ``refund``, ``nps_response`` and the
social events (``review``, ``share``, ``referral``), all tied to the order's service
experience and the customer's satisfaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liucun.simulate._events import Block, Chunk, block
from liucun.simulate._population import CAMPAIGN_DAYS, campaign_names
from liucun.simulate._presets import ZERO_DECIMAL_CURRENCIES
from liucun.simulate._process import Orders
from liucun.simulate._sessions import session_block
from liucun.simulate._strings import choose, json_object, number_text, numbered, quoted

#: Share of a customer's orders placed on their duplicate (loyalty-card) account.
DUPLICATE_ORDER_SHARE = 0.4
COUPONS = (("WELCOME10", 0.10), ("SAVE15", 0.15), ("VIP20", 0.20), ("FLASH30", 0.30))
CAMPAIGN_DISCOUNT = 0.15
TICKET_REASONS = ("late_delivery", "product_issue", "billing", "other")
REFUND_REASONS = ("late_delivery", "damaged", "changed_mind", "wrong_item")
SHARE_TARGETS = ("wechat", "whatsapp", "link", "email")


def _where(mask: np.ndarray, text: str) -> pa.Array:
    return pc.if_else(pa.array(mask), text, pa.scalar(None, pa.string()))


def _money(ctx: Chunk, rows: np.ndarray, amount: np.ndarray, *, floor: bool) -> np.ndarray:
    zero = np.array([c in ZERO_DECIMAL_CURRENCIES for c in ctx.pop.currencies])
    scale = np.where(zero[ctx.pop.currency[rows]], 1.0, 100.0)
    cents = np.floor(amount * scale) if floor else np.round(amount * scale)
    return cents / scale


def order_blocks(ctx: Chunk, orders: Orders) -> list[Block]:
    """Events of the orders placed inside the window (docs/simulator.md, "Orders" and
    "Service experience drives churn").

    The steps draw from ``ctx.rng`` in turn, so their order is part of the seeded output.
    """
    placed = _placed_orders(ctx, orders)
    session, sid = _checkout_sessions(ctx, placed)
    price = _prices_and_coupons(ctx, placed)
    out = [session, *_order_events(ctx, placed, price, sid)]
    ship = _deliveries(ctx, placed)
    out.append(_delivery_block(ctx, placed, ship))
    out += _ticket_blocks(ctx, placed, ship)
    satisfaction = ctx.pop.sat[placed.person] - 1.5 * placed.late - 1.0 * placed.slow
    satisfaction = satisfaction + 0.6 * ctx.rng.standard_normal(placed.m)
    out.append(_refund_block(ctx, placed, price.revenue, ship.delivered))
    out += _feedback(ctx, placed.row, placed.number, placed.category, ship.delivered, satisfaction)
    return out


@dataclass
class _Placed:
    """The orders inside the window, one entry each."""

    person: np.ndarray  # the customer's row (covariates, latent traits)
    row: np.ndarray  # the account it is placed on: a duplicate registration takes a share
    t_local: np.ndarray
    t: np.ndarray  # UTC days since the window start
    late: np.ndarray
    slow: np.ndarray
    ticket: np.ndarray
    number: np.ndarray
    channel: np.ndarray
    category: np.ndarray

    @property
    def m(self) -> int:
        return self.person.size


def _placed_orders(ctx: Chunk, orders: Orders) -> _Placed:
    """The orders inside the window, the account each is placed on, channel and category."""
    pop, rng = ctx.pop, ctx.rng
    t_all = ctx.to_utc(orders.t, orders.row)
    keep = ctx.in_window(t_all)
    person, t_local = orders.row[keep], orders.t[keep]
    m = person.size
    dup = pop.dup_row[person]
    routed = (dup >= 0) & (t_local >= pop.signup[np.maximum(dup, 0)])
    routed &= rng.random(m) < DUPLICATE_ORDER_SHARE
    number = ctx.ids("order", m)
    names = ctx.channel_names()
    channel = ctx.session_channel(person)
    if "offline_store" in names:
        channel = np.where(routed, names.index("offline_store"), channel)
    return _Placed(
        person=person,
        row=np.where(routed, dup, person),
        t_local=t_local,
        t=t_all[keep],
        late=orders.late[keep],
        slow=orders.slow[keep],
        ticket=orders.ticket[keep],
        number=number,
        channel=channel,
        category=ctx.category_of(person),
    )


def _checkout_sessions(ctx: Chunk, placed: _Placed) -> tuple[Block, np.ndarray]:
    """The session that ends in each order: same day, just before it, after sign-up."""
    pop, row = ctx.pop, placed.row
    return session_block(
        ctx,
        row,
        placed.t,
        backward=True,
        search_p=0.6,
        views_mean=1.2,
        cart_p=1.0,
        channel=placed.channel,
        category=placed.category,
        anon=pop.has_device[row] & (ctx.rng.random(placed.m) < 0.3),
        not_before=ctx.to_utc(pop.signup[row], row),
    )


@dataclass
class _Price:
    revenue: np.ndarray
    discount: np.ndarray
    used: np.ndarray  # a coupon was used (campaign or regular)
    use_campaign: np.ndarray
    code_text: pa.Array
    campaign_id: str
    items: np.ndarray


def _prices_and_coupons(ctx: Chunk, placed: _Placed) -> _Price:
    """Revenue (Gamma-Gamma) and coupons; price-sensitive customers use coupons more,
    treated customers use the campaign coupon on most orders of its window."""
    pop, rng, preset, person, m = ctx.pop, ctx.rng, ctx.preset, placed.person, placed.m
    spend = rng.gamma(preset.spend_p, 1.0 / pop.nu[person]) * pop.spend_mult[person]
    revenue = np.maximum(_money(ctx, person, spend, floor=False), 1.0)
    campaign_id, campaign_coupon = campaign_names(ctx.start_date, ctx.days)
    in_campaign = pop.treated[person] & (placed.t_local >= pop.issue_t[person])
    in_campaign &= placed.t_local < pop.issue_t[person] + CAMPAIGN_DAYS
    use_campaign = in_campaign & (rng.random(m) < 0.6)
    use_regular = ~use_campaign & (rng.random(m) < 0.05 + 0.35 * pop.price_sens[person])
    code = rng.integers(0, len(COUPONS), m)
    rate = np.where(use_campaign, CAMPAIGN_DISCOUNT, np.array([r for _, r in COUPONS])[code])
    code_text = pc.if_else(
        pa.array(use_campaign),
        campaign_coupon,
        choose([c for c, _ in COUPONS], np.where(use_regular, code, -1)),
    )
    return _Price(
        revenue=revenue,
        discount=_money(ctx, person, revenue * rate / (1.0 - rate), floor=False),
        used=use_campaign | use_regular,
        use_campaign=use_campaign,
        code_text=code_text,
        campaign_id=campaign_id,
        items=1 + rng.poisson(preset.items_per_order, m),
    )


def _order_events(ctx: Chunk, placed: _Placed, price: _Price, sid: np.ndarray) -> list[Block]:
    """The ``order`` events and, for orders with a coupon, ``coupon_redeemed``."""
    row, t, number, channel = placed.row, placed.t, placed.number, placed.channel
    order_props = json_object(
        [
            ("session_id", quoted(numbered("S", sid, 14))),
            ("items", number_text(price.items)),
            ("coupon_code", quoted(price.code_text)),
            ("discount", number_text(price.discount, 2, mask=~price.used)),
        ],
        placed.m,
    )
    order = block(
        "order",
        row,
        t,
        order_props,
        channel=channel,
        revenue=price.revenue,
        order=number,
        category=placed.category,
    )
    u = np.flatnonzero(price.used)
    coupon_props = json_object(
        [
            ("coupon_code", quoted(price.code_text.take(pa.array(u)))),
            ("discount", number_text(price.discount[u], 2)),
            ("campaign_id", quoted(_where(price.use_campaign[u], price.campaign_id))),
        ],
        u.size,
    )
    coupon = block(
        "coupon_redeemed", row[u], t[u], coupon_props, channel=channel[u], order=number[u]
    )
    return [order, coupon]


@dataclass
class _Shipping:
    promised: np.ndarray  # UTC days since the window start
    delivered: np.ndarray
    late_days: np.ndarray


def _deliveries(ctx: Chunk, placed: _Placed) -> _Shipping:
    """Promised vs actual delivery (local calendar days, converted to UTC)."""
    rng, m, late = ctx.rng, placed.m, placed.late
    lo, hi = ctx.preset.promised_days
    day0 = np.floor(placed.t_local)
    promised_days = rng.integers(lo, hi + 1, m)
    late_days = np.where(late, 1 + rng.poisson(1.5, m), 0)
    actual_days = np.where(late, promised_days + late_days, rng.integers(1, promised_days + 1))
    off = ctx.pop.off[placed.person]
    promised = day0 + promised_days + 20.0 / 24.0 - off
    delivered = day0 + actual_days + (9.0 + 11.0 * rng.random(m)) / 24.0 - off
    delivered = np.round(delivered * 86_400.0) / 86_400.0  # whole seconds, as in the text
    return _Shipping(promised=promised, delivered=delivered, late_days=late_days)


def _delivery_block(ctx: Chunk, placed: _Placed, ship: _Shipping) -> Block:
    """A ``delivery`` event at the delivery time, for deliveries inside the window."""
    d = np.flatnonzero(ctx.in_window(ship.delivered))
    delivery_props = json_object(
        [
            ("promised_ts", quoted(ctx.seconds_text(ship.promised[d]))),
            ("delivered_ts", quoted(ctx.seconds_text(ship.delivered[d]))),
            ("late_days", number_text(ship.late_days[d])),
        ],
        d.size,
    )
    return block(
        "delivery",
        placed.row[d],
        ship.delivered[d],
        delivery_props,
        channel=placed.channel[d],
        order=placed.number[d],
    )


def _ticket_blocks(ctx: Chunk, placed: _Placed, ship: _Shipping) -> list[Block]:
    """Support tickets: far more likely after a late delivery; some resolve slowly."""
    rng, m, late, slow = ctx.rng, placed.m, placed.late, placed.slow
    row, number = placed.row, placed.number
    opened = np.where(
        late, ship.promised + 0.1 + 0.9 * rng.random(m), ship.delivered + 0.1 + 3 * rng.random(m)
    )
    first_resp: np.ndarray = rng.lognormal(np.where(slow, np.log(10.0), np.log(2.0)), 0.6)
    fast_res = first_resp + 0.5 + 40.0 * rng.random(m)
    resolution = np.where(slow, 48.0 + rng.exponential(72.0, m), np.minimum(fast_res, 47.9))
    first_resp = np.round(np.minimum(first_resp, resolution - 0.1), 1)
    resolution = np.round(resolution, 1)
    resolved = opened + resolution / 24.0
    reason = np.where(late, 0, rng.integers(1, len(TICKET_REASONS), m))
    ticket_id = numbered("T", number, 14)
    o = np.flatnonzero(placed.ticket & ctx.in_window(opened))
    opened_props = json_object(
        [
            ("ticket_id", quoted(ticket_id.take(pa.array(o)))),
            ("reason", quoted(choose(TICKET_REASONS, reason[o]))),
        ],
        o.size,
    )
    r = np.flatnonzero(placed.ticket & ctx.in_window(resolved))
    resolved_props = json_object(
        [
            ("ticket_id", quoted(ticket_id.take(pa.array(r)))),
            ("first_response_hours", number_text(first_resp[r])),
            ("resolution_hours", number_text(resolution[r])),
        ],
        r.size,
    )
    return [
        block("ticket_opened", row[o], opened[o], opened_props, order=number[o]),
        block("ticket_resolved", row[r], resolved[r], resolved_props, order=number[r]),
    ]


def _refund_block(ctx: Chunk, placed: _Placed, revenue: np.ndarray, delivered: np.ndarray) -> Block:
    """Refunds (revenue ≤ the order's), more common after bad service."""
    rng, m, late, person = ctx.rng, placed.m, placed.late, placed.person
    refund_p = 0.025 + 0.08 * late + 0.1 * placed.slow
    full = rng.random(m) < 0.6
    refund_amount = np.where(
        full, revenue, _money(ctx, person, revenue * (0.1 + 0.8 * rng.random(m)), floor=True)
    )
    refund_t = delivered + 1.0 + 9.0 * rng.random(m)
    f = np.flatnonzero((rng.random(m) < refund_p) & ctx.in_window(refund_t))
    refund_reason = np.where(late[f], 0, rng.integers(1, len(REFUND_REASONS), f.size))
    refund_props = json_object(
        [
            ("reason", quoted(choose(REFUND_REASONS, refund_reason))),
            ("full", pc.if_else(pa.array(full[f]), "true", "false")),
        ],
        f.size,
    )
    return block(
        "refund",
        placed.row[f],
        refund_t[f],
        refund_props,
        channel=placed.channel[f],
        revenue=refund_amount[f],
        order=placed.number[f],
        category=placed.category[f],
    )


def _feedback(
    ctx: Chunk,
    row: np.ndarray,
    number: np.ndarray,
    category: np.ndarray,
    delivered: np.ndarray,
    satisfaction: np.ndarray,
) -> list[Block]:
    rng = ctx.rng
    m = row.size
    out = []
    nps_t = delivered + 1.0 + 3.0 * rng.random(m)
    s = np.flatnonzero((rng.random(m) < 0.15) & ctx.in_window(nps_t))
    score = np.clip(np.round(7.5 + 1.6 * satisfaction[s]), 0, 10).astype(np.int64)
    nps_props = json_object([("score", number_text(score))], s.size)
    out.append(block("nps_response", row[s], nps_t[s], nps_props, order=number[s]))

    review_t = delivered + 1.0 + 6.0 * rng.random(m)
    review_p = 0.04 + 0.06 * (np.abs(satisfaction) > 1.3)
    v = np.flatnonzero((rng.random(m) < review_p) & ctx.in_window(review_t))
    rating = np.clip(np.round(4.0 + 0.9 * satisfaction[v]), 1, 5).astype(np.int64)
    review_props = json_object([("rating", number_text(rating))], v.size)
    out.append(
        block("review", row[v], review_t[v], review_props, order=number[v], category=category[v])
    )

    share_t = delivered + 5.0 * rng.random(m)
    h = np.flatnonzero(
        (rng.random(m) < 0.004 + 0.03 * (satisfaction > 0.5)) & ctx.in_window(share_t)
    )
    target = rng.integers(0, len(SHARE_TARGETS), h.size)
    share_props = json_object([("target", quoted(choose(SHARE_TARGETS, target)))], h.size)
    out.append(block("share", row[h], share_t[h], share_props, order=number[h]))

    referral_t = delivered + 1.0 + 19.0 * rng.random(m)
    f = np.flatnonzero(
        (rng.random(m) < 0.002 + 0.02 * (satisfaction > 1.0)) & ctx.in_window(referral_t)
    )
    referral_props = json_object([("referral_code", quoted(numbered("R", number[f], 14)))], f.size)
    out.append(block("referral", row[f], referral_t[f], referral_props))
    return out
