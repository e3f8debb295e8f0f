"""The transactional outbox: side effects written in the same transaction as the state
change that decided them, delivered later by workers (docs/decisions/0007-journeys.md).

:func:`enqueue` is what the engine calls. :func:`claim` takes due rows for a worker
(PostgreSQL ``FOR UPDATE SKIP LOCKED``, SQLite ``BEGIN IMMEDIATE``) and applies the
send-time guards; :func:`finish` records a provider's answer (sent, retry with backoff,
fallback provider, failed); :func:`recover_in_doubt` settles rows a dead worker left
``sending``; :func:`record_outcome` and :func:`publish_delivery_events` carry outcomes
back to the warehouse. :func:`liucun.journeys.deliver_due` runs them in order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liucun.core import ChannelSettings, ConfigError, InvalidInput, as_utc, redact_contact_data
from liucun.journeys._actions import INTERNAL_CHANNELS
from liucun.journeys._subscriptions import is_subscription_provider, subscription_channel
from liucun.state import DeliveryEvent, JourneyStep, OutboxMessage, Suppression


@dataclass(frozen=True)
class Outgoing:
    """One side effect to enqueue.

    ``key`` is the stable idempotency key (the provider sees it); ``payload`` holds the
    rendered content or the action's arguments plus the customer's ``timezone``,
    ``country``, ``language``, ``customer_type``, ``account_id``, the journey's
    ``purpose`` and the action's expected incremental ``value`` — never contact data.
    """

    key: str
    user_id: str
    channel: str
    payload: dict[str, Any] = field(default_factory=dict)
    journey: str | None = None
    version: int | None = None
    node: str | None = None
    enrolment_id: int | None = None
    not_before: datetime | None = None
    #: The provider to send through (None: the channel's own): ``subscription:<id>``
    #: for a partner webhook (:mod:`liucun.journeys._subscriptions`).
    provider: str | None = None


def enqueue(s: Session, items: Sequence[Outgoing], *, now: datetime) -> int:
    """Insert ``items`` as pending outbox rows (in the caller's transaction); a key
    already in the outbox adds nothing. Returns how many rows were added."""
    if not items:
        return 0
    keys = [i.key for i in items]
    held: set[str] = set()
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        held.update(s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk))))
    added = 0
    for item in items:
        if item.key in held:
            continue
        held.add(item.key)
        s.add(
            OutboxMessage(
                key=item.key,
                journey=item.journey,
                version=item.version,
                node=item.node,
                enrolment_id=item.enrolment_id,
                user_id=item.user_id,
                channel=item.channel,
                provider=item.provider,
                payload=json.dumps(item.payload, ensure_ascii=False, sort_keys=True, default=str),
                status="pending",
                attempts=0,
                next_attempt_at=item.not_before or now,
                created_at=now,
                updated_at=now,
            )
        )
        added += 1
    s.flush()
    return added


# -- claiming, finishing, retrying --------------------------------------------------------

#: Added to three per-attempt timeouts to make the lease of a claim: a row still
#: ``sending`` after it was being sent when its worker died (in doubt).
LEASE_GRACE_S = 60.0
#: The longest delay between two attempts (a Retry-After may ask for more, up to a day).
MAX_BACKOFF_S = 6 * 3600.0
MAX_RETRY_AFTER_S = 86400.0
#: Delivery outcomes and the warehouse event type each becomes.
OUTCOME_EVENT_TYPES: dict[str, str] = {
    "sent": "message_sent",
    "delivered": "message_delivered",
    "bounced": "message_bounced",
    "opened": "message_opened",
    "clicked": "message_clicked",
    "unsubscribed": "message_unsubscribed",
    "failed": "message_failed",
    "unknown": "message_unknown",
}
#: Outcomes a provider reports back (:func:`record_outcome`).
CALLBACK_OUTCOMES: tuple[str, ...] = ("delivered", "bounced", "opened", "clicked", "unsubscribed")
#: Outcomes that stop further messages to the customer on the channel.
SUPPRESSING: dict[str, str] = {"bounced": "bounced", "unsubscribed": "unsubscribed"}


@dataclass
class Claimed:
    """A row claimed for sending (status ``sending`` committed), detached from its
    session: the worker sends it outside any transaction, then calls :func:`finish`.
    ``address`` is the decrypted contact (memory only)."""

    row: OutboxMessage
    provider: str | None
    payload: dict[str, Any]
    attempts: int
    provider_attempts: int
    address: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.row.key


@dataclass
class ClaimResult:
    """What one claim did: the rows to send, and how many were suppressed (by reason),
    held, deferred or failed before sending (a channel without settings)."""

    to_send: list[Claimed] = field(default_factory=list)
    #: Rows the claim took (sent or not).
    taken: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    held: int = 0
    deferred: int = 0
    failed: int = 0


_INSERTS: dict[tuple[str, str], Any] = {}


def _insert_ignore(s: Session, model: Any, values: dict[str, Any]) -> bool:
    """Insert one row unless it clashes with a unique key; True when it was added.
    (One statement per dialect and table, so SQLAlchemy compiles it once.)"""
    dialect = s.get_bind().dialect.name
    stmt = _INSERTS.get((dialect, model.__tablename__))
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = model.__table__
        stmt = insert(table).on_conflict_do_nothing().returning(table.c.id)
        _INSERTS[(dialect, model.__tablename__)] = stmt
    return s.execute(stmt, values).first() is not None


def _step(
    s: Session,
    row: OutboxMessage,
    kind: str,
    key: str,
    now: datetime,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """A ``journey_steps`` row for ``row`` (when it belongs to an enrolment)."""
    if row.enrolment_id is None:
        return
    _insert_ignore(
        s,
        JourneyStep,
        {
            "key": key,
            "enrolment_id": row.enrolment_id,
            "journey": row.journey or "",
            "version": row.version or 0,
            "node": row.node or "",
            "user_id": row.user_id,
            "kind": kind,
            "reason": reason,
            "detail": None if detail is None else json.dumps(detail, sort_keys=True, default=str),
            "at": now,
        },
    )


def _outcome(
    s: Session, row: OutboxMessage, kind: str, event_id: str, at: datetime, detail: Any = None
) -> bool:
    """A ``delivery_events`` row (not for internal channels, whose own events tell, nor
    for partner webhooks, which are not messages to the customer)."""
    if row.channel in INTERNAL_CHANNELS or is_subscription_provider(row.provider):
        return False
    return _insert_ignore(
        s,
        DeliveryEvent,
        {
            "event_id": event_id,
            "outbox_id": row.id,
            "user_id": row.user_id,
            "channel": row.channel,
            "kind": kind,
            "detail": None if detail is None else json.dumps(detail, sort_keys=True, default=str),
            "at": at,
            "published": False,
        },
    )


def _payload(row: OutboxMessage) -> dict[str, Any]:
    try:
        data = json.loads(row.payload or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {"value": data}


def _state(payload: dict[str, Any]) -> dict[str, Any]:
    """The delivery's own notes in the payload (``_delivery``): the providers tried and
    the attempts made before the current one took over."""
    found = payload.get("_delivery")
    return found if isinstance(found, dict) else {}


def channel_settings_for(
    ws: Any, provider: str, *, session: Session | None = None
) -> ChannelSettings:
    """``[channels.PROVIDER]`` of the workspace (ConfigError naming it when missing); a
    partner subscription's webhook for ``subscription:<id>`` (read with ``session``
    when given)."""
    from liucun.journeys._channels import channel_settings

    if is_subscription_provider(provider):
        return subscription_channel(ws, provider, session=session)
    return channel_settings(ws.settings.channels, provider)


def _defaults(ws: Any, provider: str | None) -> ChannelSettings:
    """A provider's settings for timing (timeouts, attempts, backoff); defaults if none."""
    if provider is None:
        return ChannelSettings()
    return ws.settings.channels.get(provider) or ChannelSettings()


