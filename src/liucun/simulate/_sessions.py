"""Browsing sessions: visit → (search) → view(s) → (add_to_cart).

Three kinds share one builder: the session that ends in an order (same day, just before
it), browsing sessions without an order (rate proportional to λ while the customer is
alive; those with a cart are abandoned carts), and anonymous sessions before sign-up
that carry only ``anonymous_id``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from liucun.simulate._events import EVENT_CODE, Block, Chunk, block
from liucun.simulate._process import Lifetimes
from liucun.simulate._strings import choose, json_object, number_text, numbered, quoted

#: Mean days a never-buyer keeps browsing after sign-up.
NEVER_BUYER_BROWSE_DAYS = 45.0


def session_block(
    ctx: Chunk,
    rows: np.ndarray,
    anchor: np.ndarray,
    *,
    backward: bool,
    search_p: float,
    views_mean: float,
    cart_p: float,
    channel: np.ndarray,
    category: np.ndarray,
    known: bool | np.ndarray = True,
    anon: bool | np.ndarray = False,
    not_before: np.ndarray | None = None,
) -> tuple[Block, np.ndarray]:
    """Session events of ``rows``; ``anchor`` (UTC days) is the session's start, or its
    end when ``backward`` (then the session starts no earlier than the same day, local
    and UTC, nor before ``not_before``).

    Returns the block and the session numbers (for an order's ``session_id``).
    """
    s = rows.size
    sid = ctx.ids("session", s)
    if s == 0:
        return block("visit", rows, anchor, pa.array([], pa.string())), sid
    sess, etype = _session_steps(
        ctx.rng, s, search_p=search_p, views_mean=views_mean, cart_p=cart_p
    )
    t = _step_times(ctx, rows, anchor, sess, backward=backward, not_before=not_before)
    keep = ctx.in_window(t)
    sess, etype, t = sess[keep], etype[keep], t[keep]
    cat = category[sess]
    out = block(
        etype,
        rows[sess],
        t,
        _step_properties(ctx, sid, sess, etype, cat),
        known=np.broadcast_to(known, (s,))[sess],
        anon=np.broadcast_to(anon, (s,))[sess],
        channel=channel[sess],
        category=cat,
    )
    return out, sid


def _session_steps(
    rng: np.random.Generator, s: int, *, search_p: float, views_mean: float, cart_p: float
) -> tuple[np.ndarray, np.ndarray]:
    """The steps of ``s`` sessions: ``visit``, (``search``), ``view`` s, (``add_to_cart``).

    Returns each step's session (0 … s-1, sessions in order) and its event code.
    """
    has_search = rng.random(s) < search_p
    views = 1 + rng.poisson(views_mean, s)
    cart = rng.random(s) < cart_p
    n_ev = 1 + has_search + views + cart
    sess = np.repeat(np.arange(s), n_ev)
    starts = np.cumsum(n_ev) - n_ev
    pos = np.arange(sess.size) - starts[sess]
    n_pre = 1 + has_search[sess]
    etype = np.where(
        pos == 0,
        EVENT_CODE["visit"],
        np.where(
            pos < n_pre,
            EVENT_CODE["search"],
            np.where(pos < n_pre + views[sess], EVENT_CODE["view"], EVENT_CODE["add_to_cart"]),
        ),
    )
    return sess, etype


def _step_times(
    ctx: Chunk,
    rows: np.ndarray,
    anchor: np.ndarray,
    sess: np.ndarray,
    *,
    backward: bool,
    not_before: np.ndarray | None,
) -> np.ndarray:
    """UTC time of each step: 0.3-4 minutes apart, from ``anchor`` on, or ending at it
    (squeezed so that a backward session starts on the anchor's day)."""
    starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])
    gap = (0.3 + 3.7 * ctx.rng.random(sess.size)) / 1440.0
    cs = np.cumsum(gap)
    before = cs - gap - (cs[starts] - gap[starts])[sess]  # time from session start
    if not backward:
        return anchor[sess] + before
    total = np.add.reduceat(gap, starts)
    off = ctx.pop.off[rows]
    day_start = np.maximum(np.floor(anchor + off) - off, np.floor(anchor))
    if not_before is not None:
        day_start = np.maximum(day_start, not_before)
    factor = np.minimum(1.0, 0.999 * (anchor - day_start) / total)
    return anchor[sess] - (total[sess] - before) * factor[sess]


def _step_properties(
    ctx: Chunk, sid: np.ndarray, sess: np.ndarray, etype: np.ndarray, cat: np.ndarray
) -> pa.Array:
    """``properties`` of each step: session id, search query, product and quantity."""
    rng, m = ctx.rng, sess.size
    is_search = etype == EVENT_CODE["search"]
    is_cart = etype == EVENT_CODE["add_to_cart"]
    is_product = (etype == EVENT_CODE["view"]) | is_cart
    product = cat * 10_000 + np.minimum(rng.zipf(1.4, m), 9_999)
    quantity = 1 + rng.poisson(0.5 * ctx.preset.items_per_order, m)
    return json_object(
        [
            ("session_id", quoted(numbered("S", sid, 14).take(pa.array(sess)))),
            ("query", quoted(choose(ctx.preset.categories, np.where(is_search, cat, -1)))),
            ("product_id", quoted(numbered("P", product, 6, mask=~is_product))),
            ("quantity", number_text(quantity, mask=~is_cart)),
        ],
        m,
    )


def browsing_blocks(ctx: Chunk, life: Lifetimes) -> list[Block]:
    """Sessions without an order while alive, and anonymous sessions before sign-up."""
    pop, rng, cal = ctx.pop, ctx.rng, ctx.cal
    person = ~pop.is_dup
    w0, w1 = pop.off, ctx.days + pop.off
    browse_end = pop.signup + rng.exponential(NEVER_BUYER_BROWSE_DAYS, pop.n)
    stop = np.where(np.isnan(life.death_t), w1, life.death_t)
    stop = np.where(pop.never_buyer, browse_end, stop)
    a, b = np.maximum(pop.signup, w0), np.minimum(stop, w1)
    rate = ctx.preset.browse_per_order * pop.interest * np.where(pop.never_buyer, 0.5, 1.0)
    count = rng.poisson(rate * cal.mass(a, np.maximum(a, b)) * person)
    rows = np.repeat(np.arange(pop.n), count)
    t = ctx.to_utc(cal.sample(rng, a[rows], b[rows]), rows)
    anon = pop.has_device[rows] & (rng.random(rows.size) < 0.3)
    browse, _ = session_block(
        ctx,
        rows,
        t,
        backward=False,
        search_p=0.5,
        views_mean=1.5,
        cart_p=0.3,
        channel=ctx.session_channel(rows),
        category=ctx.category_of(rows),
        anon=anon,
    )

    # anonymous sessions in the two weeks before sign-up (only those that fall in the window)
    count = rng.poisson(1.2, pop.n) * (person & pop.has_device)
    rows = np.repeat(np.arange(pop.n), count)
    hi = pop.signup[rows] - 1.0 / 24.0
    t = ctx.to_utc(cal.sample(rng, hi - 14.0, hi), rows)
    anonymous, _ = session_block(
        ctx,
        rows,
        t,
        backward=False,
        search_p=0.3,
        views_mean=1.0,
        cart_p=0.1,
        channel=ctx.session_channel(rows),
        category=ctx.category_of(rows),
        known=False,
        anon=True,
    )
    return [anonymous, browse]
