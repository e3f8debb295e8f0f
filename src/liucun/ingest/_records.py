"""One event or one user arriving over HTTP, validated as a pydantic model.

Files are validated column-wise by the ingest rules (:mod:`liucun.ingest._rules`); a
record posted to the service is checked here, one at a time, against the same rules
and with the same constants (event types, ISO 4217 codes, the order-value limit, the
1971 floor), so that a request is answered at once: a bad field is a 422 naming
``events[3].ts``, and nothing of the request is stored. What passes is written to the
inbox and later loaded through the normal ingest path, which checks it again (anything
that slips through lands in the quarantine; nothing is lost).

The rules that depend on the workspace (its custom event types, its default currency,
"now") come in the validation context, built by :func:`record_context`::

    EventBatch.model_validate_json(body, context=record_context(ws.settings, ws.clock.now()))

Differences from file ingest, on purpose (docs/api.md): a timestamp must carry its UTC
offset (``Z`` or ``+08:00``) or be epoch seconds/milliseconds, and may lie at most
``[serve] future_skew_s`` (default 300 s) in the future, not a day; ids are at most
:data:`MAX_ID` characters; no field beyond the canonical ones is accepted (your own
fields go in ``properties`` / ``attributes``).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from liucun.core import Settings, close_match, yaml_path
from liucun.ingest._currencies import ISO_4217
from liucun.ingest._rules import IDENTITY_COLUMNS, MIN_TS
from liucun.schema import LIUCUN_EVENT_TYPES, MONETARY_EVENT_TYPES, STANDARD_EVENT_TYPES

#: The longest id (event, user, anonymous, order, account) a record may carry.
MAX_ID = 200
#: The longest other text value (category, region, channel, …).
MAX_TEXT = 200
_COUNTRY = re.compile(r"^[A-Z]{2}$")
#: Alias types a user record may link (``email`` and ``phone`` are hashed at once).
ALIAS_TYPES = (*IDENTITY_COLUMNS, "email", "phone")

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
#: A time: ISO 8601 text with its UTC offset, or epoch seconds / milliseconds.
Instant = Annotated[str | int | float, Field(union_mode="left_to_right")]


@dataclass(frozen=True)
class RecordContext:
    """What validating a record needs to know besides the record."""

    now: datetime
    future_skew: timedelta = timedelta(seconds=300)
    custom_event_types: tuple[str, ...] = ()
    default_currency: str | None = None
    max_order_value: float = 1e9
    known_event_types: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        known = {*STANDARD_EVENT_TYPES, *(t.strip().lower() for t in self.custom_event_types)}
        object.__setattr__(self, "known_event_types", frozenset(known))


def record_context(settings: Settings, now: datetime) -> dict[str, RecordContext]:
    """The validation context of records posted to a workspace with ``settings`` at ``now``."""
    ing = settings.ingest
    return {
        "liucun": RecordContext(
            now=now.astimezone(UTC),
            future_skew=timedelta(seconds=settings.serve.future_skew_s),
            custom_event_types=tuple(ing.custom_event_types),
            default_currency=ing.currency,
            max_order_value=ing.max_order_value,
        )
    }


def _context(info: ValidationInfo) -> RecordContext:
    ctx = info.context.get("liucun") if isinstance(info.context, Mapping) else None
    return ctx if isinstance(ctx, RecordContext) else RecordContext(now=datetime.now(UTC))


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _limit_text(limit: float) -> str:
    return f"{limit:,.0f}" if limit >= 1 else f"{limit:g}"


def parse_instant(value: str | int | float, ctx: RecordContext) -> datetime:
    """A record's time as an aware UTC datetime, or a :class:`PydanticCustomError` saying
    what is wrong and how to write it."""
    if isinstance(value, bool):
        raise _error(
            "bad_timestamp", "true/false is not a time; send ISO 8601 text or epoch seconds"
        )
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _error("bad_timestamp", f"{value} is not a finite number of seconds")
        seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
        try:
            when = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise _error(
                "bad_timestamp", f"{value} is not a usable epoch time in seconds"
            ) from None
    else:
        text = value.strip()
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise _error(
                "bad_timestamp",
                f"{_shown(text)} is not a date/time; use ISO 8601 with its UTC "
                "offset, e.g. 2024-01-31T09:00:00Z, or epoch seconds",
            ) from None
        offset = when.utcoffset() if when.tzinfo is not None else None
        if offset is None or len(text) <= 10:
            raise _error(
                "bad_timestamp",
                f"{_shown(text)} has no UTC offset, so the instant is ambiguous; "
                "add it, e.g. 2024-01-31T09:00:00Z or 2024-01-31T17:00:00+08:00",
            )
        if abs(offset) > timedelta(hours=14):
            raise _error(
                "bad_timestamp",
                f"{_shown(text)} has a UTC offset beyond ±14:00, which no place on "
                "Earth uses; fix the offset (e.g. -05:00)",
            )
        when = when.astimezone(UTC)
    if when < MIN_TS:
        raise _error(
            "ancient_timestamp",
            f"{when:%Y-%m-%d} is before 1971, usually a zero or a time in the wrong "
            "unit; fix the value",
        )
    if when > ctx.now + ctx.future_skew:
        skew = ctx.future_skew.total_seconds()
        raise _error(
            "future_timestamp",
            f"{when:%Y-%m-%dT%H:%M:%SZ} is more than {skew:g} s in the future (now "
            f"is {ctx.now:%Y-%m-%dT%H:%M:%SZ}); send the time the event happened, in UTC or "
            "with its offset",
        )
    return when


def _shown(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def iso_utc(when: datetime) -> str:
    """``2024-01-31T09:00:00.000000Z``: how the inbox stores a time (ingest reads it back)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=MAX_TEXT)


