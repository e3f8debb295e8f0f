"""Orders inside the window and everything that follows them.

For each order: its session, the ``order`` event (revenue, coupon), ``coupon_redeemed``,
``delivery`` (promised vs actual), support tickets, ``refund``, ``nps_response`` and the
social events (``review``, ``share``, ``referral``), all tied to the order's service
experience and the customer's satisfaction.
"""

from __future__ import annotations

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
    """Events of the orders placed inside the window."""
    pop, rng, preset = ctx.pop, ctx.rng, ctx.preset
    t_all = ctx.to_utc(orders.t, orders.row)
    keep = ctx.in_window(t_all)
    person, t_local, t = orders.row[keep], orders.t[keep], t_all[keep]
    late, slow, ticket = orders.late[keep], orders.slow[keep], orders.ticket[keep]
    m = person.size

    # the account the order is placed on: a duplicate registration takes a share
    dup = pop.dup_row[person]
    routed = (dup >= 0) & (t_local >= pop.signup[np.maximum(dup, 0)])
    routed &= rng.random(m) < DUPLICATE_ORDER_SHARE
    row = np.where(routed, dup, person)
    number = ctx.ids("order", m)
    names = ctx.channel_names()
    channel = ctx.session_channel(person)
    if "offline_store" in names:
        channel = np.where(routed, names.index("offline_store"), channel)
    category = ctx.category_of(person)

    session, sid = session_block(
        ctx,
        row,
        t,
        backward=True,
        search_p=0.6,
        views_mean=1.2,
        cart_p=1.0,
        channel=channel,
        category=category,
        anon=pop.has_device[row] & (rng.random(m) < 0.3),
        not_before=ctx.to_utc(pop.signup[row], row),
    )

    # revenue (Gamma-Gamma) and coupons; price-sensitive customers use coupons more
    spend = rng.gamma(preset.spend_p, 1.0 / pop.nu[person]) * pop.spend_mult[person]
    revenue = np.maximum(_money(ctx, person, spend, floor=False), 1.0)
    campaign_id, campaign_coupon = campaign_names(ctx.start_date, ctx.days)
    in_campaign = pop.treated[person] & (t_local >= pop.issue_t[person])
    in_campaign &= t_local < pop.issue_t[person] + CAMPAIGN_DAYS
    use_campaign = in_campaign & (rng.random(m) < 0.6)
    use_regular = ~use_campaign & (rng.random(m) < 0.05 + 0.35 * pop.price_sens[person])
    code = rng.integers(0, len(COUPONS), m)
    rate = np.where(use_campaign, CAMPAIGN_DISCOUNT, np.array([r for _, r in COUPONS])[code])
    used = use_campaign | use_regular
    discount = _money(ctx, person, revenue * rate / (1.0 - rate), floor=False)
    code_text = pc.if_else(
        pa.array(use_campaign),
        campaign_coupon,
        choose([c for c, _ in COUPONS], np.where(use_regular, code, -1)),
    )
    items = 1 + rng.poisson(preset.items_per_order, m)
    order_props = json_object(
        [
            ("session_id", quoted(numbered("S", sid, 14))),
            ("items", number_text(items)),
            ("coupon_code", quoted(code_text)),
            ("discount", number_text(discount, 2, mask=~used)),
        ],
        m,
    )
    out = [
        session,
        block(
            "order",
            row,
            t,
            order_props,
            channel=channel,
            revenue=revenue,
            order=number,
            category=category,
        ),
    ]
    u = np.flatnonzero(used)
    coupon_props = json_object(
        [
            ("coupon_code", quoted(code_text.take(pa.array(u)))),
            ("discount", number_text(discount[u], 2)),
            ("campaign_id", quoted(_where(use_campaign[u], campaign_id))),
        ],
        u.size,
    )
    out.append(
        block("coupon_redeemed", row[u], t[u], coupon_props, channel=channel[u], order=number[u])
    )

    # delivery: promised vs actual (local calendar days, converted to UTC)
    lo, hi = preset.promised_days
    day0 = np.floor(t_local)
    promised_days = rng.integers(lo, hi + 1, m)
    late_days = np.where(late, 1 + rng.poisson(1.5, m), 0)
    actual_days = np.where(late, promised_days + late_days, rng.integers(1, promised_days + 1))
    off = pop.off[person]
    promised = day0 + promised_days + 20.0 / 24.0 - off
    delivered = day0 + actual_days + (9.0 + 11.0 * rng.random(m)) / 24.0 - off
    delivered = np.round(delivered * 86_400.0) / 86_400.0  # whole seconds, as in the text
    d = np.flatnonzero(ctx.in_window(delivered))
    delivery_props = json_object(
        [
            ("promised_ts", quoted(ctx.seconds_text(promised[d]))),
            ("delivered_ts", quoted(ctx.seconds_text(delivered[d]))),
            ("late_days", number_text(late_days[d])),
        ],
        d.size,
    )
    out.append(
        block("delivery", row[d], delivered[d], delivery_props, channel=channel[d], order=number[d])
    )

    # support tickets: far more likely after a late delivery; some resolve slowly
    opened = np.where(
        late, promised + 0.1 + 0.9 * rng.random(m), delivered + 0.1 + 3 * rng.random(m)
    )
    first_resp = rng.lognormal(np.where(slow, np.log(10.0), np.log(2.0)), 0.6)
    fast_res = first_resp + 0.5 + 40.0 * rng.random(m)
    resolution = np.where(slow, 48.0 + rng.exponential(72.0, m), np.minimum(fast_res, 47.9))
    first_resp = np.round(np.minimum(first_resp, resolution - 0.1), 1)
    resolution = np.round(resolution, 1)
    resolved = opened + resolution / 24.0
    reason = np.where(late, 0, rng.integers(1, len(TICKET_REASONS), m))
    ticket_id = numbered("T", number, 14)
    o = np.flatnonzero(ticket & ctx.in_window(opened))
    opened_props = json_object(
        [
            ("ticket_id", quoted(ticket_id.take(pa.array(o)))),
            ("reason", quoted(choose(TICKET_REASONS, reason[o]))),
        ],
        o.size,
    )
    out.append(block("ticket_opened", row[o], opened[o], opened_props, order=number[o]))
    r = np.flatnonzero(ticket & ctx.in_window(resolved))
    resolved_props = json_object(
        [
            ("ticket_id", quoted(ticket_id.take(pa.array(r)))),
            ("first_response_hours", number_text(first_resp[r])),
            ("resolution_hours", number_text(resolution[r])),
        ],
        r.size,
    )
    out.append(block("ticket_resolved", row[r], resolved[r], resolved_props, order=number[r]))

    # refunds (revenue ≤ the order's), NPS and social, driven by satisfaction
    satisfaction = pop.sat[person] - 1.5 * late - 1.0 * slow + 0.6 * rng.standard_normal(m)
    refund_p = 0.025 + 0.08 * late + 0.1 * slow
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
    out.append(
        block(
            "refund",
            row[f],
            refund_t[f],
            refund_props,
            channel=channel[f],
            revenue=refund_amount[f],
            order=number[f],
            category=category[f],
        )
    )
    out += _feedback(ctx, row, number, category, delivered, satisfaction)
    return out


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
