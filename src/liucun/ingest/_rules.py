"""Validation rules for events and users, as Ibis expressions over a whole input table.

A rule set turns the raw input (canonical names already applied) into

* ``values``: the canonical columns, parsed; and
* ``checks``: (code, failed, message) triples, one per rule, where ``failed`` is a
  boolean column and ``message`` a sentence naming the line, the field, the value and
  the fix.

:func:`checked_table` keeps the parsed columns with an ``_ok`` flag; :func:`rejected_rows`
renders the failures of the rows that broke at least one rule.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from liucun.ingest._currencies import ISO_4217
from liucun.ingest._parse import (
    date,
    is_json_object,
    number,
    present,
    shown,
    text,
    timestamp_utc,
)
from liucun.schema import MONETARY_EVENT_TYPES, STANDARD_EVENT_TYPES, column_names
from liucun.warehouse import LINE, epoch_us, json_merge_patch

OK = "_ok"
MIN_TS = datetime(1971, 1, 1, tzinfo=UTC)
IDENTITY_COLUMNS = ("anonymous_id", "device_id", "email_hash", "phone_hash", "loyalty_card")
PII_IDENTITY_COLUMNS = ("email", "phone")


@dataclass(frozen=True)
class RuleOptions:
    """What the rules need to know besides the data."""

    now: datetime
    future_tolerance: timedelta = timedelta(hours=24)
    timestamp_format: str | None = None
    source_timezone: str = "UTC"
    event_type: str | None = None
    custom_event_types: tuple[str, ...] = ()
    default_currency: str | None = None


@dataclass(frozen=True)
class Check:
    code: str
    failed: ir.BooleanValue
    message: ir.StringValue


@dataclass(frozen=True)
class RuleSet:
    values: dict[str, ir.Value]
    checks: list[Check]
    extras: dict[str, ir.Value]
    #: when set, a NULL ``event_id`` is derived from these parsed columns
    id_fields: tuple[str, ...] = ()


def _msg(line: ir.IntegerValue, field: str, *parts: str | ir.Value) -> ir.StringValue:
    out: ir.StringValue = ibis.literal("line ") + line.cast("string") + f", field '{field}': "
    for part in parts:
        out = out + part
    return out


def _check(code: str, failed: ir.BooleanValue, message: ir.StringValue) -> Check:
    return Check(code, failed.fill_null(False), message)


def _properties(
    t: ir.Table, extras: Mapping[str, ir.Value], base: str
) -> tuple[ir.StringValue, list[Check]]:
    """The JSON column: the input's own JSON column merged with every extra column."""
    checks: list[Check] = []
    own = text(t[base]) if base in t.columns else None
    if own is not None:
        checks.append(
            _check(
                "bad_json",
                ~is_json_object(own),
                _msg(
                    t[LINE],
                    base,
                    "'",
                    shown(own),
                    '\' is not a JSON object; write e.g. {"coupon": "SPRING10"}',
                ),
            )
        )
    if not extras:
        return (own if own is not None else ibis.null("string")), checks
    packed = ibis.struct(dict(extras)).cast("json").cast("string")
    if own is None:
        return packed, checks
    return ibis.ifelse(own.isnull(), packed, json_merge_patch(own, packed)), checks


def _country(raw: ir.Value | None, line: ir.IntegerValue) -> tuple[ir.StringValue, Check]:
    """An upper-cased ISO 3166-1 alpha-2 code, and its check."""
    country = text(raw).upper() if raw is not None else ibis.null("string")
    return country, _check(
        "bad_country",
        country.notnull() & ~country.re_search(r"^[A-Z]{2}$"),
        _msg(
            line,
            "country",
            "'",
            shown(country),
            "' is not an ISO 3166-1 alpha-2 code; use two letters such as CN, US or DE",
        ),
    )


