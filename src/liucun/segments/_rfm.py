"""RFM: quintile scores, the 11 named segments and the 8-class high/low model.

See docs/metrics.md for the tables. Pure Ibis, one row per customer who ordered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError
from liucun.metrics import days_between, orders

#: The 11 segments on the R × F quintile grid: ``SEGMENT_GRID[r - 1][f - 1]``.
SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    ("Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"),  # R = 1
    ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),  # R = 2
    ("About To Sleep", "About To Sleep", "Need Attention", "Loyal", "Loyal"),  # R = 3
    ("Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Champions"),  # R = 4
    ("New Customers", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"),
)
SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)
#: The 8-class model, keyed by (R high, F high, M high): (English, 中文).
CLASSES: dict[tuple[bool, bool, bool], tuple[str, str]] = {
    (True, True, True): ("Important value", "重要价值客户"),
    (True, False, True): ("Important development", "重要发展客户"),
    (False, True, True): ("Important retention", "重要保持客户"),
    (False, False, True): ("Important recall", "重要挽留客户"),
    (True, True, False): ("General value", "一般价值客户"),
    (True, False, False): ("General development", "一般发展客户"),
    (False, True, False): ("General retention", "一般保持客户"),
    (False, False, False): ("General recall", "一般挽留客户"),
}


def _quintile(value: ir.NumericValue, *, higher_is_better: bool) -> ir.IntegerValue:
    """Score 1–5 by rank; equal values always share a score (ties are never split)."""
    key = value if higher_is_better else -value
    rank = ibis.rank().over(order_by=key)  # 0-based, ties share the lowest rank
    n = value.count().over()
    return (rank * 5 // n + 1).cast("int8")


def rfm(
    events: ir.Table,
    *,
    as_of: datetime,
    since: datetime | None = None,
    threshold: Literal["mean", "median"] = "mean",
    social: bool = False,
) -> ir.Table:
    """RFM per customer from orders before ``as_of`` (and from ``since``).

    Columns: ``user_id, recency_days, frequency, monetary, r_score, f_score, m_score,
    rfm_score`` ("545"), ``rfm_segment`` (one of :data:`SEGMENTS`), ``rfm_class`` and
    ``rfm_class_zh`` (the 8-class model: each of R, F, M high when better than the
    customers' ``threshold``), and with ``social=True`` ``social_actions`` (reviews +
    shares + referrals) and ``social_high``.
    """
    if threshold not in ("mean", "median"):
        raise ConfigError(f"threshold must be mean or median, got {threshold!r}")
    ev = events.filter(events.user_id.notnull() & (events.ts < as_of))
    if since is not None:
        ev = ev.filter(ev.ts >= since)
    bought = orders(events, since, as_of)
    per = bought.group_by("user_id").aggregate(
        _last=bought.ts.max(), frequency=bought.count(), monetary=bought.revenue.fill_null(0).sum()
    )
    per = per.mutate(recency_days=days_between(ibis.literal(as_of), per._last))
    scored = per.mutate(
        r_score=_quintile(per.recency_days, higher_is_better=False),
        f_score=_quintile(per.frequency, higher_is_better=True),
        m_score=_quintile(per.monetary, higher_is_better=True),
    )
    pick = (lambda c: c.mean()) if threshold == "mean" else (lambda c: c.median())
    r_high = scored.recency_days < pick(scored.recency_days).over()
    f_high = scored.frequency > pick(scored.frequency).over()
    m_high = scored.monetary > pick(scored.monetary).over()
    segment = ibis.cases(
        *[
            ((scored.r_score == r + 1) & (scored.f_score == f + 1), name)
            for r, row in enumerate(SEGMENT_GRID)
            for f, name in enumerate(row)
        ],
    )
    cls = ibis.cases(
        *[
            ((r_high == r) & (f_high == f) & (m_high == m), en)
            for (r, f, m), (en, _) in CLASSES.items()
        ]
    )
    cls_zh = ibis.cases(
        *[
            ((r_high == r) & (f_high == f) & (m_high == m), zh)
            for (r, f, m), (_, zh) in CLASSES.items()
        ]
    )
    out = scored.select(
        "user_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        rfm_score=scored.r_score.cast("string")
        + scored.f_score.cast("string")
        + scored.m_score.cast("string"),
        rfm_segment=segment,
        rfm_class=cls,
        rfm_class_zh=cls_zh,
    )
    if not social:
        return out
    acts = ev.filter(ev.event_type.isin(["review", "share", "referral"]))
    acts = acts.group_by("user_id").aggregate(social_actions=acts.count())
    joined = out.left_join(acts, out.user_id == acts.user_id)
    joined = joined.select(*out.columns, social_actions=joined.social_actions.fill_null(0))
    return joined.mutate(social_high=joined.social_actions > pick(joined.social_actions).over())