class EventRecord(_Record):
    """One event, with the canonical fields of docs/data-model.md (no others)."""

    event_id: Id | None = Field(
        None,
        description="Unique id; a retry with the same id is counted as a duplicate. "
        "Without one, the id is derived from the content at load.",
        examples=["o-1001"],
    )
    user_id: Id | None = Field(None, description="Known customer id (this or anonymous_id).")
    anonymous_id: Id | None = Field(None, description="Cookie / device id before login.")
    account_id: Id | None = Field(None, description="B2B: the buyer's company account.")
    event_type: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = Field(
        description="A standard event type (order, view, add_to_cart, …) or one declared "
        "in [ingest] custom_event_types.",
        examples=["order"],
    )
    ts: Instant = Field(
        description="When it happened: ISO 8601 with its UTC offset, or epoch seconds "
        "(milliseconds when ≥ 10^11).",
        examples=["2026-03-01T09:30:00+08:00"],
    )
    channel: Text | None = Field(None, description="app, web, mini_program, offline_store, …")
    region: Text | None = None
    country: Text | None = Field(None, description="ISO 3166-1 alpha-2, e.g. CN.")
    revenue: float | None = Field(
        None, description="Order/refund amount ≥ 0 in currency (required on orders)."
    )
    currency: Text | None = Field(None, description="ISO 4217 code, e.g. CNY.")
    order_id: Id | None = None
    category: Text | None = None
    properties: dict[str, Any] | None = Field(None, description="Your own fields (JSON object).")

    @field_validator("ts", mode="after")
    @classmethod
    def _ts(cls, value: str | int | float, info: ValidationInfo) -> str:
        return iso_utc(parse_instant(value, _context(info)))

    @field_validator("event_type", mode="after")
    @classmethod
    def _event_type(cls, value: str, info: ValidationInfo) -> str:
        kind = value.lower()
        known = _context(info).known_event_types
        if kind not in known:
            shop = ", ".join(sorted(t for t in known if t not in LIUCUN_EVENT_TYPES))
            raise _error(
                "unknown_event_type",
                f"{_shown(value)} is not a known event type (known: {shop}); declare it in "
                "[ingest] custom_event_types of liucun.toml",
            )
        return kind

    @field_validator("channel", mode="after")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @field_validator("country", mode="after")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _country_code(value)

    @field_validator("currency", mode="after")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.upper()
        if code not in ISO_4217:
            raise _error(
                "bad_currency",
                f"{_shown(value)} is not an ISO 4217 currency code; use three letters such "
                "as CNY, USD or EUR",
            )
        return code

    @field_validator("revenue", mode="after")
    @classmethod
    def _revenue(cls, value: float | None, info: ValidationInfo) -> float | None:
        limit = _context(info).max_order_value
        if value is not None and abs(value) > limit:
            raise _error(
                "implausible_revenue",
                f"{value:g} is above the maximum order value {_limit_text(limit)} (in the "
                "event's currency); fix the amount, or raise [ingest] max_order_value",
            )
        return value

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> EventRecord:
        if self.user_id is None and self.anonymous_id is None:
            raise _error(
                "missing_id", "the event has neither user_id nor anonymous_id; give one of them"
            )
        monetary = self.event_type in MONETARY_EVENT_TYPES
        if self.revenue is None and self.event_type == "order":
            raise _error("missing_revenue", "an order needs its amount in revenue")
        if self.revenue is not None and monetary and self.revenue < 0:
            raise _error(
                "negative_revenue",
                f"revenue {self.revenue:g} is negative; send order and refund amounts as "
                "positive numbers (a refund is its own event type)",
            )
        if (
            self.revenue is not None
            and self.currency is None
            and _context(info).default_currency is None
        ):
            raise _error(
                "missing_currency",
                "revenue is given but currency is not; add the ISO 4217 code (e.g. CNY), "
                "or set [ingest] currency in liucun.toml",
            )
        return self