def _timestamp_checks(
    t: ir.Table,
    field: str,
    raw: ir.Value,
    ts: ir.TimestampValue,
    opts: RuleOptions,
    *,
    required: bool,
) -> list[Check]:
    given = present(raw)
    hint = (
        f"use the format {opts.timestamp_format!r} (--timestamp-format)"
        if opts.timestamp_format
        else "use ISO 8601, e.g. 2024-01-31T09:00:00Z, or set --timestamp-format"
    )
    latest = opts.now + opts.future_tolerance
    checks = [
        _check(
            "bad_timestamp",
            given & ts.isnull(),
            _msg(t[LINE], field, "'", shown(raw), f"' is not a date/time; {hint}"),
        ),
        _check(
            "future_timestamp",
            ts > ibis.literal(latest),
            _msg(
                t[LINE],
                field,
                "'",
                shown(raw),
                "' is more than "
                f"{opts.future_tolerance.total_seconds() / 3600:g} h in the future; check the "
                "time zone (--source-timezone) or raise ingest.future_tolerance_hours",
            ),
        ),
        _check(
            "ancient_timestamp",
            ts < ibis.literal(MIN_TS),
            _msg(
                t[LINE],
                field,
                "'",
                shown(raw),
                "' is before 1971, usually a zero or a timestamp in the wrong unit; fix the value",
            ),
        ),
    ]
    if required:
        checks.append(
            _check(
                "missing_timestamp",
                ~given,
                _msg(t[LINE], field, "is empty; every row needs a time"),
            )
        )
    return checks


def event_rules(t: ir.Table, opts: RuleOptions) -> RuleSet:
    """Parse and check an events input whose columns already carry canonical names."""
    canonical = set(column_names("events"))
    line = t[LINE]
    col = {c: t[c] for c in t.columns if c in canonical}
    null = ibis.null("string")
    v: dict[str, ir.Value] = {}
    checks: list[Check] = []

    for name in ("user_id", "anonymous_id", "account_id", "order_id", "category", "region"):
        v[name] = text(col[name]) if name in col else null
    v["channel"] = text(col["channel"]).lower() if "channel" in col else null
    checks.append(
        _check(
            "missing_id",
            v["user_id"].isnull() & v["anonymous_id"].isnull(),
            _msg(line, "user_id", "is empty and so is anonymous_id; every event needs one of them"),
        )
    )

    if opts.event_type is not None:
        v["event_type"] = ibis.literal(opts.event_type)
    else:
        v["event_type"] = text(col["event_type"]).lower()
    known = sorted({*STANDARD_EVENT_TYPES, *opts.custom_event_types})
    checks.append(
        _check(
            "unknown_event_type",
            ~v["event_type"].isin(known),
            _msg(
                line,
                "event_type",
                "'",
                shown(v["event_type"]),
                "' is not a known "
                "event type; use one of the standard types (see docs/data-model.md)"
                " or add it to ingest.custom_event_types",
            ),
        )
    )

    v["ts"] = timestamp_utc(col["ts"], fmt=opts.timestamp_format, zone=opts.source_timezone)
    checks += _timestamp_checks(t, "ts", col["ts"], v["ts"], opts, required=True)

    monetary = v["event_type"].isin(list(MONETARY_EVENT_TYPES))
    if "revenue" in col:
        raw_rev = col["revenue"]
        rev = number(raw_rev)
        v["revenue"] = rev
        given = present(raw_rev)
        checks += [
            _check(
                "bad_revenue",
                given & (rev.isnull() | rev.isnan() | rev.isinf()),
                _msg(
                    line,
                    "revenue",
                    "'",
                    shown(raw_rev),
                    "' is not a number; write plain digits with a dot for decimals, e.g. 1234.50",
                ),
            ),
            _check(
                "negative_revenue",
                monetary & (rev < 0),
                _msg(
                    line,
                    "revenue",
                    "'",
                    shown(raw_rev),
                    "' is negative; store order and "
                    "refund amounts as positive numbers (a refund is its own event type)",
                ),
            ),
            _check(
                "missing_revenue",
                (v["event_type"] == "order") & ~given,
                _msg(line, "revenue", "is empty on an order; every order needs its amount"),
            ),
        ]
    else:
        v["revenue"] = ibis.null("float64")
        checks.append(
            _check(
                "missing_revenue",
                v["event_type"] == "order",
                _msg(
                    line,
                    "revenue",
                    "is missing on an order; add a revenue column (or --map YOUR_AMOUNT=revenue)",
                ),
            )
        )

    cur = text(col["currency"]).upper() if "currency" in col else null
    if opts.default_currency is not None:
        cur = cur.fill_null(opts.default_currency.upper())
    v["currency"] = cur
    checks += [
        _check(
            "bad_currency",
            cur.notnull() & ~cur.isin(sorted(ISO_4217)),
            _msg(
                line,
                "currency",
                "'",
                shown(cur),
                "' is not an ISO 4217 currency code; use three letters such as CNY, USD or EUR",
            ),
        ),
        _check(
            "missing_currency",
            v["revenue"].notnull() & cur.isnull(),
            _msg(
                line,
                "currency",
                "is empty but revenue is given; add a currency column or pass --currency CODE",
            ),
        ),
    ]
    v["country"], country_check = _country(col.get("country"), line)
    checks.append(country_check)

    given_id = text(col["event_id"]) if "event_id" in col else null
    extras = {c: t[c] for c in t.columns if c not in canonical and c != LINE}
    props, prop_checks = _properties(t, extras, "properties")
    v["properties"] = props
    checks += prop_checks
    v["event_id"] = given_id
    return RuleSet(v, checks, extras, id_fields=_ID_FIELDS)


