"""The sentence for an input of which no row was accepted: the main reason and its fix."""

from __future__ import annotations

from collections.abc import Mapping

from liucun.core import Hint, NothingLoaded

#: reason code → (what the rows have, as a verb phrase; what to change)
_REASONS: dict[str, tuple[str, Hint | None]] = {
    "missing_currency": (
        "lack a currency",
        Hint(option="currency", example="CNY", setting="ingest.currency"),
    ),
    "bad_currency": ("have a currency that is not an ISO 4217 code", None),
    "missing_revenue": (
        "are orders without an amount",
        Hint(option="mapping", example="YOUR_AMOUNT=revenue", setting="mapping"),
    ),
    "bad_revenue": ("have an amount that is not a number", None),
    "negative_revenue": ("have a negative amount", None),
    "missing_id": (
        "have no user id",
        Hint(option="mapping", example="YOUR_ID=user_id", setting="mapping"),
    ),
    "bad_timestamp": (
        "have a time that cannot be read",
        Hint(
            option="timestamp_format", example="%d/%m/%Y %H:%M", setting="ingest.timestamp_format"
        ),
    ),
    "missing_timestamp": (
        "have no time",
        Hint(option="mapping", example="YOUR_TIME=ts", setting="mapping"),
    ),
    "future_timestamp": (
        "lie in the future",
        Hint(option="source_timezone", example="Asia/Shanghai", setting="ingest.source_timezone"),
    ),
    "ancient_timestamp": ("lie before 1971", None),
    "unknown_event_type": (
        "have an unknown event type",
        Hint(option="event_types", example="catalog", setting="ingest.custom_event_types"),
    ),
    "conflicting_event_id": ("reuse the event_id of a different event", None),
    "implausible_revenue": (
        "have an amount above the maximum order value",
        Hint(option="max_order_value", example="1e10", setting="ingest.max_order_value"),
    ),
}


def nothing_loaded(name: str, rows: int, reasons: Mapping[str, int], load_id: str) -> NothingLoaded:
    """The error for input ``name`` of which none of ``rows`` rows was accepted.

    ``reasons`` counts the rejected rows by reason code (a row may have several).

    >>> str(nothing_loaded("orders.csv", 18079, {"missing_currency": 18079}, "L1"))
    'all 18,079 rows of orders.csv lack a currency (load L1; they are in the quarantine)'
    """
    if rows == 0:
        return NothingLoaded(f"{name} holds no rows (only a header); nothing was loaded from it")
    # the most common reason; among equals, one that comes with a fix
    ranked = sorted(
        reasons.items(), key=lambda kv: (-kv[1], _REASONS.get(kv[0], ("", None))[1] is None, kv[0])
    )
    code, n = ranked[0] if ranked else ("unknown", 0)
    phrase, hint = _REASONS.get(code, (f"were rejected ({code})", None))
    kept = f"(load {load_id}; they are in the quarantine)"
    if rows == 1:
        return NothingLoaded(
            f"the one row of {name} was rejected ({code}) (load {load_id}; it is in the "
            "quarantine)",
            hint=hint,
        )
    if n >= rows:
        return NothingLoaded(f"all {rows:,} rows of {name} {phrase} {kept}", hint=hint)
    return NothingLoaded(
        f"none of the {rows:,} rows of {name} was accepted; {n:,} {phrase} {kept}", hint=hint
    )