class EventBatch(_Record):
    """The body of ``POST /v1/events``: one event or a batch."""

    events: list[EventRecord] = Field(min_length=1, description="The events, at most max_batch.")


def _country_code(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if not _COUNTRY.match(code):
        raise _error(
            "bad_country",
            f"{_shown(value)} is not an ISO 3166-1 alpha-2 code; use two letters such as CN, "
            "US or DE",
        )
    return code


AliasValue = Id | list[Id]


class UserRecord(_Record):
    """One customer: identify by ``user_id``, set attributes, link aliases.

    Fields left out keep their stored values (``null`` clears one); ``attributes`` are
    merged key by key (a ``null`` value removes the key).
    """

    user_id: Id = Field(description="The customer id.", examples=["u-42"])
    signup_ts: Instant | None = Field(None, description="Registration time (as ts).")
    customer_type: Literal["b2c", "b2b"] | None = None
    account_id: Id | None = None
    company_size: Text | None = None
    industry: Text | None = None
    country: Text | None = Field(None, description="ISO 3166-1 alpha-2, e.g. CN.")
    region: Text | None = None
    language: Text | None = Field(None, description="BCP 47 tag, e.g. zh-CN.")
    timezone: Text | None = Field(None, description="IANA time zone, e.g. Asia/Shanghai.")
    acquisition_channel: Text | None = None
    acquisition_cost: float | None = Field(None, ge=0)
    birthday: date | None = None
    attributes: dict[str, Any] | None = Field(None, description="Your own fields (JSON object).")
    aliases: dict[Literal[ALIAS_TYPES], AliasValue] | None = Field(  # type: ignore[valid-type]
        None,
        description="Other ids of this customer: anonymous_id, device_id, email_hash, "
        "phone_hash, loyalty_card, or email / phone (hashed under the workspace key at "
        "once; never stored in clear). A value or a list.",
        examples=[{"anonymous_id": ["a-17"], "email": "ann@example.com"}],
    )

    @field_validator("signup_ts", mode="after")
    @classmethod
    def _signup(cls, value: str | int | float | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return iso_utc(parse_instant(value, _context(info)))

    @field_validator("country", mode="after")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _country_code(value)

    @field_validator("timezone", mode="after")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _error(
                "bad_timezone",
                f"{_shown(value)} is not an IANA time zone; use e.g. Asia/Shanghai or "
                "Europe/Berlin",
            ) from None
        return value

    @field_validator("acquisition_cost", mode="after")
    @classmethod
    def _cost(cls, value: float | None, info: ValidationInfo) -> float | None:
        limit = _context(info).max_order_value
        if value is not None and value > limit:
            raise _error(
                "bad_cost",
                f"{value:g} is above {_limit_text(limit)} ([ingest] max_order_value), not a "
                "plausible acquisition cost; fix the value",
            )
        return value

    def alias_lists(self) -> dict[str, list[str]]:
        """Each alias type with its values, in the order given."""
        return {k: [v] if isinstance(v, str) else list(v) for k, v in (self.aliases or {}).items()}


class UserBatch(_Record):
    """The body of ``POST /v1/users``."""

    users: list[UserRecord] = Field(min_length=1, description="The users, at most max_batch.")


# -- validation errors as {path, message} -------------------------------------------------

#: A member tag pydantic adds to the location of an error inside a union (``'int'``,
#: ``'constrained-str'``, ``'list[str]'``): not part of the path the client wrote.
_UNION_TAG = re.compile(r"^(constrained-)?(str|int|float|bool|none|list\[.*\]|dict\[.*\])$")
_NOUNS = {"events": "an event", "users": "a user", "aliases": "aliases"}
_OWN_FIELDS = {"events": "properties", "users": "attributes"}
_TYPE_SENTENCES = {
    "ts": "must be ISO 8601 text with its UTC offset (e.g. 2024-01-31T09:00:00Z) or epoch "
    "seconds as a number",
    "signup_ts": "must be ISO 8601 text with its UTC offset (e.g. 2024-01-31T09:00:00Z) or "
    "epoch seconds as a number",
    "aliases": "must be an id (text) or a list of ids",
}


@dataclass(frozen=True)
class RecordProblem:
    """One bad field: where (``events[3].ts``) and a sentence saying what to change."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def record_problems(exc: Any, *, root: str = "") -> list[RecordProblem]:
    """The problems of a pydantic ``ValidationError`` raised validating a record batch,
    one per field (the members of a union give one sentence together), in order.
    ``root`` prefixes every path (``"body"`` → ``body.events[0]``)."""
    out: dict[str, RecordProblem] = {}
    for err in exc.errors():
        raw = [p for p in err["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p))]
        in_union = len(raw) < len(err["loc"])
        if raw and raw[-1] == "[key]":  # a bad key of a mapping: name the key itself
            raw = raw[:-1]
        path = yaml_path(tuple([root, *raw] if root else raw)) or "(body)"
        if path in out:
            continue
        out[path] = RecordProblem(path, _sentence(err, raw, in_union))
    return list(out.values())


def _sentence(err: Mapping[str, Any], loc: list[int | str], in_union: bool) -> str:
    kind, msg, ctx = err["type"], str(err["msg"]), err.get("ctx") or {}
    name = str(loc[-1]) if loc else ""
    container = next((str(p) for p in loc if isinstance(p, str)), "")
    if kind == "extra_forbidden":
        noun = _NOUNS.get(container, "the body")
        own = _OWN_FIELDS.get(container)
        known = _known_fields(container)
        near = close_match(name, known, cutoff=0.75) if known else None
        tip = f"; did you mean {near}?" if near else ""
        where = f"; put your own fields in {own}" if own and not near else ""
        return f"{name!r} is not a field of {noun}{tip}{where}"
    if kind == "missing":
        return f"{name or 'the field'} is required; add it"
    if kind == "string_too_long":
        return (
            f"is longer than {ctx.get('max_length')} characters; shorten it (ids and texts "
            f"are at most {ctx.get('max_length')} characters)"
        )
    if kind == "string_too_short":
        return "is empty; give a value or leave the field out"
    if kind == "too_short":
        return f"is empty; send at least {ctx.get('min_length', 1)} item"
    if kind == "too_long":
        most = ctx.get("max_length")
        return f"has {ctx.get('actual_length')} items, more than the {most} allowed"
    if kind in ("model_type", "dict_type"):
        return f"{_shown_input(err.get('input'))} is not valid: it must be a JSON object"
    named = [str(p) for p in reversed(loc) if isinstance(p, str) and p in _TYPE_SENTENCES]
    if in_union and named:
        sentence = _TYPE_SENTENCES[named[0]]
        return f"{_shown_input(err.get('input'))} is not valid: it {sentence}"
    if kind.startswith(("string_", "int_", "float_", "bool_", "dict_", "list_", "model_", "date")):
        return f"{_shown_input(err.get('input'))} is not valid: {_lower_first(msg)}"
    if kind == "literal_error" and "aliases" in loc:
        return f"{name!r} is not an alias type; use one of {', '.join(ALIAS_TYPES)}"
    if kind == "literal_error":
        return f"{_shown_input(err.get('input'))} is not valid: {_lower_first(msg)}"
    return msg.removeprefix("Value error, ")


def _known_fields(container: str) -> list[str]:
    models: dict[str, type[BaseModel]] = {"events": EventRecord, "users": UserRecord}
    model = models.get(container)
    return list(model.model_fields) if model is not None else []


def _shown_input(value: Any, width: int = 40) -> str:
    if isinstance(value, str):
        return _shown(value, width)
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
