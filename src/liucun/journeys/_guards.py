"""Send-time guards and arbitration (docs/decisions/0007-journeys.md §5, docs/journeys.md).

The worker calls :func:`review_batch` on the rows it claimed, inside the claiming
transaction, and acts on each :class:`Verdict`: ``send``; ``suppress`` (the row is
cancelled, a ``suppressed`` step logged with the reason); ``hold`` (quiet hours: pending
again at ``until``, ``hold_reason='quiet_hours'``); ``defer`` (a frequency cap or
arbitration: pending again at ``until``). Caps and quiet hours never drop a message.

Guards, in the order they are applied to each row:

1. **Suppression** (``suppressed:<kind>``): the customer's id, or the keyed hash of their
   address on the row's channel (``contacts.address_hash``), is in ``suppressions`` for
   the channel or for ``'*'``. A ``'*'`` suppression of kind erased or manual also stops
   internal actions (coupon, points, task, tag, tier); the other kinds stop contact only.
2. **Consent** (``consent``, message channels only): see :mod:`._consent`.
3. **Coupon value cap** (``coupon_cap``, coupon rows): the face values of the coupon rows
   sent to the customer in the last 30 days, those approved earlier in the batch and this
   one may not exceed ``[guards] coupon_value_cap`` (None: the program's own
   ``coupon_cap``, which ``issue_coupon`` enforces when the action runs).
4. **Quiet hours** (``quiet_hours``, hold): ``email``, ``sms``, ``push``, ``wechat``,
   ``whatsapp`` messages due inside ``[guards] quiet_start–quiet_end`` of the customer's
   local time wait for the end. ``in_app`` is not held (the customer reads it when they
   open the app; it does not interrupt), nor are webhooks or internal actions.
5. **Frequency caps and arbitration** (``frequency_cap`` / ``arbitration``, defer): per
   customer, ``max_per_day`` per local calendar day, ``max_per_week`` per 7 local days
   ending today, ``channel_max_per_day`` per channel and local day, counted over every
   journey: outbox rows already sent (or being sent) and rows approved earlier in this
   batch. A customer's competing rows in the batch are taken by expected incremental
   ``value`` (highest first; then the oldest); a row the budget has no room for waits
   for the first local midnight at which it has (then the quiet-hours end if midnight is
   quiet). The reason is ``arbitration`` when the room went to a better row of this
   batch (the step detail names it), else ``frequency_cap``. Capped: the message
   channels (``email``, ``sms``, ``push``, ``wechat``, ``whatsapp``, ``in_app``).
   Not capped: webhooks, internal actions (a coupon is bounded by the coupon cap), and
   purpose ``transactional`` (which also does not count against the budget and is not
   held by quiet hours).

The customer's time zone is the payload's ``timezone``, else the main zone of its
``country``, else ``reporting_timezone``. Each guard reads the whole batch in one query
(users, contacts, suppressions, consents, sent rows), so a batch of 500 rows costs a
handful of queries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liucun.core import as_utc
from liucun.journeys._consent import (
    ANY_CHANNEL,
    consent_allows,
    latest_consents,
    status_in_force,
    suppressions_for,
)
from liucun.journeys._local_time import customer_zone, local_day, local_instant, quiet_until
from liucun.state import Contact, OutboxMessage

#: Reason codes of the verdicts (stable: reports group suppressions by them).
CONSENT = "consent"
SUPPRESSED = "suppressed"  # written as "suppressed:<kind>"
FREQUENCY_CAP = "frequency_cap"
ARBITRATION = "arbitration"
QUIET_HOURS = "quiet_hours"
COUPON_CAP = "coupon_cap"
#: For the delivery worker: a message channel with no stored address.
NO_ADDRESS = "no_address"
REASONS: tuple[str, ...] = (
    CONSENT,
    "suppressed:erased",
    "suppressed:bounced",
    "suppressed:unsubscribed",
    "suppressed:complaint",
    "suppressed:manual",
    FREQUENCY_CAP,
    ARBITRATION,
    QUIET_HOURS,
    COUPON_CAP,
    NO_ADDRESS,
)

#: Channels that contact a person (consent applies; caps count them).
MESSAGE_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "wechat", "whatsapp", "in_app")
#: Message channels held by quiet hours (in_app does not interrupt anyone).
QUIET_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "wechat", "whatsapp")
CAPPED_CHANNELS: tuple[str, ...] = MESSAGE_CHANNELS
INTERNAL: tuple[str, ...] = ("coupon", "points", "task", "tag", "tier")
#: '*' suppressions of these kinds also stop internal actions.
_STOP_ALL = ("erased", "manual")
COUPON_WINDOW = timedelta(days=30)
_CHUNK = 900


@dataclass(frozen=True)
class Verdict:
    """``send``; ``suppress`` (dropped, with ``reason``); ``hold`` (quiet hours: due again
    at ``until``); ``defer`` (a frequency cap or arbitration: due again at ``until``).
    ``detail`` is JSON-ready context for the step row (the cap and its count, the
    winning journey of an arbitration, the time zone of a hold)."""

    action: Literal["send", "suppress", "hold", "defer"]
    reason: str | None = None
    until: datetime | None = None
    detail: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass
class _Item:
    index: int
    row: OutboxMessage
    payload: dict[str, Any]
    user: str
    channel: str
    purpose: str
    tz: str
    value: float


def payload_of(row: OutboxMessage) -> dict[str, Any]:
    """The row's payload as a dict (an empty or unreadable payload is ``{}``)."""
    try:
        data = json.loads(row.payload) if row.payload else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def review_batch(
    s: Session, ws: Any, rows: Sequence[OutboxMessage], *, now: datetime
) -> list[Verdict]:
    """One verdict per row of ``rows`` (same order); see the module docstring."""
    if not rows:
        return []
    now = as_utc(now)
    settings = ws.settings
    g = settings.guards
    default_tz = settings.reporting_timezone
    items = []
    for i, row in enumerate(rows):
        p = payload_of(row)
        items.append(
            _Item(
                index=i,
                row=row,
                payload=p,
                user=str(row.user_id),
                channel=str(row.channel),
                purpose=_purpose(p.get("purpose")),
                tz=customer_zone(p.get("timezone"), p.get("country"), default_tz),
                value=_number(p.get("value")),
            )
        )
    verdicts: list[Verdict | None] = [None] * len(items)
    users = {it.user for it in items}

    # 1. suppressions (by user id and by the address hash of the row's channel)
    messages = [it for it in items if it.channel in MESSAGE_CHANNELS or it.channel == "webhook"]
    hashes = _address_hashes(s, {it.user for it in messages}) if messages else {}
    subjects = users | {h for h in hashes.values()}
    suppressed = suppressions_for(s, subjects)
    for it in items:
        kind, where = _suppression(it, suppressed, hashes)
        if kind is not None:
            verdicts[it.index] = Verdict(
                "suppress",
                f"{SUPPRESSED}:{kind}",
                detail={"kind": kind, "subject": where, "channel": it.channel},
            )

    # 2. consent (message channels)
    asking = [it for it in items if verdicts[it.index] is None and it.channel in MESSAGE_CHANNELS]
    if asking:
        latest = latest_consents(s, {it.user for it in asking}, {it.purpose for it in asking})
        for it in asking:
            status = status_in_force(latest, it.user, it.purpose, it.channel)
            if not consent_allows(status, it.purpose, required=g.consent_required):
                verdicts[it.index] = Verdict(
                    "suppress",
                    CONSENT,
                    detail={"purpose": it.purpose, "channel": it.channel, "status": status},
                )

    # 3. coupon value cap
    coupons = [it for it in items if verdicts[it.index] is None and it.channel == "coupon"]
    if coupons and g.coupon_value_cap is not None:
        _coupon_cap(s, ws, coupons, verdicts, now, float(g.coupon_value_cap))

    # 4. quiet hours
    for it in items:
        if verdicts[it.index] is not None or not _held_by_quiet(it):
            continue
        until = quiet_until(now, it.tz, g.quiet_start, g.quiet_end)
        if until is not None:
            verdicts[it.index] = Verdict(
                "hold",
                QUIET_HOURS,
                until,
                detail={
                    "timezone": it.tz,
                    "quiet_start": g.quiet_start,
                    "quiet_end": g.quiet_end,
                },
            )

    # 5. frequency caps and arbitration
    capped = [
        it
        for it in items
        if verdicts[it.index] is None
        and it.channel in CAPPED_CHANNELS
        and it.purpose != "transactional"
    ]
    if capped and (
        g.max_per_day is not None or g.max_per_week is not None or g.channel_max_per_day
    ):
        _caps(s, capped, verdicts, now, g, exclude={it.row.id for it in items})

    return [v if v is not None else Verdict("send") for v in verdicts]