_ID_FIELDS = (
    "event_type",
    "user_id",
    "anonymous_id",
    "account_id",
    "ts",
    "order_id",
    "revenue",
    "currency",
    "channel",
    "region",
    "country",
    "category",
    "properties",
)


def fingerprint(values: Sequence[ir.Value]) -> ir.StringValue:
    """md5 of the values' text, NULL-safe (NULL and '' differ), as 32 hex digits."""
    parts = [
        (epoch_us(x) if x.type().is_timestamp() else x).cast("string").fill_null("\x1e")
        for x in values
    ]
    return ibis.literal("\x1f").join(parts).hexdigest("md5")


def user_rules(t: ir.Table, opts: RuleOptions) -> RuleSet:
    """Parse and check a users input whose columns already carry canonical names."""
    canonical = set(column_names("users"))
    line = t[LINE]
    col = {c: t[c] for c in t.columns if c in canonical}
    null = ibis.null("string")
    v: dict[str, ir.Value] = {}
    checks: list[Check] = []
    for name in (
        "user_id",
        "account_id",
        "company_size",
        "industry",
        "region",
        "language",
        "acquisition_channel",
    ):
        v[name] = text(col[name]) if name in col else null
    checks.append(
        _check(
            "missing_id",
            v["user_id"].isnull(),
            _msg(line, "user_id", "is empty; every user row needs its id"),
        )
    )
    v["customer_type"] = text(col["customer_type"]).lower() if "customer_type" in col else null
    checks.append(
        _check(
            "bad_customer_type",
            v["customer_type"].notnull() & ~v["customer_type"].isin(["b2c", "b2b"]),
            _msg(line, "customer_type", "'", shown(v["customer_type"]), "' is not b2c or b2b"),
        )
    )
    if "signup_ts" in col:
        v["signup_ts"] = timestamp_utc(
            col["signup_ts"], fmt=opts.timestamp_format, zone=opts.source_timezone
        )
        checks += _timestamp_checks(
            t, "signup_ts", col["signup_ts"], v["signup_ts"], opts, required=False
        )
    else:
        v["signup_ts"] = ibis.null("timestamp('UTC', 6)")
    v["country"], country_check = _country(col.get("country"), line)
    checks.append(country_check)
    tz = text(col["timezone"]) if "timezone" in col else null
    v["timezone"] = tz
    checks.append(
        _check(
            "bad_timezone",
            tz.notnull() & ~tz.isin(sorted(zoneinfo.available_timezones())),
            _msg(
                line,
                "timezone",
                "'",
                shown(tz),
                "' is not an IANA time zone; use e.g. Asia/Shanghai or Europe/Berlin",
            ),
        )
    )
    if "acquisition_cost" in col:
        raw = col["acquisition_cost"]
        cost = number(raw)
        checks.append(
            _check(
                "bad_cost",
                text(raw).notnull() & (cost.isnull() | (cost < 0)),
                _msg(line, "acquisition_cost", "'", shown(raw), "' is not a number ≥ 0"),
            )
        )
        v["acquisition_cost"] = cost
    else:
        v["acquisition_cost"] = ibis.null("float64")
    if "birthday" in col:
        raw = col["birthday"]
        v["birthday"] = date(raw)
        checks.append(
            _check(
                "bad_date",
                text(raw).notnull() & v["birthday"].isnull(),
                _msg(line, "birthday", "'", shown(raw), "' is not a date; use YYYY-MM-DD"),
            )
        )
    else:
        v["birthday"] = ibis.null("date")
    identity = set(IDENTITY_COLUMNS) | set(PII_IDENTITY_COLUMNS)
    extras = {c: t[c] for c in t.columns if c not in canonical and c != LINE and c not in identity}
    attrs, attr_checks = _properties(t, extras, "attributes")
    v["attributes"] = attrs
    checks += attr_checks
    return RuleSet(v, checks, extras)