def _due(s: Session, now: datetime, limit: int) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(s.scalars(query))


def claim(ws: Any, *, worker_id: str, now: datetime, limit: int) -> ClaimResult:
    """Claim up to ``limit`` due rows (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite
    ``BEGIN IMMEDIATE``), run the send-time guards on them and act on each verdict in
    the same transaction; the rows to send are ``sending`` when it commits.

    ``suppress`` → ``cancelled`` (reason in ``last_error``, a ``suppressed`` step);
    ``hold`` / ``defer`` → ``pending`` again at ``until`` (``hold_reason``, a ``held`` /
    ``deferred`` step); ``send`` → the channel's settings and, for an addressed channel,
    the customer's address (none: suppressed ``no_address``); a channel without
    settings fails the row with a sentence naming them.
    """
    from liucun.journeys._channels import ADDRESSED_CHANNELS
    from liucun.journeys._contacts import contact_key, contacts_for
    from liucun.journeys._guards import review_batch

    out = ClaimResult()
    contact_key(ws)  # the secret is checked in a transaction of its own: before ours
    with ws.state.write() as s:
        rows = _due(s, now, limit)
        if not rows:
            return out
        out.taken = len(rows)
        verdicts = review_batch(s, ws, rows, now=now)
        if len(verdicts) != len(rows):
            raise RuntimeError(f"review_batch gave {len(verdicts)} verdicts for {len(rows)} rows")
        sending: list[tuple[OutboxMessage, str | None, dict[str, Any]]] = []
        for row, verdict in zip(rows, verdicts, strict=True):
            extra = dict(getattr(verdict, "detail", None) or {}) or None
            if verdict.action == "suppress":
                _suppress(s, row, verdict.reason or "suppressed", now, detail=extra)
                out.suppressed[verdict.reason or "suppressed"] = (
                    out.suppressed.get(verdict.reason or "suppressed", 0) + 1
                )
                continue
            if verdict.action in ("hold", "defer"):
                until = verdict.until or now
                kind = "held" if verdict.action == "hold" else "deferred"
                default = "quiet_hours" if verdict.action == "hold" else "frequency_cap"
                row.next_attempt_at = until
                row.hold_reason = verdict.reason or default
                row.updated_at = now
                _step(
                    s,
                    row,
                    kind,
                    f"{row.key}:{kind}:{until.isoformat()}",
                    now,
                    reason=row.hold_reason,
                    detail={**(extra or {}), "until": until.isoformat()},
                )
                if verdict.action == "hold":
                    out.held += 1
                else:
                    out.deferred += 1
                continue
            payload = _payload(row)
            provider = None if row.channel in INTERNAL_CHANNELS else (row.provider or row.channel)
            if provider is not None:
                try:
                    channel_settings_for(ws, provider, session=s)
                except ConfigError as exc:
                    _fail(s, row, str(exc), now, provider=provider, attempts=row.attempts)
                    out.failed += 1
                    continue
            sending.append((row, provider, payload))
        sending = _fill_coupon_codes(s, sending, now, out)
        wanted = [(r.user_id, r.channel) for r, _, _ in sending if r.channel in ADDRESSED_CHANNELS]
        unreadable: dict[tuple[str, str], str] = {}
        addresses = contacts_for(s, ws, wanted, unreadable) if wanted else {}
        for row, provider, payload in sending:
            address = addresses.get((row.user_id, row.channel))
            if (row.user_id, row.channel) in unreadable:
                problem = unreadable[(row.user_id, row.channel)]
                _fail(s, row, problem, now, provider=provider, attempts=row.attempts)
                out.failed += 1
                continue
            if row.channel in ADDRESSED_CHANNELS and address is None:
                _suppress(s, row, "no_address", now)
                out.suppressed["no_address"] = out.suppressed.get("no_address", 0) + 1
                continue
            row.status = "sending"
            row.claimed_by = worker_id
            row.claimed_at = now
            row.attempts = (row.attempts or 0) + 1
            row.hold_reason = None
            row.updated_at = now
            before = int(_state(payload).get("attempts_before", 0))
            out.to_send.append(
                Claimed(
                    row=row,
                    provider=provider,
                    payload={k: v for k, v in payload.items() if k != "_delivery"},
                    attempts=row.attempts,
                    provider_attempts=row.attempts - before,
                    address=address,
                )
            )
    return out