# -- suppression -------------------------------------------------------------------------


def _address_hashes(s: Session, users: set[str]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    keys = sorted(users)
    for start in range(0, len(keys), _CHUNK):
        query = select(Contact.user_id, Contact.channel, Contact.address_hash).where(
            Contact.user_id.in_(keys[start : start + _CHUNK])
        )
        for user, channel, digest in s.execute(query):
            out[(user, channel)] = digest
    return out


def _suppression(
    it: _Item,
    suppressed: Mapping[str, list[tuple[str, str]]],
    hashes: Mapping[tuple[str, str], str],
) -> tuple[str | None, str | None]:
    internal = it.channel in INTERNAL
    candidates = [("user", it.user)]
    digest = hashes.get((it.user, it.channel))
    if digest is not None:
        candidates.append(("address", digest))
    for where, subject in candidates:
        for channel, kind in suppressed.get(subject, ()):
            if channel == it.channel or (
                channel == ANY_CHANNEL and (not internal or kind in _STOP_ALL)
            ):
                return kind, where
    return None, None


# -- coupon cap --------------------------------------------------------------------------


def coupon_face_value(ws: Any, payload: Mapping[str, Any], programs: dict[str, Any]) -> float:
    """The face value of a coupon row: the payload's ``face_value``, else the amount of
    the program's value coupon ``coupon_id`` (a percent coupon, or an unknown program or
    coupon, counts 0: its value is only known on redemption)."""
    if payload.get("face_value") is not None:
        return _number(payload["face_value"])
    from liucun.core import LiucunError
    from liucun.loyalty import DEFAULT_PROGRAM, active_program

    name = str(payload.get("program") or DEFAULT_PROGRAM)
    if name not in programs:
        try:
            programs[name] = active_program(ws, name)
        except LiucunError:
            programs[name] = None
    prog = programs[name]
    if prog is None:
        return 0.0
    for c in prog.coupons:
        if c.id == payload.get("coupon_id"):
            return float(c.amount) if c.kind == "value" else 0.0
    return 0.0


def _coupon_cap(
    s: Session,
    ws: Any,
    coupons: list[_Item],
    verdicts: list[Verdict | None],
    now: datetime,
    cap: float,
) -> None:
    programs: dict[str, Any] = {}
    used: dict[str, float] = {}
    users = sorted({it.user for it in coupons})
    own = {it.row.id for it in coupons}
    for start in range(0, len(users), _CHUNK):
        query = select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.payload).where(
            OutboxMessage.user_id.in_(users[start : start + _CHUNK]),
            OutboxMessage.channel == "coupon",
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at >= now - COUPON_WINDOW,
        )
        for id_, user, text in s.execute(query):
            if id_ in own:
                continue
            try:
                p = json.loads(text) if text else {}
            except ValueError:
                p = {}
            used[user] = used.get(user, 0.0) + coupon_face_value(ws, p, programs)
    for it in sorted(coupons, key=_priority):
        face = coupon_face_value(ws, it.payload, programs)
        before = used.get(it.user, 0.0)
        if before + face > cap + 1e-9:
            verdicts[it.index] = Verdict(
                "suppress",
                COUPON_CAP,
                detail={"cap": cap, "used_30d": round(before, 2), "face_value": face},
            )
        else:
            used[it.user] = before + face


