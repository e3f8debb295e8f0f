"""Values out of the JSON text of ``properties`` (events) and ``attributes`` (users).

Regular expressions on the text rather than JSON functions: Ibis runs JSON functions as
Python UDFs on Spark, while regular expressions run natively on both backends. They read
flat keys, which is what the canonical tables hold.
"""

from __future__ import annotations

import re

import ibis.expr.types as ir

_POSITIVE_DISCOUNT = r'"discount"\s*:\s*"?0*([1-9]|\.0*[1-9])'
_COUPON = r'"coupon_code"\s*:\s*"[^"]'


def property_number(props: ir.StringValue, key: str) -> ir.FloatingValue:
    """The number stored under ``key`` (quoted or not), NULL when absent or not a number."""
    text = props.re_extract(rf'"{re.escape(key)}"\s*:\s*"?(-?[0-9]+(?:\.[0-9]+)?)', 1)
    return text.nullif("").try_cast("float64")


def property_text(props: ir.StringValue, key: str) -> ir.StringValue:
    """The string stored under ``key``, NULL when absent or empty."""
    return props.re_extract(rf'"{re.escape(key)}"\s*:\s*"([^"]*)"', 1).nullif("")


def has_deal(props: ir.StringValue) -> ir.BooleanValue:
    """A positive ``discount`` or a non-empty ``coupon_code`` (an order bought on a deal)."""
    return props.re_search(_POSITIVE_DISCOUNT) | props.re_search(_COUPON)
