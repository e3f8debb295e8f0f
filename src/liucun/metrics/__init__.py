"""Retention metrics as Ibis expressions (ARCHITECTURE §5)."""

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
    "day_n_retention",
    "parse_brackets",
    "period_start",
    "retention",
    "weighted_mean",
]
