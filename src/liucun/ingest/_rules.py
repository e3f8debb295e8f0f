"""Validation rules for events and users, as Ibis expressions over a whole input table.

A rule set turns the raw input (canonical names already applied) into

* ``table``: the input plus one column per parsed value, so every value is parsed once
  (DuckDB does not share a repeated expression inside CASE/COALESCE, and the checks
  would otherwise re-parse the same text many times);
* ``values``: the canonical columns, parsed (columns of ``table``);
* ``checks``: (code, failed, message) triples, one per rule, where ``failed`` is a
  boolean column and ``message`` a sentence naming the line, the field, the value and
  the fix.

:func:`checked_table` keeps the parsed columns with an ``_ok`` flag; :func:`rejected_rows`
renders the failures of the rows that broke at least one rule.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from liucun.ingest._contact import contact_columns, hashed, marked, redacted
from liucun.ingest._currencies import ISO_4217
from liucun.ingest._event_types import EVENT_TYPE_NAME
from liucun.ingest._parse import (
    date,
    is_json_object,
    number,
    offset_out_of_range,
    one_of,
    present,
    shown,
    text,
    timestamp_utc,
)
from liucun.schema import (
    LIUCUN_EVENT_TYPES,
    MONETARY_EVENT_TYPES,
    STANDARD_EVENT_TYPES,
    ContactKind,
    column_names,
)
from liucun.warehouse import LINE, epoch_us, json_merge_patch

OK = "_ok"
PARSED = "__p_"
MIN_TS = datetime(1971, 1, 1, tzinfo=UTC)
IDENTITY_COLUMNS = ("anonymous_id", "device_id", "email_hash", "phone_hash", "loyalty_card")
NULL_TEXT = ibis.null("string")


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
    #: money above this (in the row's own currency) is implausible (``[ingest] max_order_value``)
    max_order_value: float = 1e9
    #: accept any well-formed event type (``--allow-new-event-types``)
    allow_new_event_types: bool = False
    #: the workspace secret; contact data is hashed under it (required when there is any)
    hash_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Check:
    code: str
    failed: ir.BooleanValue
    message: ir.StringValue


@dataclass(frozen=True)
class RuleSet:
    table: ir.Table
    values: dict[str, ir.Value]
    checks: list[Check]
    #: ``events`` or ``users``: which fields are sensitive follows from it
    target: str
    #: when set, a NULL ``event_id`` is derived from these parsed columns
    id_fields: tuple[str, ...] = ()
    #: the key that hashes contact data (None when the input holds none)
    hash_key: bytes | None = field(default=None, repr=False)


class _Parsed:
    """The input with its parsed values (and "was a value given" flags) as columns."""

    def __init__(self, t: ir.Table, values: Mapping[str, ir.Value], given: Sequence[str]):
        flags = {f"{PARSED}given_{c}": present(t[c]) for c in given}
        self.table = t.mutate(**{PARSED + k: e for k, e in values.items()}, **flags)
        self.values = {k: self.table[PARSED + k] for k in values}
        self.line = self.table[LINE]

    def __getitem__(self, name: str) -> ir.Value:
        return self.values[name]

    def raw(self, column: str) -> ir.Value:
        return self.table[column]

    def given(self, column: str) -> ir.BooleanValue:
        return self.table[f"{PARSED}given_{column}"]


def _msg(line: ir.IntegerValue, field: str, *parts: str | ir.Value) -> ir.StringValue:
    out: ir.StringValue = ibis.literal("line ") + line.cast("string") + f", field '{field}': "
    for part in parts:
        out = out + part
    return out


def _check(code: str, failed: ir.BooleanValue, message: ir.StringValue) -> Check:
    return Check(code, failed.fill_null(False), message)


def _json_value(
    t: ir.Table,
    extras: Sequence[str],
    base: str,
    contact: Mapping[str, ContactKind],
    key: bytes | None,
) -> ir.StringValue:
    """The JSON column: the input's own JSON column merged with every extra column;
    contact data among the extras is replaced by its marked keyed hash."""
    own = text(t[base]) if base in t.columns else None
    if not extras:
        return own if own is not None else NULL_TEXT
    fields = {
        c: marked(t[c], contact[c], key) if c in contact and key is not None else t[c]
        for c in extras
    }
    packed = ibis.struct(fields).cast("json").cast("string")
    if own is None:
        return packed
    return ibis.ifelse(own.isnull(), packed, json_merge_patch(own, packed))


def _json_checks(p: _Parsed, base: str) -> list[Check]:
    if base not in p.table.columns:
        return []
    own = text(p.raw(base))
    return [
        _check(
            "bad_json",
            ~is_json_object(own),
            _msg(
                p.line,
                base,
                "'",
                shown(own),
                '\' is not a JSON object; write e.g. {"coupon": "SPRING10"}',
            ),
        )
    ]


def _country_check(p: _Parsed) -> Check:
    country = p["country"]
    return _check(
        "bad_country",
        country.notnull() & ~country.re_search(r"^[A-Z]{2}$"),
        _msg(
            p.line,
            "country",
            "'",
            shown(country),
            "' is not an ISO 3166-1 alpha-2 code; use two letters such as CN, US or DE",
        ),
    )


def _timestamp_checks(p: _Parsed, field: str, opts: RuleOptions, *, required: bool) -> list[Check]:
    given, ts, raw = p.given(field), p[field], p.raw(field)
    hint = (
        f"use the timestamp format {opts.timestamp_format!r} (ingest.timestamp_format)"
        if opts.timestamp_format
        else "use ISO 8601, e.g. 2024-01-31T09:00:00Z, or set the timestamp format "
        "(ingest.timestamp_format)"
    )
    hours = opts.future_tolerance.total_seconds() / 3600
    why = ibis.ifelse(
        offset_out_of_range(raw),
        "' has a UTC offset beyond ±14:00, which no place on Earth uses; fix the offset "
        "(e.g. -05:00) or drop it and set the time zone (ingest.source_timezone)",
        f"' is not a date/time; {hint}",
    )
    checks = [
        _check(
            "bad_timestamp",
            given & ts.isnull(),
            _msg(p.line, field, "'", shown(raw), why),
        ),
        _check(
            "future_timestamp",
            ts > ibis.literal(opts.now + opts.future_tolerance),
            _msg(
                p.line,
                field,
                "'",
                shown(raw),
                f"' is more than {hours:g} h in the "
                "future; check the time zone of the input (ingest.source_timezone) or "
                "raise ingest.future_tolerance_hours",
            ),
        ),
        _check(
            "ancient_timestamp",
            ts < ibis.literal(MIN_TS),
            _msg(
                p.line,
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
                "missing_timestamp", ~given, _msg(p.line, field, "is empty; every row needs a time")
            )
        )
    return checks


def _texts(t: ir.Table, names: Sequence[str]) -> dict[str, ir.Value]:
    return {n: text(t[n]) if n in t.columns else NULL_TEXT for n in names}


# -- events -------------------------------------------------------------------------------

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


def event_rules(t: ir.Table, opts: RuleOptions, *, source: str = "input") -> RuleSet:
    """Parse and check an events input whose columns already carry canonical names.

    The steps follow docs/data-model.md: parse every canonical column once, then check
    the ids, the event type, the time, the money and the codes.
    """
    contact = contact_columns(t.columns, opts.hash_key, source=source)
    has_revenue = "revenue" in t.columns
    p = _Parsed(
        t, _event_values(t, opts, contact), given=["ts", *(["revenue"] if has_revenue else [])]
    )
    checks = [
        *_event_id_checks(p),
        *_event_type_checks(p, opts),
        *_timestamp_checks(p, "ts", opts, required=True),
        *(_revenue_checks(p, opts) if has_revenue else _no_revenue_checks(p)),
        *_currency_checks(p),
        _country_check(p),
        *_json_checks(p, "properties"),
    ]
    key = opts.hash_key if contact else None
    return RuleSet(p.table, p.values, checks, "events", id_fields=_ID_FIELDS, hash_key=key)


def _event_values(
    t: ir.Table, opts: RuleOptions, contact: Mapping[str, ContactKind]
) -> dict[str, ir.Value]:
    """Every canonical events column, parsed; other columns packed into ``properties``."""
    canonical = set(column_names("events"))
    v = _texts(t, ("user_id", "anonymous_id", "account_id", "order_id", "category", "region"))
    v["channel"] = text(t["channel"]).lower() if "channel" in t.columns else NULL_TEXT
    v["event_type"] = (
        ibis.literal(opts.event_type)
        if opts.event_type is not None
        else text(t["event_type"]).lower()
    )
    v["ts"] = timestamp_utc(t["ts"], fmt=opts.timestamp_format, zone=opts.source_timezone)
    v["revenue"] = number(t["revenue"]) if "revenue" in t.columns else ibis.null("float64")
    cur = text(t["currency"]).upper() if "currency" in t.columns else NULL_TEXT
    if opts.default_currency is not None:
        cur = cur.fill_null(opts.default_currency.upper())
    v["currency"] = cur
    v["country"] = text(t["country"]).upper() if "country" in t.columns else NULL_TEXT
    extras = [c for c in t.columns if c not in canonical and c != LINE]
    v["properties"] = _json_value(t, extras, "properties", contact, opts.hash_key)
    v["event_id"] = text(t["event_id"]) if "event_id" in t.columns else NULL_TEXT
    return v


def _event_id_checks(p: _Parsed) -> list[Check]:
    return [
        _check(
            "missing_id",
            p["user_id"].isnull() & p["anonymous_id"].isnull(),
            _msg(
                p.line, "user_id", "is empty and so is anonymous_id; every event needs one of them"
            ),
        )
    ]


def _event_type_checks(p: _Parsed, opts: RuleOptions) -> list[Check]:
    """A known event type (standard or declared), or with ``allow_new_event_types`` any
    well-formed name. Event types are compared lower-cased."""
    if opts.allow_new_event_types:
        return [
            _check(
                "unknown_event_type",
                ~p["event_type"].re_search(EVENT_TYPE_NAME),
                _msg(
                    p.line,
                    "event_type",
                    "'",
                    shown(p["event_type"]),
                    "' is not a usable event type name; use letters, digits and _ (e.g. "
                    "catalog_view), at most 64 characters",
                ),
            )
        ]
    known = sorted({*STANDARD_EVENT_TYPES, *opts.custom_event_types})
    # the sentence lists what a shop sends; the types liucun writes itself are accepted too
    shop_types = [t for t in known if t not in LIUCUN_EVENT_TYPES]
    return [
        _check(
            "unknown_event_type",
            ~one_of(p["event_type"], known),
            _msg(
                p.line,
                "event_type",
                "'",
                shown(p["event_type"]),
                f"' is not a known event type (known: {', '.join(shop_types)}); declare it "
                "as a "
                "custom event type for the load or the workspace (ingest.custom_event_types), "
                "or allow new event types for the load",
            ),
        )
    ]


def _limit_text(limit: float) -> str:
    return f"{limit:,.0f}" if limit >= 1 else f"{limit:g}"


def _revenue_checks(p: _Parsed, opts: RuleOptions) -> list[Check]:
    """An input with a revenue column: a finite, plausible number, not negative on orders
    and refunds, given on every order."""
    rev, raw_rev, given = p["revenue"], p.raw("revenue"), p.given("revenue")
    monetary = one_of(p["event_type"], MONETARY_EVENT_TYPES)
    limit = opts.max_order_value
    non_finite = rev.isnan() | rev.isinf()
    return [
        _check(
            "bad_revenue",
            given & (rev.isnull() | non_finite),
            _msg(
                p.line,
                "revenue",
                "'",
                shown(raw_rev),
                ibis.ifelse(
                    rev.isnull(),
                    "' is not a number; write plain digits with a dot for decimals, e.g. 1234.50",
                    "' is not a finite number; an amount must be a number of at most "
                    f"{_limit_text(limit)} ([ingest] max_order_value); fix the value",
                ),
            ),
        ),
        _check(
            "implausible_revenue",
            ~non_finite & (rev.abs() > limit),
            _msg(
                p.line,
                "revenue",
                "'",
                shown(raw_rev),
                f"' is above the maximum order value {_limit_text(limit)} (in the row's "
                "currency); fix the amount, or raise [ingest] max_order_value in liucun.toml "
                "if orders this large are real",
            ),
        ),
        _check(
            "negative_revenue",
            monetary & ~non_finite & (rev < 0),
            _msg(
                p.line,
                "revenue",
                "'",
                shown(raw_rev),
                "' is negative; store order "
                "and refund amounts as positive numbers (a refund is its own event "
                "type)",
            ),
        ),
        _check(
            "missing_revenue",
            (p["event_type"] == "order") & ~given,
            _msg(p.line, "revenue", "is empty on an order; every order needs its amount"),
        ),
    ]


def _no_revenue_checks(p: _Parsed) -> list[Check]:
    """An input without a revenue column: it cannot hold orders."""
    return [
        _check(
            "missing_revenue",
            p["event_type"] == "order",
            _msg(
                p.line,
                "revenue",
                "is missing on an order; add a revenue column, or map the column that "
                "holds the amount onto revenue",
            ),
        )
    ]


def _currency_checks(p: _Parsed) -> list[Check]:
    cur = p["currency"]
    return [
        _check(
            "bad_currency",
            cur.notnull() & ~one_of(cur, ISO_4217),
            _msg(
                p.line,
                "currency",
                "'",
                shown(cur),
                "' is not an ISO 4217 currency code; use three letters such as CNY, USD or EUR",
            ),
        ),
        _check(
            "missing_currency",
            p["revenue"].notnull() & cur.isnull(),
            _msg(
                p.line,
                "currency",
                "is empty but revenue is given; add a currency column or set a default "
                "currency (ingest.currency)",
            ),
        ),
    ]


def fingerprint(values: Sequence[ir.Value]) -> ir.StringValue:
    """md5 of the values' text, NULL-safe (NULL and '' differ), as 32 hex digits."""
    parts = [
        (epoch_us(x) if x.type().is_timestamp() else x).cast("string").fill_null("\x1e")
        for x in values
    ]
    return ibis.literal("\x1f").join(parts).hexdigest("md5")


