"""Delivery: one pass of a worker over the due outbox rows.

:func:`deliver_due` settles rows a dead worker left in doubt, claims a batch (guards
applied in the claiming transaction), sends each claimed row outside any transaction
through its channel's adapter (or :func:`liucun.journeys._actions.execute_internal` for
coupon, points, task, tag and tier), and records each answer in a short transaction:
at once for internal actions and channels that do not deduplicate (a crash leaves at most
the row being sent in doubt, and it becomes ``unknown``), and up to :data:`FINISH_BATCH`
at a time for channels that do (the rows a crash leaves in doubt are resent under the
same key, and the receiver drops the repeats). One bad row never stops the batch: an
adapter that raises is a retry with the error as answer.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from liucun.core import ConfigError, InvalidInput, redact_contact_data
from liucun.journeys._actions import INTERNAL_CHANNELS, execute_internal, publish_action_events
from liucun.journeys._channels import (
    Adapter,
    OutgoingMessage,
    SendResult,
    adapter_for,
    dedupes,
    excerpt,
)
from liucun.journeys._outbox import (
    Claimed,
    _defaults,
    channel_settings_for,
    claim,
    finish,
    finish_many,
    lease_for,
    recover_in_doubt,
    release,
)

log = logging.getLogger("liucun.journeys.delivery")


@dataclass
class DeliveryRun:
    """What one :func:`deliver_due` did, counted by what became of each row."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    fallbacks: int = 0
    failed: int = 0
    cancelled: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    held: int = 0
    deferred: int = 0
    resent_in_doubt: int = 0
    unknown: int = 0
    lost: int = 0
    #: Claimed rows given back unsent (the batch outlasted half a lease).
    released: int = 0

    #: Rows the claim took (sent, suppressed, held, deferred or failed before sending).
    taken: int = 0

    @property
    def touched(self) -> int:
        """Rows this run changed (0: nothing was due)."""
        return self.taken + self.resent_in_doubt + self.unknown

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: DeliveryRun) -> None:
        """Add ``other``'s counts to these."""
        for name, value in asdict(other).items():
            if isinstance(value, dict):
                mine = getattr(self, name)
                for k, v in value.items():
                    mine[k] = mine.get(k, 0) + v
            else:
                setattr(self, name, getattr(self, name) + value)


def deliver_due(
    ws: Any,
    *,
    worker_id: str,
    now: datetime | None = None,
    limit: int | None = None,
    lease: timedelta | None = None,
) -> DeliveryRun:
    """Deliver the outbox rows due at ``now`` (default: the workspace clock), at most
    ``limit`` (default ``[journeys] batch_size``), as worker ``worker_id``.

    Rows in doubt (``sending`` past their lease) are settled first (``lease`` overrides
    it: see :func:`liucun.journeys._outbox.recover_in_doubt`). The engine calls this
    each tick; outcomes reach the warehouse by
    :func:`liucun.journeys.publish_delivery_events`.
    """
    run = DeliveryRun()
    start = now or ws.clock.now()
    recovered = recover_in_doubt(ws, start, lease=lease)
    run.resent_in_doubt, run.unknown = recovered.resent, recovered.unknown
    batch = claim(
        ws, worker_id=worker_id, now=start, limit=limit or ws.settings.journeys.batch_size
    )
    run.claimed, run.taken = len(batch.to_send), batch.taken
    run.suppressed = dict(batch.suppressed)
    run.held, run.deferred, run.failed = batch.held, batch.deferred, batch.failed
    adapters: dict[str, Adapter | ConfigError] = {}
    performed: list[Any] = []
    # stop before any claim could pass for one in doubt: half the shortest lease
    budget = min(
        (lease_for(_defaults(ws, item.provider)) for item in batch.to_send),
        default=timedelta(0),
    )
    deadline = start + budget / 2
    finished: list[tuple[Claimed, Any, datetime]] = []

    def settle() -> None:  # the deduplicating channels' rows, in one transaction
        if finished:
            statuses = finish_many(ws, finished, worker_id=worker_id)
            for (item, _, _), status in zip(finished, statuses, strict=True):
                _count(run, item, status, performed, worker_id)
            finished.clear()

    try:
        for i, item in enumerate(batch.to_send):
            at = now or ws.clock.now()
            if at > deadline and now is None:
                rest = batch.to_send[i:]
                run.released = release(ws, rest, worker_id=worker_id, now=at)
                log.warning(
                    "worker %s released %d claimed rows unsent: the batch outlasted half "
                    "a lease (lower [journeys] batch_size or the channels' timeout_s)",
                    worker_id,
                    run.released,
                )
                break
            result = _send(ws, item, adapters, at)
            done_at = now or ws.clock.now()
            if _dedupes(ws, item):
                finished.append((item, result, done_at))
                if len(finished) >= FINISH_BATCH:
                    settle()
                continue
            status = finish(ws, item, result, worker_id=worker_id, now=done_at)
            _count(run, item, status, performed, worker_id)
        settle()
    finally:
        for adapter in adapters.values():
            if not isinstance(adapter, ConfigError):
                adapter.close()
        if performed:  # the tag and task events of the batch, in one load
            publish_action_events(ws, performed)
    return run