#: Stands for a coupon's code in a rendered message (the engine writes it; see
#: :func:`liucun.journeys._engine.render`).
COUPON_CODE_MARK = "\u27e6coupon_code\u27e7"
#: How long a message waits for the coupon row it names to be issued.
COUPON_WAIT = timedelta(minutes=1)


def _fill_coupon_codes(
    s: Session,
    sending: list[tuple[OutboxMessage, str | None, dict[str, Any]]],
    now: datetime,
    out: ClaimResult,
) -> list[tuple[OutboxMessage, str | None, dict[str, Any]]]:
    """Put the issued code into messages that name a coupon row (``coupon_ref``).

    The coupon was issued → its code replaces :data:`COUPON_CODE_MARK`; not yet → the
    message waits :data:`COUPON_WAIT` (pending again, ``hold_reason='coupon_pending'``);
    refused or failed → the message is suppressed (``coupon_refused``): it would promise
    a code the customer does not have.
    """
    refs = sorted({str(p["coupon_ref"]) for _, _, p in sending if p.get("coupon_ref")})
    if not refs:
        return sending
    coupons: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(refs), 900):
        chunk = refs[start : start + 900]
        query = select(
            OutboxMessage.key, OutboxMessage.status, OutboxMessage.provider_message_id
        ).where(OutboxMessage.key.in_(chunk))
        for key, status, code in s.execute(query):
            coupons[key] = (status, code)
    kept = []
    for row, provider, payload in sending:
        ref = payload.get("coupon_ref")
        if not ref:
            kept.append((row, provider, payload))
            continue
        status, code = coupons.get(str(ref), ("missing", None))
        if status == "sent" and code:
            for field in ("subject", "body"):
                if isinstance(payload.get(field), str):
                    payload[field] = payload[field].replace(COUPON_CODE_MARK, code)
            payload["coupon_code"] = code
            kept.append((row, provider, payload))
        elif status in ("pending", "sending"):
            row.next_attempt_at = now + COUPON_WAIT
            row.hold_reason = "coupon_pending"
            row.updated_at = now
            out.deferred += 1
        else:
            _suppress(s, row, "coupon_refused", now, detail={"coupon_ref": ref, "status": status})
            out.suppressed["coupon_refused"] = out.suppressed.get("coupon_refused", 0) + 1
    return kept