# -- quiet hours -------------------------------------------------------------------------


def _held_by_quiet(it: _Item) -> bool:
    return it.channel in QUIET_CHANNELS and it.purpose != "transactional"


# -- caps and arbitration ----------------------------------------------------------------


def _priority(it: _Item) -> tuple[float, datetime, int]:
    created = it.row.created_at
    return (
        -it.value,
        as_utc(created) if created is not None else datetime.max.replace(tzinfo=UTC),
        it.row.id or 0,
    )


def _sent_rows(
    s: Session, users: list[str], now: datetime, exclude: set[int]
) -> dict[str, list[tuple[datetime, str]]]:
    """Per user the (instant, channel) of capped rows sent or being sent in the last
    8 days (7 local days ending today, whatever the zone), transactional ones left out."""
    since = now - timedelta(days=8)
    at = func.coalesce(OutboxMessage.sent_at, OutboxMessage.updated_at)
    out: dict[str, list[tuple[datetime, str]]] = {}
    for start in range(0, len(users), _CHUNK):
        query = select(
            OutboxMessage.id,
            OutboxMessage.user_id,
            OutboxMessage.channel,
            OutboxMessage.sent_at,
            OutboxMessage.updated_at,
            OutboxMessage.payload,
        ).where(
            OutboxMessage.user_id.in_(users[start : start + _CHUNK]),
            OutboxMessage.channel.in_(CAPPED_CHANNELS),
            OutboxMessage.status.in_(("sent", "sending")),
            at >= since,
        )
        for id_, user, channel, sent_at, updated_at, text in s.execute(query):
            if id_ in exclude:
                continue
            if text and '"transactional"' in text:
                try:
                    if json.loads(text).get("purpose") == "transactional":
                        continue
                except ValueError:
                    pass
            out.setdefault(user, []).append((as_utc(sent_at or updated_at), channel))
    return out