#: Rows of deduplicating channels finished per transaction: a crash leaves at most this
#: many in doubt, and they are resent under the same key (the receiver drops repeats).
FINISH_BATCH = 50


def _dedupes(ws: Any, item: Claimed) -> bool:
    """Whether ``item`` goes to a provider that deduplicates by key (its finish may wait
    for the batch's); internal actions and other channels are finished one by one."""
    if item.row.channel in INTERNAL_CHANNELS or item.provider is None:
        return False
    return dedupes(item.provider, ws.settings.channels.get(item.provider))


def _count(run: DeliveryRun, item: Claimed, status: str, performed: list[Any], worker: str) -> None:
    """Add one finished row's status to ``run``."""
    if item.row.channel in INTERNAL_CHANNELS and status == "sent":
        performed.append(item.row)
    if status == "sent":
        run.sent += 1
    elif status == "retry":
        run.retried += 1
    elif status == "fallback":
        run.fallbacks += 1
    elif status == "failed":
        run.failed += 1
    elif status == "cancelled":
        run.cancelled += 1
    else:
        run.lost += 1
        log.warning(
            "outbox row %s was taken over by another worker before %s finished it",
            item.row.id,
            worker,
        )


def _send(
    ws: Any, item: Claimed, adapters: dict[str, Adapter | ConfigError], at: datetime
) -> SendResult:
    """Send ``item`` and say what happened (never raises for one row's trouble)."""
    row = item.row
    if row.channel in INTERNAL_CHANNELS:
        return _internal(ws, item)
    assert item.provider is not None
    adapter = adapters.get(item.provider)
    if adapter is None:
        try:
            adapter = adapter_for(item.provider, channel_settings_for(ws, item.provider), ws.path)
        except ConfigError as exc:
            adapter = exc
        adapters[item.provider] = adapter
    if isinstance(adapter, ConfigError):
        return SendResult("failed", answer=str(adapter))
    message = OutgoingMessage(
        key=row.key,
        channel=row.channel,
        user_id=row.user_id,
        payload=item.payload,
        now=at,
        address=item.address,
        journey=row.journey,
        node=row.node,
        outbox_id=row.id,
    )
    try:
        return adapter.send(message)
    except Exception as exc:  # a bug or an unexpected library error: retried, logged
        answer = excerpt(redact_contact_data(f"{type(exc).__name__}: {exc}"))
        log.warning("sending outbox row %s via %s raised %s", row.id, item.provider, answer)
        return SendResult("retry", answer=answer)


def _internal(ws: Any, item: Claimed) -> SendResult:
    """An internal action: ok → sent; refused → cancelled (final, with its reason code);
    a bad payload → failed; else retried. Its events are published once per batch."""
    try:
        done = execute_internal(ws, item.row, publish=False)
    except (NotImplementedError, InvalidInput, ConfigError) as exc:  # retrying cannot help
        return SendResult("failed", answer=str(exc))
    except Exception as exc:
        return SendResult("retry", answer=excerpt(f"{type(exc).__name__}: {exc}"))
    if done.ok:
        return SendResult("ok", provider_message_id=done.reference, answer=done.detail)
    if done.refused:
        reason = done.detail or "refused"
        answer = f"{reason}: {done.message}" if done.message else reason
        return SendResult("cancelled", answer=answer, reason=reason)
    return SendResult("retry", answer=done.message or done.detail or "the action did not complete")
