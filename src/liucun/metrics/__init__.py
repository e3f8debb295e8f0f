"""Retention metrics as Ibis expressions (ARCHITECTURE §5)."""

from liucun.metrics._activity import active_users, funnel, lifecycle, stickiness
from liucun.metrics._commerce import (
    churn_rate,
    ltv_cac,
    order_value,
    orders,
    repurchase_rate,
    time_to_second_order,
)
from liucun.metrics._money import FX_FIX, convert_money, in_reporting_currency
from liucun.metrics._periods import PERIODS, days_between, period_start, window_start
from liucun.metrics._properties import has_deal, property_number, property_text
from liucun.metrics._retention import (
    DEFAULT_BRACKETS,
    KINDS,
    Bracket,
    check_event_types,
    day_n_retention,
    parse_brackets,
    repeat_within,
    retention,
    weighted_mean,
)

__all__ = [
    "DEFAULT_BRACKETS",
    "FX_FIX",
    "KINDS",
    "PERIODS",
    "Bracket",
    "active_users",
    "check_event_types",
    "churn_rate",
    "convert_money",
    "day_n_retention",
    "days_between",
    "funnel",
    "has_deal",
    "in_reporting_currency",
    "lifecycle",
    "ltv_cac",
    "order_value",
    "orders",
    "parse_brackets",
    "period_start",
    "property_number",
    "property_text",
    "repeat_within",
    "repurchase_rate",
    "retention",
    "stickiness",
    "time_to_second_order",
    "weighted_mean",
    "window_start",
]
