"""The customer 360 view: everything liucun knows about one customer, JSON-ready.

:func:`customer_view` gathers, for one customer (an alias is resolved to its canonical
customer first):

- **attributes**: the ``users`` row (free-form ``attributes`` parsed) — never contact data
  in clear: a field named like contact data (:func:`liucun.schema.contact_kind`) or a
  keyed-hash stand-in (``"hmac:…"``) is left out, and so are the hash values of the
  ``email_hash`` / ``phone_hash`` identities (their type is listed);
- **identities** (aliases in force and merged ones), **tags** (``customer_tags``);
- **lifecycle**: the stage as of now with ``since`` (when the customer entered it, from
  the customer's own order history under the same rules as
  :func:`liucun.segments.lifecycle_stages`), orders, days since the last, cadence;
- **rfm**: recency, frequency, monetary, the quintile scores, segment and class (ranked
  among every customer, as :func:`liucun.segments.rfm` does);
- **scores**: the latest saved score (churn risk with its reasons, P(alive), expected
  orders and CLV over 365 days, the model version and the cut-off) — None when the
  customer was never scored;
- **loyalty**: account balance, pending points, growth value, effective tier, points
  expiring in the next 30 days, coupons held — None when no program was applied and
  the customer has no account;
- **consents** in force per purpose and channel, **contacts** (the channels an address
  is on file for, never the address), **suppressions** by user id;
- **journeys** the customer is in (journey, version, node, arm, status, since),
  **tasks** not closed, the last orders and events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
from sqlalchemy import func, select

from liucun.core import LiucunError, NotFound, as_utc
from liucun.schema import contact_kind
from liucun.schema._privacy import HASH_MARK
from liucun.segments import customer_profiles
from liucun.segments._stages import StageRules
from liucun.state import (
    ConsentRecord,
    Contact,
    CustomerTag,
    JourneyEnrolment,
    JourneyStep,
    ServiceTask,
    Suppression,
)

#: Days ahead in which expiring points are listed.
EXPIRY_WINDOW_DAYS = 30
#: Columns of the users row not shown (bookkeeping of the load).
_HIDDEN_USER_COLUMNS = ("ingested_at", "load_id", "raw_user_id", "attributes")
#: Event columns shown in the recent events and orders (``properties`` is left out).
_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "ts",
    "channel",
    "region",
    "country",
    "revenue",
    "currency",
    "order_id",
    "category",
)
_SCORE_COLUMNS = (
    "as_of",
    "scored_at",
    "model",
    "model_version",
    "churn_risk",
    "p_alive",
    "expected_orders_365d",
    "clv_365d",
    "reasons",
    "stage",
    "segment",
)
_RFM_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_score",
    "rfm_segment",
    "rfm_class",
    "rfm_class_zh",
)


@dataclass(frozen=True)
class CustomerView:
    """One customer's 360 profile as of ``as_of`` (see the module docstring)."""

    user_id: str
    as_of: datetime
    attributes: dict[str, Any]
    identities: list[dict[str, Any]]
    tags: dict[str, str | None]
    lifecycle: dict[str, Any]
    rfm: dict[str, Any] | None
    scores: dict[str, Any] | None
    loyalty: dict[str, Any] | None
    consents: list[dict[str, Any]]
    contacts: list[str]
    suppressions: list[dict[str, Any]]
    journeys: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 text, NaN as None)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return _jsonable(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if hasattr(value, "isoformat"):  # date
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _jsonable(value.item())
    return value


def resolve_customer(ws: Any, user_id: str) -> str | None:
    """The canonical id of ``user_id`` (itself, or the customer an alias of type
    ``user_id`` was merged into); None when neither the users table nor the events know
    it."""
    uid = str(user_id)
    ids = ws.table("identities")
    alias = ids.filter((ids["alias"] == uid) & ids.valid_to.isnull()).select("user_id").limit(1)
    found = alias.to_pyarrow().column("user_id").to_pylist()
    canonical = found[0] if found else uid
    users = ws.table("users")
    if users.filter(users.user_id == canonical).count().to_pyarrow().as_py():
        return str(canonical)
    events = ws.events()
    if events.filter(events.user_id == canonical).count().to_pyarrow().as_py():
        return str(canonical)
    return None


def customer_view(
    ws: Any, user_id: str, *, as_of: datetime | None = None, recent: int = 10
) -> CustomerView:
    """The 360 profile of ``user_id`` as of ``as_of`` (default now); the last
    ``recent`` orders and events. :class:`~liucun.core.NotFound` when no user row and no
    event knows the customer."""
    if not str(user_id).strip():
        raise NotFound("the user id is empty; give the customer's user_id")
    now = as_utc(as_of if as_of is not None else ws.clock.now())
    uid = resolve_customer(ws, user_id)
    if uid is None:
        raise NotFound(
            f"no customer {user_id!r}: the workspace has no user row and no event for that "
            "id (nor an alias merged into a customer); check the id, or ingest the customer "
            "first (POST /v1/users or `liucun ingest`)"
        )
    attributes, raw_ids = _attributes(ws, uid)
    profile, fallback = _profile(ws, uid, now)
    order_times = _order_times(ws, uid, now)
    lifecycle = {
        "stage": profile.get("stage", "potential"),
        "since": stage_since(
            order_times,
            now,
            fallback_cadence=fallback,
            signup=attributes.get("signup_ts"),
        ),
        "orders": int(profile.get("orders") or 0),
        "days_since_last": profile.get("days_since_last"),
        "cadence_days": profile.get("cadence_days"),
        "longest_gap_days": profile.get("longest_gap_days"),
    }
    rfm = None
    if profile.get("rfm_segment") is not None:
        rfm = {c: profile.get(c) for c in _RFM_COLUMNS}
    events, orders = _recent(ws, uid, now, recent)
    return CustomerView(
        user_id=uid,
        as_of=now,
        attributes=attributes,
        identities=_identities(ws, uid, raw_ids),
        tags=_tags(ws, uid),
        lifecycle=lifecycle,
        rfm=rfm,
        scores=_latest_score(ws, uid, now),
        loyalty=_loyalty(ws, uid, now),
        consents=_consents(ws, uid),
        contacts=_contact_channels(ws, uid),
        suppressions=_suppressions(ws, uid),
        journeys=_journeys(ws, uid),
        tasks=_tasks(ws, uid),
        orders=orders,
        events=events,
    )


# -- warehouse parts ---------------------------------------------------------------------


def _clean_attributes(text: Any) -> dict[str, Any]:
    """The free-form attributes without contact fields or keyed-hash stand-ins."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if contact_kind(str(k)) is None
        and not (isinstance(v, str) and v.startswith(HASH_MARK))
        and not str(k).lower().endswith("_hash")
    }


def _attributes(ws: Any, uid: str) -> tuple[dict[str, Any], list[str]]:
    users = ws.customers()
    rows = users.filter(users.user_id == uid).to_pyarrow().to_pylist()
    if not rows:
        return {"user_id": uid}, []
    row = rows[0]
    out = {
        k: v
        for k, v in row.items()
        if k not in _HIDDEN_USER_COLUMNS
        and contact_kind(k) is None
        and not (isinstance(v, str) and v.startswith(HASH_MARK))
    }
    out["user_id"] = uid
    extra = _clean_attributes(row.get("attributes"))
    if extra:
        out["attributes"] = extra
    return out, [str(row.get("raw_user_id") or uid)]


def _identities(ws: Any, uid: str, raw_ids: Sequence[str]) -> list[dict[str, Any]]:
    ids = ws.table("identities")
    rows = (
        ids.filter(ids.user_id == uid)
        .select("alias_type", "alias", "valid_from", "valid_to")
        .order_by(["valid_from", "alias_type", "alias"])
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        hashed = str(r["alias_type"]).endswith("_hash") or contact_kind(str(r["alias_type"]))
        out.append(
            {
                "alias_type": r["alias_type"],
                # a keyed hash of an address identifies the person: its type only
                "alias": None if hashed else r["alias"],
                "current": r["valid_to"] is None,
                "valid_from": r["valid_from"],
                "valid_to": r["valid_to"],
            }
        )
    return out


def _profile(ws: Any, uid: str, now: datetime) -> tuple[dict[str, Any], float | None]:
    """The customer's stage and RFM row (ranked among all) and the fallback cadence of
    one-order customers (the median cadence of repeat buyers)."""
    events, users = ws.events(), ws.customers()
    prof = customer_profiles(events, users, as_of=now)
    rows = prof.filter(prof.user_id == uid).to_pyarrow().to_pylist()
    return (rows[0] if rows else {}), _fallback_cadence(events, now)


def _fallback_cadence(events: Any, now: datetime, rules: StageRules | None = None) -> float:
    """What :func:`liucun.segments.lifecycle_stages` gives customers with one order."""
    from liucun.metrics import days_between, orders

    rules = rules or StageRules()
    if rules.default_cadence_days is not None:
        return float(rules.default_cadence_days)
    bought = orders(events, end=now)
    prev = bought.ts.lag().over(group_by="user_id", order_by="ts")
    gaps = bought.mutate(_gap=days_between(bought.ts, prev))
    per = gaps.group_by("user_id").aggregate(_cadence=gaps._gap.median())
    value = per._cadence.median().to_pyarrow().as_py()
    return 30.0 if value is None else float(value)


def _order_times(ws: Any, uid: str, now: datetime) -> list[datetime]:
    ev = ws.events()
    bought = ev.filter((ev.user_id == uid) & (ev.event_type == "order") & (ev.ts < now))
    return [as_utc(t) for t in bought.order_by("ts").ts.to_pyarrow().to_pylist()]


def stage_since(
    order_times: Sequence[datetime],
    as_of: datetime,
    *,
    fallback_cadence: float | None,
    signup: datetime | None = None,
    rules: StageRules | None = None,
) -> datetime | None:
    """When the customer entered the stage they are in at ``as_of`` (the start of the
    last run of :func:`stage_runs`); a potential customer (no order): since sign-up
    (None if unknown).

    >>> from datetime import UTC, datetime
    >>> t = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC)]
    >>> stage_since(t, datetime(2026, 3, 1, tzinfo=UTC), fallback_cadence=20.0)
    datetime.datetime(2026, 2, 10, 0, 0, 1, tzinfo=datetime.timezone.utc)
    """
    runs = stage_runs(order_times, as_of, fallback_cadence=fallback_cadence, rules=rules)
    if not runs:
        return None if signup is None else as_utc(signup)
    return runs[-1][0]


def stage_runs(
    order_times: Sequence[datetime],
    as_of: datetime,
    *,
    fallback_cadence: float | None,
    rules: StageRules | None = None,
) -> list[tuple[datetime, str]]:
    """The customer's stages up to ``as_of`` as ``(since, stage)`` runs, oldest first,
    from their order times under ``rules`` (:func:`liucun.segments.lifecycle_stages`):
    after the k-th order the stage is new / growth / mature by the order count, decline
    once the gap exceeds ``max(decline_factor × cadence, min_decline_days, longest
    gap)`` and churned once it exceeds ``max(churn_factor × cadence, min_churn_days,
    comeback_factor × longest gap)``, cadence and longest gap being those of the first
    k orders (one order: ``fallback_cadence``, today's median cadence of repeat buyers
    — the one approximation for the past). Empty without an order.

    >>> from datetime import UTC, datetime
    >>> t = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC)]
    >>> [s for _, s in stage_runs(t, datetime(2026, 6, 1, tzinfo=UTC), fallback_cadence=20.0)]
    ['new', 'growth', 'decline', 'churned']
    """
    import statistics

    rules = rules or StageRules()
    as_of = as_utc(as_of)
    times = sorted(as_utc(t) for t in order_times if as_utc(t) < as_of)
    fallback = 30.0 if fallback_cadence is None else float(fallback_cadence)
    runs: list[tuple[datetime, str]] = []

    def add(at: datetime, stage: str) -> None:
        if not runs or runs[-1][1] != stage:
            runs.append((at, stage))

    gaps: list[float] = []
    for k, t in enumerate(times):
        if k:
            gaps.append(_days(t, times[k - 1]))
        n = k + 1
        base = "mature" if n >= rules.mature_orders else "growth" if n >= 2 else "new"
        cadence = statistics.median(gaps) if gaps else fallback
        longest = max(gaps) if gaps else 0.0
        decline = max(cadence * rules.decline_factor, rules.min_decline_days, longest)
        churn = max(
            cadence * rules.churn_factor, rules.min_churn_days, longest * rules.comeback_factor
        )
        last = k + 1 == len(times)
        end = as_of if last else times[k + 1]
        add(t, base)
        for days, stage in ((decline, "decline"), (churn, "churned")):
            # the stage holds once the gap, in whole seconds as days_between counts
            # them, is strictly longer
            at = t.replace(microsecond=0) + timedelta(seconds=math.floor(days * 86400.0) + 1)
            if at < end or (last and at == end):
                add(at, stage)
    return runs


def _days(later: datetime, earlier: datetime) -> float:
    a = later.replace(microsecond=0)
    b = earlier.replace(microsecond=0)
    return (a - b).total_seconds() / 86400.0


def _latest_score(ws: Any, uid: str, now: datetime) -> dict[str, Any] | None:
    sc = ws.table("scores")
    sc = sc.filter((sc.user_id == uid) & (sc.as_of <= now))
    rows = (
        sc.order_by([ibis.desc("as_of"), ibis.desc("scored_at")])
        .limit(1)
        .select(*[c for c in _SCORE_COLUMNS if c in sc.columns])
        .to_pyarrow()
        .to_pylist()
    )
    if not rows:
        return None
    out = dict(rows[0])
    out["reasons"] = list(out.get("reasons") or [])
    return out


def _recent(
    ws: Any, uid: str, now: datetime, n: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if n <= 0:
        return [], []
    ev = ws.events()
    mine = ev.filter((ev.user_id == uid) & (ev.ts <= now))
    cols = [c for c in _EVENT_COLUMNS if c in mine.columns]
    order = [ibis.desc("ts"), ibis.desc("event_id")]
    events = mine.order_by(order).limit(n).select(*cols).to_pyarrow().to_pylist()
    bought = mine.filter(mine.event_type == "order")
    orders = bought.order_by(order).limit(n).select(*cols).to_pyarrow().to_pylist()
    return events, orders


# -- state parts -------------------------------------------------------------------------


def _tags(ws: Any, uid: str) -> dict[str, str | None]:
    with ws.state.read() as s:
        rows = s.execute(
            select(CustomerTag.tag, CustomerTag.value)
            .where(CustomerTag.user_id == uid)
            .order_by(CustomerTag.tag)
        ).all()
    return {t: v for t, v in rows}


def _loyalty(ws: Any, uid: str, now: datetime) -> dict[str, Any] | None:
    from liucun.loyalty import DEFAULT_PROGRAM, account, active_program, list_coupons

    try:
        program = active_program(ws, DEFAULT_PROGRAM)
    except LiucunError:
        program = None
    acct = account(ws, uid, DEFAULT_PROGRAM, as_of=now)
    if program is None and acct.version == 0 and acct.tier is None:
        return None
    horizon = now + timedelta(days=EXPIRY_WINDOW_DAYS)
    expiring = [
        {"points": lot.remaining, "expires_at": lot.expires_at}
        for lot in sorted(acct.lots, key=lambda lot: lot.expires_at or horizon)
        if lot.expires_at is not None
        and now < lot.expires_at <= horizon
        and lot.available_at <= now
    ]
    held = [
        {
            "coupon_id": c.coupon_id,
            "kind": c.kind,
            "amount": c.amount,
            "currency": c.currency,
            "min_order": c.min_order,
            "valid_until": c.valid_until,
        }
        for c in list_coupons(ws, uid)
        if c.status == "issued" and c.valid_until > now
    ]
    return {
        "program": None if program is None else program.name,
        "currency": None if program is None else program.currency,
        "tier": acct.tier,
        "balance": acct.balance,
        "pending": acct.pending,
        "growth_value": acct.growth_value,
        "expiring": expiring,
        "expiring_points": sum(e["points"] for e in expiring),
        "coupons": held,
    }


def _consents(ws: Any, uid: str) -> list[dict[str, Any]]:
    """The latest record per purpose and channel (its own channel; ``'*'`` is listed
    as a channel of its own)."""
    latest: dict[tuple[str, str], ConsentRecord] = {}
    with ws.state.read() as s:
        for r in s.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.user_id == uid)
            .order_by(ConsentRecord.at, ConsentRecord.id)
        ):
            latest[(r.purpose, r.channel)] = r
        return [
            {
                "purpose": r.purpose,
                "channel": r.channel,
                "status": r.status,
                "source": r.source,
                "at": as_utc(r.at),
            }
            for _, r in sorted(latest.items())
        ]


def _contact_channels(ws: Any, uid: str) -> list[str]:
    with ws.state.read() as s:
        return sorted(set(s.scalars(select(Contact.channel).where(Contact.user_id == uid)).all()))


def _suppressions(ws: Any, uid: str) -> list[dict[str, Any]]:
    with ws.state.read() as s:
        rows = s.scalars(
            select(Suppression).where(Suppression.subject == uid).order_by(Suppression.at)
        ).all()
        return [{"channel": r.channel, "kind": r.kind, "at": as_utc(r.at)} for r in rows]


def _journeys(ws: Any, uid: str) -> list[dict[str, Any]]:
    from liucun.journeys._engine import LIVE

    E, S = JourneyEnrolment, JourneyStep
    with ws.state.read() as s:
        rows = s.scalars(
            select(E).where(E.user_id == uid, E.status.in_(LIVE)).order_by(E.entered_at, E.id)
        ).all()
        ids = [r.id for r in rows]
        last_step: dict[int, datetime] = {}
        if ids:
            for eid, at in s.execute(
                select(S.enrolment_id, func.max(S.at))
                .where(S.enrolment_id.in_(ids))
                .group_by(S.enrolment_id)
            ):
                last_step[int(eid)] = as_utc(at)
        return [
            {
                "journey": r.journey,
                "version": r.version,
                "node": r.node,
                "arm": r.arm,
                "status": r.status,
                "entered_at": as_utc(r.entered_at),
                "since": last_step.get(r.id, as_utc(r.entered_at)),
                "wake_at": None if r.wake_at is None else as_utc(r.wake_at),
                "waiting_for": r.waiting_for,
            }
            for r in rows
        ]


def _tasks(ws: Any, uid: str) -> list[dict[str, Any]]:
    with ws.state.read() as s:
        rows = s.scalars(
            select(ServiceTask)
            .where(ServiceTask.user_id == uid, ServiceTask.status != "closed")
            .order_by(ServiceTask.sla_due_at, ServiceTask.id)
        ).all()
        return [
            {
                "id": r.id,
                "queue": r.queue,
                "journey": r.journey,
                "summary": r.summary,
                "status": r.status,
                "sla_due_at": as_utc(r.sla_due_at),
                "created_at": as_utc(r.created_at),
                "breached": r.breached_at is not None,
            }
            for r in rows
        ]