def _caps(
    s: Session,
    capped: list[_Item],
    verdicts: list[Verdict | None],
    now: datetime,
    g: Any,
    *,
    exclude: set[int],
) -> None:
    sent = _sent_rows(s, sorted({it.user for it in capped}), now, exclude)
    by_user: dict[str, list[_Item]] = {}
    for it in capped:
        by_user.setdefault(it.user, []).append(it)
    for user, mine in by_user.items():
        mine.sort(key=_priority)
        winners: list[_Item] = []
        losers: list[tuple[_Item, tuple[str, int, int], str]] = []
        for it in mine:
            today = local_day(now, it.tz)
            before = _day_counts(sent.get(user, []), it.tz)
            both = _merge(before, _day_counts([(now, w.channel) for w in winners], it.tz))
            broken = _broken(both, today, it.channel, g)
            if broken is None:
                winners.append(it)
            else:
                won = _broken(before, today, it.channel, g) is None and bool(winners)
                losers.append((it, broken, ARBITRATION if won else FREQUENCY_CAP))
        # when the budget has room again, counting every row approved in this batch
        for it, (cap, limit, count), reason in losers:
            today = local_day(now, it.tz)
            final = _merge(
                _day_counts(sent.get(user, []), it.tz),
                _day_counts([(now, w.channel) for w in winners], it.tz),
            )
            until = _room_at(final, today, it.channel, g, it.tz)
            if _held_by_quiet(it):
                until = quiet_until(until, it.tz, g.quiet_start, g.quiet_end) or until
            detail: dict[str, Any] = {
                "cap": cap,
                "limit": limit,
                "count": count,
                "local_day": today.isoformat(),
                "timezone": it.tz,
            }
            if reason == ARBITRATION:
                best = winners[0]
                detail["winner"] = {
                    "journey": best.row.journey,
                    "node": best.row.node,
                    "key": best.row.key,
                    "value": best.value,
                }
            verdicts[it.index] = Verdict("defer", reason, until, detail=detail)


_Counts = dict[date, dict[str, int]]


def _day_counts(sends: list[tuple[datetime, str]], tz: str) -> _Counts:
    out: _Counts = {}
    for at, channel in sends:
        day = out.setdefault(local_day(at, tz), {})
        day[channel] = day.get(channel, 0) + 1
    return out


def _merge(a: _Counts, b: _Counts) -> _Counts:
    out = {d: dict(c) for d, c in a.items()}
    for d, c in b.items():
        day = out.setdefault(d, {})
        for ch, n in c.items():
            day[ch] = day.get(ch, 0) + n
    return out


def _broken(counts: _Counts, day: date, channel: str, g: Any) -> tuple[str, int, int] | None:
    """The first cap one more send on ``channel`` on ``day`` would break, as
    (name, limit, count so far), or None."""
    today = sum(counts.get(day, {}).values())
    if g.max_per_day is not None and today + 1 > g.max_per_day:
        return ("max_per_day", g.max_per_day, today)
    if g.max_per_week is not None:
        week = sum(sum(counts.get(day - timedelta(days=k), {}).values()) for k in range(7))
        if week + 1 > g.max_per_week:
            return ("max_per_week", g.max_per_week, week)
    limit = g.channel_max_per_day.get(channel)
    if limit is not None:
        on_channel = counts.get(day, {}).get(channel, 0)
        if on_channel + 1 > limit:
            return (f"channel_max_per_day.{channel}", limit, on_channel)
    return None


def _room_at(counts: _Counts, today: date, channel: str, g: Any, tz: str) -> datetime:
    """The first local midnight after today at which no cap is broken (the counts of
    later days are what is known now: none); the next midnight when no day within a week
    has room (a cap of 0)."""
    for k in range(1, 9):
        if _broken(counts, today + timedelta(days=k), channel, g) is None:
            return local_instant(today + timedelta(days=k), time(0), tz)
    return local_instant(today + timedelta(days=1), time(0), tz)


def _purpose(value: Any) -> str:
    """The payload's purpose; a missing or unknown one is read as marketing (the strictest).

    >>> _purpose("service"), _purpose(None), _purpose("promo")
    ('service', 'marketing', 'marketing')
    """
    return value if value in ("marketing", "service", "transactional") else "marketing"


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if out == out else 0.0  # NaN → 0
