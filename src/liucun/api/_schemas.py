"""Reply models of the API (request bodies are the ingest records, :mod:`liucun.ingest`),
the orjson reply class and the reading of a JSON body with the workspace's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from liucun.api._problems import Problem, dumps, invalid_fields
from liucun.core import ServeSettings
from liucun.ingest import MAX_ID, record_context, record_problems

M = TypeVar("M", bound=BaseModel)


class JsonResponse(JSONResponse):
    """``application/json`` written by orjson (a JSONResponse, so that FastAPI puts each
    route's ``response_model`` schema in the OpenAPI document)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.__pydantic_serializer__.to_json(content)  # type: ignore[no-any-return]
        return dumps(content)


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventsAccepted(_Public):
    """What ``POST /v1/events`` stored."""

    accepted: int = Field(description="New events, committed to the inbox.")
    duplicates: int = Field(description="Events already accepted (same event_id and fields).")


class UsersAccepted(_Public):
    """What ``POST /v1/users`` stored."""

    accepted: int = Field(description="User records committed to the inbox.")


class InboxStatus(_Public):
    """The inbox: rows waiting for the loader and rows already in the warehouse."""

    pending: int
    loaded: int


class Identity(_Public):
    """An alias of the customer (a keyed hash of an address shows its type only)."""

    alias_type: str = Field(description="user_id, anonymous_id, device_id, email_hash, …")
    alias: str | None = Field(description="The alias; null for a hashed address.")
    current: bool = Field(description="False once the alias was merged elsewhere.")
    valid_from: datetime | None
    valid_to: datetime | None


class Lifecycle(_Public):
    """The lifecycle stage as of now, from the customer's own purchase cadence."""

    stage: str = Field(description="potential, new, growth, mature, decline or churned.")
    since: datetime | None = Field(description="When the customer entered the stage.")
    orders: int
    days_since_last: float | None = Field(description="Recency: days since the last order.")
    cadence_days: float | None
    longest_gap_days: float | None


class Rfm(_Public):
    """RFM ranked among every customer: quintile scores, segment and 8-class class."""

    recency_days: float | None
    frequency: int | None
    monetary: float | None
    r_score: int | None
    f_score: int | None
    m_score: int | None
    rfm_score: str | None
    rfm_segment: str | None = Field(description="One of the 11 named segments.")
    rfm_class: str | None
    rfm_class_zh: str | None


class Score(_Public):
    """The latest saved score (the full scoring's or a freshness re-score)."""

    as_of: datetime = Field(description="The cut-off the features were computed at.")
    scored_at: datetime | None = Field(None, description="When the row was written.")
    model: str | None = None
    model_version: str | None = None
    churn_risk: float | None = None
    p_alive: float | None = None
    expected_orders_365d: float | None = None
    clv_365d: float | None = None
    reasons: list[str] = Field(default_factory=list, description="Top reasons for the risk.")
    stage: str | None = None
    segment: str | None = None


class ExpiringPoints(_Public):
    points: int
    expires_at: datetime


class HeldCoupon(_Public):
    coupon_id: str
    kind: str
    amount: float
    currency: str | None
    min_order: float | None
    valid_until: datetime


class LoyaltyAccountPublic(_Public):
    """The customer's account in the default loyalty program."""

    program: str | None
    currency: str | None
    tier: str | None
    balance: int = Field(description="Points on the account (spendable and pending).")
    pending: int = Field(description="Points not yet available (return window).")
    growth_value: int
    expiring: list[ExpiringPoints] = Field(description="Points expiring in the next 30 days.")
    expiring_points: int
    coupons: list[HeldCoupon] = Field(description="Coupons issued and still valid.")


class ConsentPublic(_Public):
    """The latest consent record per purpose and channel (``*``: every channel)."""

    purpose: str
    channel: str
    status: str
    source: str | None
    at: datetime


class SuppressionPublic(_Public):
    channel: str
    kind: str
    at: datetime


class JourneyRun(_Public):
    """A journey the customer is in."""

    journey: str
    version: int
    node: str
    arm: str | None
    status: str
    entered_at: datetime
    since: datetime = Field(description="When the enrolment last moved.")
    wake_at: datetime | None
    waiting_for: str | None


class TaskPublic(_Public):
    """A one-to-one service task not closed."""

    id: int
    queue: str
    journey: str | None
    summary: str | None
    status: str
    sla_due_at: datetime | None
    created_at: datetime
    breached: bool


class CustomerPublic(_Public):
    """The customer-360 (:func:`liucun.journeys.customer_view`)."""

    user_id: str = Field(description="The canonical customer id.")
    requested_id: str = Field(description="The id asked for (an alias resolves to its customer).")
    as_of: datetime
    attributes: dict[str, Any] = Field(
        description="The users fields and, under `attributes`, your own fields; never "
        "contact data in clear."
    )
    identities: list[Identity] = Field(description="The customer's aliases.")
    tags: dict[str, str | None]
    lifecycle: Lifecycle
    rfm: Rfm | None = Field(description="Null for a customer without an order.")
    scores: Score | None = Field(description="Null for a customer never scored.")
    loyalty: LoyaltyAccountPublic | None = Field(
        description="Null when no program is applied and the customer has no account."
    )
    consents: list[ConsentPublic]
    contacts: list[str] = Field(description="Channels an address is on file for (never it).")
    suppressions: list[SuppressionPublic]
    journeys: list[JourneyRun] = Field(description="Active journeys.")
    tasks: list[TaskPublic]
    orders: list[dict[str, Any]] = Field(description="The last orders, newest first.")
    events: list[dict[str, Any]] = Field(description="The last events, newest first.")


class DecideIn(_Public):
    """``POST /v1/decide``: who, where, and the context."""

    user_id: str = Field(min_length=1, max_length=MAX_ID, description="The customer's id.")
    placement: str = Field(
        min_length=1, max_length=MAX_ID, description="Where the answer shows, e.g. checkout."
    )
    channel: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID,
        description="The channel the answer reaches the customer by (email, sms, push, app, "
        "…); null for a page.",
    )
    cart_value: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="The basket, for coupons' min_order."
    )


