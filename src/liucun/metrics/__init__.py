"""Retention metrics as Ibis expressions (ARCHITECTURE §5)."""

from liucun.metrics._periods import PERIODS, period_start
from liucun.metrics._retention import retention

__all__ = ["PERIODS", "period_start", "retention"]
