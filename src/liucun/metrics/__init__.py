"""Retention metrics as Ibis expressions (ARCHITECTURE §5)."""

from liucun.metrics._activity import active_users, funnel, lifecycle, stickiness
from liucun.metrics._commerce import churn_rate, order_value, repurchase_rate
from liucun.metrics._periods import PERIODS, period_start
from liucun.metrics._retention import (
    DEFAULT_BRACKETS,
    KINDS,
    Bracket,
    day_n_retention,
    parse_brackets,
    retention,
    weighted_mean,
)

__all__ = [
    "DEFAULT_BRACKETS",
    "KINDS",
    "PERIODS",
    "Bracket",
    "active_users",
    "churn_rate",
    "day_n_retention",
    "funnel",
    "lifecycle",
    "order_value",
    "parse_brackets",
    "period_start",
    "repurchase_rate",
    "retention",
    "stickiness",
    "weighted_mean",
]