# -- users --------------------------------------------------------------------------------


def user_rules(t: ir.Table, opts: RuleOptions, *, source: str = "input") -> RuleSet:
    """Parse and check a users input whose columns already carry canonical names.

    Contact data never becomes a column: the first e-mail and phone columns are the
    user's ``email_hash`` / ``phone_hash`` aliases (:func:`identity_values`), any other
    goes hashed into ``attributes``.
    """
    contact = contact_columns(t.columns, opts.hash_key, source=source)
    given = [c for c in ("signup_ts", "acquisition_cost", "birthday") if c in t.columns]
    p = _Parsed(t, _user_values(t, opts, contact), given=given)
    checks = [
        *_user_id_checks(p),
        *_user_code_checks(p),
        *_json_checks(p, "attributes"),
    ]
    if "signup_ts" in t.columns:
        checks += _timestamp_checks(p, "signup_ts", opts, required=False)
    checks += _user_number_checks(p, opts)
    key = opts.hash_key if contact else None
    return RuleSet(p.table, p.values, checks, "users", hash_key=key)


def _user_values(
    t: ir.Table, opts: RuleOptions, contact: Mapping[str, ContactKind]
) -> dict[str, ir.Value]:
    """Every canonical users column, parsed; other columns (but aliases) in ``attributes``."""
    canonical = set(column_names("users"))
    v = _texts(
        t,
        (
            "user_id",
            "account_id",
            "company_size",
            "industry",
            "region",
            "language",
            "acquisition_channel",
            "timezone",
        ),
    )
    v["customer_type"] = (
        text(t["customer_type"]).lower() if "customer_type" in t.columns else NULL_TEXT
    )
    v["signup_ts"] = (
        timestamp_utc(t["signup_ts"], fmt=opts.timestamp_format, zone=opts.source_timezone)
        if "signup_ts" in t.columns
        else ibis.null("timestamp('UTC', 6)")
    )
    v["country"] = text(t["country"]).upper() if "country" in t.columns else NULL_TEXT
    v["acquisition_cost"] = (
        number(t["acquisition_cost"]) if "acquisition_cost" in t.columns else ibis.null("float64")
    )
    v["birthday"] = date(t["birthday"]) if "birthday" in t.columns else ibis.null("date")
    aliases = {*IDENTITY_COLUMNS, *_alias_columns(contact).values()}
    extras = [c for c in t.columns if c not in canonical and c != LINE and c not in aliases]
    v["attributes"] = _json_value(t, extras, "attributes", contact, opts.hash_key)
    return v