def _suppress(
    s: Session,
    row: OutboxMessage,
    reason: str,
    now: datetime,
    *,
    detail: dict[str, Any] | None = None,
) -> None:
    row.status = "cancelled"
    row.last_error = reason
    row.hold_reason = None
    row.claimed_by = None
    row.updated_at = now
    _step(s, row, "suppressed", f"{row.key}:suppressed", now, reason=reason, detail=detail)


def _fail(
    s: Session,
    row: OutboxMessage,
    answer: str,
    now: datetime,
    *,
    provider: str | None,
    attempts: int,
) -> None:
    answer = redact_contact_data(answer)
    row.status = "failed"
    row.last_error = answer
    row.provider = provider
    row.claimed_by = None
    row.updated_at = now
    detail = {"answer": answer, "provider": provider, "attempts": attempts}
    _outcome(s, row, "failed", f"{row.key}:failed:{attempts}", now, detail)
    _step(s, row, "failed", f"{row.key}:failed:{attempts}", now, reason="failed", detail=detail)


def backoff(settings: ChannelSettings, attempt: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: full jitter over ``backoff_s`` doubled per
    attempt (at most :data:`MAX_BACKOFF_S`), and never before ``Retry-After``."""
    ceiling = min(MAX_BACKOFF_S, settings.backoff_s * 2 ** max(0, attempt - 1))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
    return delay


def finish(ws: Any, claimed: Claimed, result: Any, *, worker_id: str, now: datetime) -> str:
    """Record what the provider said about ``claimed`` in one short transaction; returns
    the row's new status, or ``'lost'`` when the row is no longer this worker's claim
    (its lease ran out and another worker took it over).

    ``ok`` → ``sent`` (a ``sent`` outcome and step); ``retry`` → ``pending`` after
    :func:`backoff`; after the provider's ``max_attempts``, or on a permanent failure,
    the channel's ``fallback`` provider is tried (once each), then the row ``failed``
    with the provider's answer.
    """
    return finish_many(ws, [(claimed, result, now)], worker_id=worker_id)[0]


def finish_many(
    ws: Any, done: Sequence[tuple[Claimed, Any, datetime]], *, worker_id: str
) -> list[str]:
    """:func:`finish` for several rows (each with the time its answer came) in one
    transaction; the statuses in order. Only for channels that deduplicate by key: a
    crash before it commits leaves every one of them in doubt, and they are resent."""
    changes = [(c, r, t, *_finished(ws, c, r, t)) for c, r, t in done]
    with ws.state.write() as s:
        return [
            _record(s, c, r, status, values, answer, worker_id=worker_id, now=t)
            for c, r, t, status, values, answer in changes
        ]


def _finished(
    ws: Any, claimed: Claimed, result: Any, now: datetime
) -> tuple[str, dict[str, Any], str | None]:
    """The row's new status, the column values that say so, and the provider's answer."""
    row = claimed.row  # the claim's snapshot: unchanged while the row is ``sending``
    answer = None if result.answer is None else redact_contact_data(str(result.answer))
    values: dict[str, Any] = {"claimed_by": None, "updated_at": now}
    status: str
    if result.status == "ok":
        status = "sent"
        values.update(
            status="sent",
            sent_at=now,
            provider=claimed.provider,
            provider_message_id=result.provider_message_id,
            last_error=None,
        )
    elif result.status == "cancelled":
        status = "cancelled"
        values.update(status="cancelled", last_error=answer or "refused", hold_reason=None)
    else:
        settings = _defaults(ws, claimed.provider)
        exhausted = result.status == "failed" or claimed.provider_attempts >= settings.max_attempts
        payload = _payload(row)
        notes = _state(payload)
        tried = [*notes.get("tried", []), claimed.provider]
        fallback = settings.fallback
        if not exhausted:
            status = "retry"
            delay = backoff(settings, claimed.provider_attempts, result.retry_after)
            values.update(
                status="pending",
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=answer,
            )
        elif fallback and fallback not in tried and claimed.provider is not None:
            status = "fallback"
            notes.update(tried=tried, attempts_before=claimed.attempts)
            payload["_delivery"] = notes
            values.update(
                status="pending",
                payload=json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str),
                provider=fallback,
                next_attempt_at=now,
                last_error=f"{answer} (via {claimed.provider}; falling back to {fallback})",
            )
        else:
            status = "failed"
            answer = answer or "failed"
            values.update(status="failed", last_error=answer, provider=claimed.provider)
    return status, values, answer


def _record(
    s: Session,
    claimed: Claimed,
    result: Any,
    status: str,
    values: dict[str, Any],
    answer: str | None,
    *,
    worker_id: str,
    now: datetime,
) -> str:
    """Write one finished row, its outcome and its step; ``'lost'`` when the row is no
    longer this worker's claim."""
    row = claimed.row
    done = s.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == row.id,
            OutboxMessage.status == "sending",
            OutboxMessage.claimed_by == worker_id,
            OutboxMessage.attempts == claimed.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return "lost"
    if status == "sent":
        detail: dict[str, Any] = {
            "provider": claimed.provider,
            "attempts": claimed.attempts,
            "worker": worker_id,
        }
        if result.provider_message_id:
            detail["provider_message_id"] = result.provider_message_id
        _outcome(s, row, "sent", f"{row.key}:sent", now, detail)
        _step(s, row, "sent", f"{row.key}:sent", now, detail=detail)
    elif status == "cancelled":
        _step(
            s,
            row,
            "suppressed",
            f"{row.key}:suppressed",
            now,
            reason=getattr(result, "reason", None) or "refused",
            detail={"detail": answer or "refused"},
        )
    elif status == "failed":
        detail = {"answer": answer, "provider": claimed.provider, "attempts": claimed.attempts}
        key = f"{row.key}:failed:{claimed.attempts}"
        _outcome(s, row, "failed", key, now, detail)
        _step(s, row, "failed", key, now, reason="failed", detail=detail)
    return status


def release(ws: Any, items: Sequence[Claimed], *, worker_id: str, now: datetime) -> int:
    """Give claimed rows that were not sent back (``pending`` now, the attempt not
    counted): a worker whose batch outlasts half a lease stops before its claims could
    be taken for rows in doubt. Returns how many were released."""
    released = 0
    with ws.state.write() as s:
        for item in items:
            done = s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == item.row.id,
                    OutboxMessage.status == "sending",
                    OutboxMessage.claimed_by == worker_id,
                    OutboxMessage.attempts == item.attempts,
                )
                .values(
                    status="pending",
                    claimed_by=None,
                    attempts=item.attempts - 1,
                    next_attempt_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            released += done.rowcount or 0
    return released


def lease_for(settings: ChannelSettings) -> timedelta:
    """How long a claim lasts: three per-attempt timeouts plus :data:`LEASE_GRACE_S`."""
    return timedelta(seconds=settings.timeout_s * 3 + LEASE_GRACE_S)


@dataclass(frozen=True)
class Recovered:
    """Rows found in doubt: ``resent`` (back to pending, same key: the channel
    deduplicates) and ``unknown`` (never resent automatically; ``outbox unknown``)."""

    resent: int = 0
    unknown: int = 0


def recover_in_doubt(ws: Any, now: datetime, *, lease: timedelta | None = None) -> Recovered:
    """Settle rows ``sending`` whose claim is older than their lease (the worker died
    while sending): on a channel that deduplicates (``dedupes``; internal channels are
    idempotent by key) back to ``pending``; otherwise ``unknown`` with an ``unknown``
    outcome and step. ``lease`` overrides :func:`lease_for` (a restarted lone worker
    knows its predecessor is gone)."""
    from liucun.journeys._channels import dedupes

    shortest = lease if lease is not None else timedelta(seconds=LEASE_GRACE_S)
    stale = (OutboxMessage.status == "sending", OutboxMessage.claimed_at <= now - shortest)
    with ws.state.read() as s:  # the common case, without a write lock
        if s.scalar(select(OutboxMessage.id).where(*stale).limit(1)) is None:
            return Recovered()
    resent = unknown = 0
    with ws.state.write() as s:
        query = select(OutboxMessage).where(*stale).order_by(OutboxMessage.id)
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for row in s.scalars(query):
            provider = None if row.channel in INTERNAL_CHANNELS else (row.provider or row.channel)
            settings = ws.settings.channels.get(provider) if provider else None
            limit = lease if lease is not None else lease_for(settings or ChannelSettings())
            if row.claimed_at is None or row.claimed_at > now - limit:
                continue
            who = f"claimed by {row.claimed_by} at {row.claimed_at.isoformat()}"
            if provider is None or dedupes(provider, settings):
                row.status = "pending"
                row.next_attempt_at = now
                row.last_error = f"in doubt ({who}, never finished): resent with the same key"
                row.claimed_by = None
                row.updated_at = now
                resent += 1
                continue
            row.status = "unknown"
            row.last_error = (
                f"in doubt ({who}, never finished) on {provider}, which does not deduplicate: "
                "it may or may not have been sent; check and run `liucun outbox retry "
                f"{row.id}` to send it again"
            )
            detail = {"provider": provider, "attempts": row.attempts, "claimed_by": row.claimed_by}
            row.claimed_by = None
            row.updated_at = now
            _outcome(s, row, "unknown", f"{row.key}:unknown:{row.attempts}", now, detail)
            _step(s, row, "unknown", f"{row.key}:unknown:{row.attempts}", now, reason="in_doubt")
            unknown += 1
    return Recovered(resent=resent, unknown=unknown)


# -- outcomes -----------------------------------------------------------------------------


def record_outcome(
    ws: Any,
    key: str,
    kind: str,
    at: datetime | None = None,
    detail: dict[str, Any] | str | None = None,
    *,
    event_id: str | None = None,
) -> bool:
    """Record a provider's callback about the message with outbox key ``key``:
    ``delivered``, ``bounced``, ``opened``, ``clicked`` or ``unsubscribed`` at ``at``
    (default now). A bounce or an unsubscribe also suppresses the customer on the
    channel. ``event_id`` (the provider's id of the callback) makes a repeated callback
    add nothing; without it the instant does. Returns whether anything was added."""
    if kind not in CALLBACK_OUTCOMES:
        raise InvalidInput(
            f"{kind!r} is not a delivery outcome a provider reports; use one of "
            f"{', '.join(CALLBACK_OUTCOMES)}"
        )
    when = as_utc(at) if at is not None else ws.clock.now()
    if isinstance(detail, str):
        detail = {"detail": detail}
    if detail is not None:
        detail = json.loads(redact_contact_data(json.dumps(detail, default=str)))
    tag = event_id or when.strftime("%Y%m%dT%H%M%S%fZ")
    with ws.state.write() as s:
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
        if row is None:
            raise InvalidInput(
                f"no outbox row has key {key!r}; a provider callback must carry the key liucun "
                "sent (the Message-ID, webhook-id or Idempotency-Key)"
            )
        added = _outcome(s, row, kind, f"{row.key}:{kind}:{tag}", when, detail)
        if kind in SUPPRESSING:
            _insert_ignore(
                s,
                Suppression,
                {
                    "subject": row.user_id,
                    "channel": row.channel,
                    "kind": SUPPRESSING[kind],
                    "reason": f"{kind} (outbox {row.key})",
                    "at": when,
                },
            )
    return added


def publish_delivery_events(ws: Any, *, limit: int = 50_000) -> int:
    """Load unpublished delivery outcomes into the warehouse ``events`` table (event id
    ``liucun:delivery:<outcome id>``, so a repeat adds nothing), then mark them
    published; returns how many were loaded. ``message_sent`` / ``message_opened`` /
    ``message_clicked`` carry ``properties.source = "liucun"``, the journey, node,
    channel and outbox key; the other outcomes are liucun's own event types."""
    from liucun.journeys._publish import flush

    with ws.state.read() as s:
        pairs = s.execute(
            select(DeliveryEvent, OutboxMessage)
            .join(OutboxMessage, OutboxMessage.id == DeliveryEvent.outbox_id)
            .where(DeliveryEvent.published.is_(False))
            .order_by(DeliveryEvent.id)
            .limit(limit)
        ).all()
    if not pairs:
        flush(ws)  # what the round collected goes in anyway
        return 0
    events = [
        {
            "event_id": f"liucun:delivery:{e.event_id}",
            "user_id": e.user_id,
            "event_type": OUTCOME_EVENT_TYPES[e.kind],
            "ts": e.at,
            "properties": _event_properties(e, o),
        }
        for e, o in pairs
    ]
    # loaded now (with the round's other events): marked published only once committed
    flush(ws, events)
    ids = [e.id for e, _ in pairs]
    with ws.state.write() as s:
        for start in range(0, len(ids), 900):
            s.execute(
                update(DeliveryEvent)
                .where(DeliveryEvent.id.in_(ids[start : start + 900]))
                .values(published=True)
            )
    return len(pairs)


def _event_properties(e: DeliveryEvent, o: OutboxMessage) -> str:
    props: dict[str, Any] = {
        "source": "liucun",
        "journey": o.journey,
        "node": o.node,
        "channel": e.channel,
        "key": o.key,
        "outcome": e.kind,
    }
    if e.detail:
        try:
            detail = json.loads(e.detail)
        except ValueError:
            detail = None
        if isinstance(detail, dict):
            for name in ("provider", "answer", "attempts"):
                if name in detail:
                    props[name] = detail[name]
    return json.dumps(props, ensure_ascii=False, sort_keys=True, default=str)


# -- operators ----------------------------------------------------------------------------

OUTBOX_STATUSES: tuple[str, ...] = (
    "pending",
    "sending",
    "sent",
    "failed",
    "unknown",
    "cancelled",
)


def _as_dict(row: OutboxMessage) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else as_utc(value).isoformat()

    return {
        "id": row.id,
        "key": row.key,
        "journey": row.journey,
        "node": row.node,
        "user_id": row.user_id,
        "channel": row.channel,
        "provider": row.provider,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "hold_reason": row.hold_reason,
        "claimed_by": row.claimed_by,
        "claimed_at": iso(row.claimed_at),
        "sent_at": iso(row.sent_at),
        "provider_message_id": row.provider_message_id,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
    }


def list_outbox(
    ws: Any, *, status: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows (of one ``status``), oldest first, as dicts (no contact data)."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise InvalidInput(
            f"{status!r} is not an outbox status; use one of {', '.join(OUTBOX_STATUSES)}"
        )
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if limit is not None:
        query = query.limit(limit)
    with ws.state.read() as s:
        return [_as_dict(r) for r in s.scalars(query)]


def count_outbox(ws: Any) -> dict[str, int]:
    """Rows per status."""
    from sqlalchemy import func

    with ws.state.read() as s:
        return {
            status: int(n)
            for status, n in s.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
        }


def retry_outbox(ws: Any, ids: Sequence[int] = (), *, failed: bool = False) -> int:
    """Send rows again: the ``failed`` or ``unknown`` rows ``ids``, or every failed row
    (``failed=True``). They become ``pending`` now on the channel's first provider,
    with a fresh count of attempts (the same key: a deduplicating receiver still drops
    a repeat). Returns how many rows were queued."""
    if not ids and not failed:
        raise InvalidInput("name the outbox rows to retry (their ids) or pass --failed")
    now = ws.clock.now()
    with ws.state.write() as s:
        if ids:
            rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(list(ids)))))
            missing = sorted(set(ids) - {r.id for r in rows})
            if missing:
                raise InvalidInput(
                    f"no outbox row has id {', '.join(map(str, missing))}; "
                    "`liucun outbox list` shows them"
                )
            wrong = [r for r in rows if r.status not in ("failed", "unknown")]
            if wrong:
                raise InvalidInput(
                    f"outbox row {wrong[0].id} is {wrong[0].status}; only failed or unknown "
                    "rows can be retried"
                )
        else:
            rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")))
        for row in rows:
            payload = _payload(row)
            payload["_delivery"] = {"attempts_before": row.attempts or 0, "tried": []}
            row.payload = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
            row.status = "pending"
            if not is_subscription_provider(row.provider):  # a subscription's stays its own
                row.provider = None
            row.next_attempt_at = now
            row.claimed_by = None
            row.hold_reason = "manual_retry"
            row.updated_at = now
    if rows:
        ws.audit("outbox.retry", rows=len(rows), ids=[r.id for r in rows][:100])
    return len(rows)