class BenefitPublic(_Public):
    benefit_id: str
    description: str | None
    unlocked_by: str = Field(description="Why the customer has it (tier, unlock filter, points).")
    hidden: bool
    points_cost: int | None


class ActionPublic(BaseModel):
    """The next action of a journey the customer is in, after the send-time guards."""

    model_config = ConfigDict(extra="allow")

    journey: str
    version: int
    node: str
    type: str
    channel: str
    purpose: str | None = None
    arm: str | None = None
    coupon: str | None = None
    value: float | None = None
    status: Literal["allowed", "suppressed", "held", "deferred", "withheld"]
    reason: str | None = Field(None, description="The guard that stopped it.")
    until: datetime | None = Field(None, description="When a held action may go (quiet hours).")
    cap: str | None = Field(None, description="The frequency cap a deferred action breaks.")


class DecisionPublic(_Public):
    """The next best action for a customer in a context (logged as an exposure)."""

    user_id: str
    placement: str
    channel: str | None
    known: bool = Field(description="False: the snapshot has no such customer (no exposure).")
    arm: str | None = Field(description="treatment or holdout (the decision holdout).")
    probability: float | None = Field(description="The probability of the customer's arm.")
    offer: str | None = Field(description="The coupon the uplift policy chose, if eligible.")
    offer_value: float | None = Field(description="The policy's expected value of the offer.")
    basis: str = Field(description="Why the offer is what it is (a policy basis or a guard).")
    coupons: list[str] = Field(description="Coupons the customer may be issued now.")
    benefits: list[BenefitPublic]
    actions: list[ActionPublic]
    reasons: list[str]
    profile: dict[str, Any] = Field(description="Stage, segment, churn risk, tier, … read.")
    decided_at: datetime
    snapshot_at: datetime | None = Field(description="When the snapshot read was built.")


class KeyPublic(_Public):
    """An API key (never its secret)."""

    key_id: str
    name: str
    scopes: list[str]
    rate_per_s: float | None
    burst: int | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


class Health(_Public):
    status: Literal["ok"] = "ok"


class ReadyCheck(_Public):
    ok: bool
    detail: str


class Ready(_Public):
    status: Literal["ready", "not ready"]
    checks: dict[str, ReadyCheck]


def parse_body(model: type[M], body: bytes, ws: Any, settings: ServeSettings, *, key: str) -> M:
    """``body`` validated as ``model`` with the workspace's rules (its event types,
    currency, "now"); 400 when it is not JSON, 422 naming every bad field, 413 when it
    holds more than ``max_batch`` records."""
    if not body.strip():
        raise Problem(
            400,
            f'The body is empty; send a JSON object such as {{"{key}": [ … ]}} with '
            "Content-Type: application/json.",
            kind="malformed-json",
        )
    try:
        context = record_context(ws.settings, ws.clock.now())
        # strict: JSON types as documented (a number is not a date, text is not a number,
        # true is not 1); ISO 8601 text still parses as a date or a time
        parsed = model.model_validate_json(body, strict=True, context=context)
    except ValidationError as exc:
        json_errors = [e for e in exc.errors() if e["type"] == "json_invalid"]
        if json_errors:
            why = (json_errors[0].get("ctx") or {}).get("error") or json_errors[0]["msg"]
            raise Problem(
                400,
                f"The body is not valid JSON ({why}); send a JSON object with Content-Type: "
                "application/json.",
                kind="malformed-json",
            ) from None
        problems = record_problems(exc)
        raise _Invalid(problems) from None
    items = getattr(parsed, key)
    if len(items) > settings.max_batch:
        raise Problem(
            413,
            f"The request holds {len(items):,} {key}, more than the {settings.max_batch:,} one "
            "request may carry ([serve] max_batch); split it into smaller batches.",
            [{"path": key, "message": f"has more than {settings.max_batch:,} items"}],
        )
    return parsed


class _Invalid(Problem):
    def __init__(self, problems: Any) -> None:
        super().__init__(422, "invalid fields", problems)
        self._problems = problems

    def response(self) -> Response:
        return invalid_fields(self._problems)