def _user_id_checks(p: _Parsed) -> list[Check]:
    return [
        _check(
            "missing_id",
            p["user_id"].isnull(),
            _msg(p.line, "user_id", "is empty; every user row needs its id"),
        )
    ]


def _user_code_checks(p: _Parsed) -> list[Check]:
    ctype, tz = p["customer_type"], p["timezone"]
    return [
        _check(
            "bad_customer_type",
            ctype.notnull() & ~one_of(ctype, ["b2c", "b2b"]),
            _msg(p.line, "customer_type", "'", shown(ctype), "' is not b2c or b2b"),
        ),
        _country_check(p),
        _check(
            "bad_timezone",
            tz.notnull() & ~one_of(tz, zoneinfo.available_timezones()),
            _msg(
                p.line,
                "timezone",
                "'",
                shown(tz),
                "' is not an IANA time zone; use e.g. Asia/Shanghai or Europe/Berlin",
            ),
        ),
    ]


def _user_number_checks(p: _Parsed, opts: RuleOptions) -> list[Check]:
    """acquisition_cost a finite number in [0, max_order_value], birthday a date (when the
    input has them)."""
    checks = []
    if "acquisition_cost" in p.table.columns:
        cost = p["acquisition_cost"]
        limit = opts.max_order_value
        # NaN is neither < 0 nor NULL, and DuckDB orders it above every number: test it first
        non_finite = cost.isnan() | cost.isinf()
        checks.append(
            _check(
                "bad_cost",
                p.given("acquisition_cost")
                & (cost.isnull() | non_finite | (cost < 0) | (cost > limit)),
                _msg(
                    p.line,
                    "acquisition_cost",
                    "'",
                    shown(p.raw("acquisition_cost")),
                    ibis.cases(
                        (cost.isnull(), "' is not a number ≥ 0; write plain digits, e.g. 12.50"),
                        (
                            non_finite,
                            "' is not a finite number; a cost must be a number ≥ 0 of at most "
                            f"{_limit_text(limit)} ([ingest] max_order_value); fix the value",
                        ),
                        (cost < 0, "' is negative; a cost is a number ≥ 0"),
                        else_=f"' is above {_limit_text(limit)} ([ingest] max_order_value), "
                        "not a plausible acquisition cost; fix the value or raise the setting",
                    ),
                ),
            )
        )
    if "birthday" in p.table.columns:
        checks.append(
            _check(
                "bad_date",
                p.given("birthday") & p["birthday"].isnull(),
                _msg(
                    p.line,
                    "birthday",
                    "'",
                    shown(p.raw("birthday")),
                    "' is not a date; use YYYY-MM-DD",
                ),
            )
        )
    return checks