def identity_values(t: ir.Table) -> dict[str, ir.StringValue]:
    """Alias columns of a users input; raw e-mail and phone are hashed, never stored."""
    out = {c: text(t[c]) for c in IDENTITY_COLUMNS if c in t.columns}
    if "email" in t.columns and "email_hash" not in out:
        out["email_hash"] = text(t["email"]).lower().hexdigest("sha256")
    if "phone" in t.columns and "phone_hash" not in out:
        digits = text(t["phone"]).re_replace(r"[^0-9+]", "")
        out["phone_hash"] = digits.nullif("").hexdigest("sha256")
    return out


def checked_table(
    t: ir.Table, rules: RuleSet, keep: Mapping[str, ir.Value] | None = None
) -> ir.Table:
    """The parsed canonical columns, ``_line`` and ``_ok`` (all rules passed)."""
    ok = ibis.literal(True)
    for check in rules.checks:
        ok = ok & ~check.failed
    out = t.select(**rules.values, **(keep or {}), **{LINE: t[LINE], OK: ok})
    if rules.id_fields:  # derived ids hash the parsed columns, computed once above
        derived = fingerprint([out[f] for f in rules.id_fields])
        out = out.mutate(event_id=out.event_id.fill_null(derived))
    return out


def rejected_rows(t: ir.Table, rules: RuleSet) -> ir.Table:
    """One row per input row that broke a rule: line, raw JSON, codes and messages."""
    raw_cols = {c: t[c] for c in t.columns if c != LINE}
    null = ibis.null("string")
    codes = ibis.array([ibis.ifelse(c.failed, c.code, null) for c in rules.checks])
    msgs = ibis.array([ibis.ifelse(c.failed, c.message, null) for c in rules.checks])
    any_failed = ibis.literal(False)
    for check in rules.checks:
        any_failed = any_failed | check.failed
    return t.filter(any_failed).select(
        line=t[LINE],
        raw=ibis.struct(raw_cols).cast("json").cast("string"),
        reason_codes=codes.filter(lambda x: x.notnull()),
        reasons=msgs.filter(lambda x: x.notnull()),
    )
