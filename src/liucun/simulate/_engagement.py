"""Sign-ups, marketing messages and the past coupon campaign."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from liucun.simulate._events import Block, Chunk, block
from liucun.simulate._orders import CAMPAIGN_DISCOUNT
from liucun.simulate._population import MEDIA, campaign_names
from liucun.simulate._process import Lifetimes
from liucun.simulate._strings import choose, json_object, number_text, numbered, quoted

#: Mean days until a subscriber unsubscribes; after dropout it comes much sooner.
UNSUBSCRIBE_DAYS = 1500.0
UNSUBSCRIBE_AFTER_DROPOUT_DAYS = 120.0


def signup_block(ctx: Chunk) -> Block:
    """``signup`` events; a device seen before sign-up is linked here (login)."""
    pop = ctx.pop
    t = ctx.to_utc(pop.signup, np.arange(pop.n))
    rows = np.flatnonzero(ctx.in_window(t))
    method = np.where(pop.is_dup[rows], 1, 0)
    props = json_object(
        [
            (
                "acquisition_channel",
                quoted(choose([a.name for a in ctx.preset.acquisition], pop.acq[rows])),
            ),
            ("method", quoted(choose(("online", "loyalty_card"), method))),
        ],
        rows.size,
    )
    return block(
        "signup",
        rows,
        t[rows],
        props,
        anon=pop.has_device[rows],
        channel=pop.primary[rows],
    )


def message_blocks(ctx: Chunk, life: Lifetimes) -> list[Block]:
    """A newsletter at a steady cadence while subscribed; opens and clicks fall after
    dropout."""
    pop, rng = ctx.pop, ctx.rng
    n = pop.n
    interval = float(ctx.preset.message_interval_days)
    first = np.floor(pop.signup) + 1.0 + rng.integers(0, int(interval), n)
    first += (10.0 + rng.random(n)) / 24.0
    unsub = pop.signup + rng.exponential(UNSUBSCRIBE_DAYS, n)
    dead = ~np.isnan(life.death_t)
    after = np.where(dead, life.death_t, np.inf) + rng.exponential(
        UNSUBSCRIBE_AFTER_DROPOUT_DAYS, n
    )
    unsub = np.minimum(unsub, after)
    limit = np.minimum(unsub, ctx.days + pop.off)
    k_min = np.maximum(0.0, np.ceil((pop.off - first) / interval))
    k_max = np.ceil((limit - first) / interval)
    count = np.maximum(k_max - k_min, 0).astype(np.int64) * (~pop.is_dup & pop.opt_in)
    rows = np.repeat(np.arange(n), count)
    starts = np.cumsum(count) - count
    k = k_min[rows] + (np.arange(rows.size) - starts[rows])
    t_local = first[rows] + k * interval
    t = ctx.to_utc(t_local, rows)
    m = rows.size
    mid = numbered("M", ctx.ids("message", m), 14)
    medium = choose(MEDIA, pop.medium[rows])

    open_rate = rng.beta(2.0, 5.0, n)
    click_rate = rng.beta(1.5, 6.0, n)
    alive = np.isnan(life.death_t[rows]) | (t_local < life.death_t[rows])
    engaged = np.where(pop.never_buyer[rows], 0.6, np.where(alive, 1.0, 0.25))
    opened = rng.random(m) < open_rate[rows] * engaged
    t_open = t + rng.exponential(5.0 / 24.0, m)
    clicked = opened & (rng.random(m) < click_rate[rows] * np.where(alive, 1.0, 0.3))
    t_click = t_open + rng.exponential(15.0 / 1440.0, m)

    sent_props = json_object(
        [("message_id", quoted(mid)), ("medium", quoted(medium)), ("topic", '"newsletter"')], m
    )
    out = [block("message_sent", rows, t, sent_props)]
    for name, mask, times in (
        ("message_opened", opened, t_open),
        ("message_clicked", clicked, t_click),
    ):
        i = np.flatnonzero(mask & ctx.in_window(times))
        take = pa.array(i)
        props = json_object(
            [("message_id", quoted(mid.take(take))), ("medium", quoted(medium.take(take)))], i.size
        )
        out.append(block(name, rows[i], times[i], props))
    return out


def campaign_block(ctx: Chunk) -> Block:
    """``coupon_issued`` to the treated half of the campaign population."""
    pop = ctx.pop
    t = ctx.to_utc(pop.issue_t, np.arange(pop.n))
    rows = np.flatnonzero(pop.treated & ~pop.is_dup & ctx.in_window(t))
    campaign_id, code = campaign_names(ctx.start_date, ctx.days)
    props = json_object(
        [
            ("campaign_id", f'"{campaign_id}"'),
            ("variant", '"treatment"'),
            ("coupon_code", f'"{code}"'),
            ("discount_rate", number_text(np.full(rows.size, CAMPAIGN_DISCOUNT))),
        ],
        rows.size,
    )
    return block("coupon_issued", rows, t[rows], props)