def _alias_columns(contact: Mapping[str, ContactKind]) -> dict[str, str]:
    """The contact column that gives each alias: the first e-mail and the first phone."""
    out: dict[str, str] = {}
    for column, kind in contact.items():
        out.setdefault(f"{kind}_hash", column)
    return out


def identity_values(t: ir.Table, key: bytes | None) -> dict[str, ir.StringValue]:
    """Alias columns of a users input; raw e-mail and phone become keyed hashes.

    An ``email_hash`` / ``phone_hash`` column of the input is taken as given (it is the
    platform's own pseudonym) and wins over a raw e-mail / phone column.
    """
    out = {c: text(t[c]) for c in IDENTITY_COLUMNS if c in t.columns}
    inputs = [c for c in t.columns if not c.startswith(PARSED)]
    contact = contact_columns(inputs, key, source="input")
    for alias, column in _alias_columns(contact).items():
        if alias not in out and key is not None:
            out[alias] = hashed(t[column], contact[column], key)
    return out


def checked_table(rules: RuleSet, keep: Mapping[str, ir.Value] | None = None) -> ir.Table:
    """The parsed canonical columns, ``_line`` and ``_ok`` (all rules passed).

    ``keep`` adds columns, computed on ``rules.table``.
    """
    t = rules.table
    ok = ibis.literal(True)
    for check in rules.checks:
        ok = ok & ~check.failed
    out = t.select(**rules.values, **(keep or {}), **{LINE: t[LINE], OK: ok})
    if rules.id_fields:  # derived ids hash the parsed columns, computed once above
        derived = fingerprint([out[f] for f in rules.id_fields])
        out = out.mutate(event_id=out.event_id.fill_null(derived))
    return out


def rejected_rows(rules: RuleSet) -> ir.Table:
    """One row per input row that broke a rule: line, raw JSON, codes and messages.

    The raw JSON is the row as read, except that sensitive fields (contact data) hold
    their marked keyed hash: the quarantine never stores them in clear.
    """
    t = rules.table
    raw_cols = {c: t[c] for c in t.columns if c != LINE and not c.startswith(PARSED)}
    raw_cols.update(redacted(t, list(raw_cols), rules.target, rules.hash_key))
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
