"""Customers per segment: how many, what they spent, and their share of all customers.

What ``liucun segments`` shows and what a service's segment endpoint returns: the
customer profiles (:func:`customer_profiles`) as of a day, optionally narrowed by a
segment filter, grouped by RFM segment, 8-class RFM class or lifecycle stage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import ibis.expr.types as ir

from liucun.core import ConfigError, Hint
from liucun.segments._filter import parse_filter
from liucun.segments._profiles import customer_profiles
from liucun.segments._stages import StageRules

SegmentBy = Literal["rfm", "class", "stage"]
#: The profile column each grouping reads.
SEGMENT_COLUMNS: Final[dict[str, str]] = {
    "rfm": "rfm_segment",
    "class": "rfm_class",
    "stage": "stage",
}


def _column(by: str) -> str:
    column = SEGMENT_COLUMNS.get(by)
    if column is None:
        raise ConfigError(
            f"segments by {by!r}: use rfm, class or stage",
            hint=Hint("by", example="rfm"),
        )
    return column


def segment_customers(
    events: ir.Table,
    users: ir.Table,
    *,
    as_of: datetime,
    by: SegmentBy = "rfm",
    where: str | None = None,
    rules: StageRules | None = None,
) -> ir.Table:
    """The customers a segment summary counts: one profile row per customer as of
    ``as_of``, those matching the filter ``where`` (the segment filter language, e.g.
    ``'stage == "decline" and country == "DE"'``), and for ``by="rfm"`` or ``"class"``
    only customers with an order (RFM needs one). ``monetary`` is 0 for customers
    without orders.

    Raises
    ------
    ConfigError
        ``by`` is not rfm, class or stage.
    FilterSyntaxError
        ``where`` does not parse, or names an unknown column.
    """
    column = _column(by)
    table = customer_profiles(events, users, as_of=as_of, rules=rules)
    if where:
        table = table.filter(parse_filter(where, table))
    if by != "stage":
        table = table.filter(table[column].notnull())
    return table.mutate(monetary=table.monetary.fill_null(0.0))


def segment_summary(
    events: ir.Table,
    users: ir.Table,
    *,
    as_of: datetime,
    by: SegmentBy = "rfm",
    where: str | None = None,
    rules: StageRules | None = None,
) -> ir.Table:
    """Customers per segment, largest first: ``segment``, ``customers``, ``revenue``
    (their summed ``monetary``), ``mean_value`` and ``share`` (of the customers counted,
    so the shares add up to 1). Customers are those of :func:`segment_customers`.

    Examples
    --------
    >>> segment_summary(ws.events(), ws.customers(), as_of=end, by="stage")  # doctest: +SKIP
    """
    column = _column(by)
    table = segment_customers(events, users, as_of=as_of, by=by, where=where, rules=rules)
    summary = table.group_by(segment=table[column]).aggregate(
        customers=table.count(), revenue=table.monetary.sum(), mean_value=table.monetary.mean()
    )
    total = summary.customers.sum().as_scalar()
    summary = summary.mutate(share=summary.customers.cast("float64") / total)
    return summary.order_by([summary.customers.desc(), summary.segment])
