"""Column parsers as Ibis expressions: text, numbers, timestamps, dates, JSON.

Each parser looks at the *input* column's type when the expression is built, so typed
input (Parquet) costs nothing and text input (CSV) is converted with ``TRY_CAST``-style
operations that give NULL instead of failing the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from liucun.warehouse import json_valid, local_to_utc, try_strptime

UTC_TS = dt.Timestamp(timezone="UTC", scale=6)
_OFFSET = r"\d:\d\d(:\d\d(\.\d*)?)?\s*(Z|z|[+-]\d\d(:?\d\d)?)$"
_EPOCH_S = r"^(\d{1,7}|\d{9,11})(\.\d+)?$"  # 8 digits are a compact date, YYYYMMDD
_EPOCH_MS = r"^\d{12,13}$"
_COMPACT_DATE = r"^\d{8}$"
#: A UTC offset beyond ±14:00 (the widest in use, UTC+14 in Kiribati; ISO 8601 and DuckDB
#: accept up to ±99:59, so ``-25:00`` would silently move the time by a day).
_WILD_OFFSET = r"\d:\d\d(:\d\d(\.\d*)?)?\s*[+-](1[5-9]|[2-9]\d|14:?(0[1-9]|[1-5]\d))(:?\d\d)?$"


def as_string(col: ir.Value) -> ir.StringValue:
    """The value as text, the way a CSV file would hold it.

    A JSON Lines column whose rows mix types (a number in one row, a string in another)
    is read as JSON: its strings lose their quotes here, so ``"2024-01-01T10:00:00Z"``
    reads as the timestamp it is and the same rules apply as to CSV text.
    """
    kind = col.type()
    if kind.is_string():
        return col
    if kind.is_json():
        return col.str.fill_null(col.cast("string"))  # type: ignore[attr-defined]
    return col.cast("string")


def text(col: ir.Value) -> ir.StringValue:
    """Trimmed text; empty becomes NULL."""
    s = as_string(col)
    # Most values need no trimming; testing the ends first saves copying every string.
    padded = s.re_search(r"^\s|\s$")
    s = ibis.ifelse(padded, s.strip(), s)
    return s.nullif("")


def one_of(value: ir.StringValue, allowed: Iterable[str]) -> ir.BooleanValue:
    """True when ``value`` is one of ``allowed`` (NULL stays NULL).

    One anchored regular expression instead of ``IN (...)``: DuckDB expands a long IN list
    into comparisons that each re-evaluate ``value``, which made the currency check alone
    cost more than reading the file.
    """
    pattern = "^(?:" + "|".join(re.escape(a) for a in sorted(set(allowed))) + ")$"
    return value.re_search(pattern)


def present(col: ir.Value) -> ir.BooleanValue:
    """True when the input holds a value (text that is not blank, or any typed value)."""
    kind = col.type()
    return text(col).notnull() if kind.is_string() or kind.is_json() else col.notnull()


def shown(col: ir.Value, width: int = 60) -> ir.StringValue:
    """The value as it should appear inside an error message."""
    return as_string(col).fill_null("").substr(0, width)


def offset_out_of_range(col: ir.Value) -> ir.BooleanValue:
    """True when text ends in a time with a UTC offset beyond ±14:00, e.g. ``-25:00``."""
    kind = col.type()
    if not (kind.is_string() or kind.is_json()):
        return ibis.literal(False)
    return text(col).re_search(_WILD_OFFSET).fill_null(False)


def number(col: ir.Value) -> ir.FloatingValue:
    """A float64, NULL when the text is not a number."""
    if col.type().is_numeric():
        return col.cast("float64")
    return text(col).try_cast("float64")


def timestamp_utc(col: ir.Value, *, fmt: str | None, zone: str) -> ir.TimestampValue:
    """A UTC timestamp from text (ISO 8601, epoch seconds/millis, or ``fmt``), dates or timestamps.

    Naive values are wall-clock times in ``zone``.
    """
    kind = col.type()
    if kind.is_timestamp():
        if kind.timezone is not None:
            return col.cast(UTC_TS)
        return _localize(col.cast(dt.Timestamp(scale=6)), zone)
    if kind.is_date():
        return _localize(col.cast(dt.Timestamp(scale=6)), zone)
    if kind.is_integer() or kind.is_floating():
        seconds = ibis.ifelse(col.abs() >= 100_000_000_000, col / 1000, col)
        return _from_epoch(seconds)
    s = text(col)
    wild = s.re_search(_WILD_OFFSET)
    return ibis.ifelse(wild, ibis.null(UTC_TS), _text_timestamp(s, fmt=fmt, zone=zone))


def _text_timestamp(s: ir.StringValue, *, fmt: str | None, zone: str) -> ir.TimestampValue:
    if fmt is not None:
        parsed = try_strptime(s, fmt)
        return parsed.cast(UTC_TS) if "%z" in fmt else _localize(parsed, zone)
    aware = s.try_cast(UTC_TS)  # ISO 8601 with an offset, or naive read as UTC
    fallback = ibis.cases(  # only evaluated where the cast failed
        (s.re_search(_EPOCH_S), _from_epoch(s.try_cast("float64"))),
        (s.re_search(_EPOCH_MS), _from_epoch(s.try_cast("float64") / 1000)),
        (s.re_search(_COMPACT_DATE), _localize(try_strptime(s, "%Y%m%d"), zone)),
        else_=ibis.null(UTC_TS),
    )
    if zone == "UTC":
        return aware.fill_null(fallback)
    local = _localize(s.try_cast(dt.Timestamp(scale=6)), zone)
    return ibis.cases((aware.isnull(), fallback), (s.re_search(_OFFSET), aware), else_=local)


def _from_epoch(seconds: ir.NumericValue) -> ir.TimestampValue:
    millis = (seconds.cast("float64") * 1000).round().cast("int64")
    return millis.as_timestamp("ms").cast(UTC_TS)  # type: ignore[attr-defined]


def _localize(naive: ir.TimestampValue, zone: str) -> ir.TimestampValue:
    if zone == "UTC":
        return naive.cast(UTC_TS)
    return local_to_utc(zone, naive)


def date(col: ir.Value, *, fmt: str | None = None) -> ir.DateValue:
    """A date from text (ISO ``YYYY-MM-DD`` or ``fmt``), a date or a timestamp."""
    kind = col.type()
    if kind.is_date():
        return col
    if kind.is_timestamp():
        return col.date()
    s = text(col)
    if fmt is not None:
        return try_strptime(s, fmt).date()
    return s.try_cast("date")


def is_json_object(s: ir.StringValue) -> ir.BooleanValue:
    """True when ``s`` is NULL or a JSON object."""
    return s.isnull() | (json_valid(s) & s.startswith("{"))
