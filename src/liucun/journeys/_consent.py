"""Consent records and global suppressions (state tables ``consents``, ``suppressions``).

Consent is append-only: every decision is a new row (user × purpose × channel, status
granted / denied / revoked, its source and proof, when it was given). The record in force
for a purpose and channel is the latest (by ``at``, then by insertion) of the user's
records for that purpose on that channel or on ``'*'`` (every channel). A send reads
it at send time, so a revocation recorded after a message was queued still stops it.

The rule (docs/decisions/0007-journeys.md): purpose ``marketing`` needs a ``granted``
record unless ``[guards] consent_required = false``; ``service`` and ``transactional``
need none, but a ``denied`` or ``revoked`` record for that purpose blocks them.

A suppression stops messages to a subject (a user id or the keyed hash of an address)
on one channel or on ``'*'``: ``erased`` (a data-subject erasure), ``bounced``,
``unsubscribed``, ``complaint``, ``manual``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from liucun.core import Hint, InvalidInput, as_utc
from liucun.state import ConsentRecord, Suppression

PURPOSES: tuple[str, ...] = ("marketing", "service", "transactional")
STATUSES: tuple[str, ...] = ("granted", "denied", "revoked")
SUPPRESSION_KINDS: tuple[str, ...] = ("erased", "bounced", "unsubscribed", "complaint", "manual")
#: A consent or suppression on this channel applies to every channel.
ANY_CHANNEL = "*"
_CHUNK = 900


@dataclass(frozen=True)
class Consent:
    """One consent record."""

    user_id: str
    purpose: str
    channel: str
    status: str
    source: str
    proof: str | None
    at: datetime
    recorded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "user_id": self.user_id,
            "purpose": self.purpose,
            "channel": self.channel,
            "status": self.status,
            "source": self.source,
            "proof": self.proof,
            "at": self.at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
        }


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise InvalidInput(
            f"{what} must be one of {', '.join(allowed)}, got {value!r}",
            hint=Hint(option=what, example=allowed[0]),
        )


def _check_channel(channel: str) -> None:
    from liucun.journeys._spec import CHANNELS

    if channel != ANY_CHANNEL and channel not in CHANNELS:
        raise InvalidInput(
            f"channel must be '*' (every channel) or one of {', '.join(CHANNELS)}, got {channel!r}",
            hint=Hint(option="channel", example="email"),
        )


def record_consent(
    ws: Any,
    user_id: str,
    *,
    purpose: str,
    channel: str,
    status: str,
    source: str,
    proof: str | None = None,
    at: datetime | None = None,
) -> Consent:
    """Append a consent decision of ``user_id`` for ``purpose`` on ``channel`` (``'*'``:
    every channel); ``at`` is when the customer gave it (default now)."""
    if not user_id or not str(user_id).strip():
        raise InvalidInput("user_id is empty; give the customer's user id")
    _check(purpose, PURPOSES, "purpose")
    _check(status, STATUSES, "status")
    _check_channel(channel)
    if not source or not source.strip():
        raise InvalidInput(
            "source is empty; say where the decision came from (e.g. 'signup_form')",
            hint=Hint(option="source", example="signup_form"),
        )
    now = as_utc(ws.clock.now())
    given = now if at is None else as_utc(at)
    row = ConsentRecord(
        user_id=str(user_id),
        purpose=purpose,
        channel=channel,
        status=status,
        source=source,
        proof=proof,
        at=given,
        recorded_at=now,
    )
    with ws.state.write() as s:
        s.add(row)
        s.flush()
        return _consent(row)


def record_consents(ws: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Append many consent decisions in one transaction (``rows``: the arguments of
    :func:`record_consent` as mappings with ``user_id``). Returns how many."""
    now = as_utc(ws.clock.now())
    items = []
    for r in rows:
        _check(r["purpose"], PURPOSES, "purpose")
        _check(r["status"], STATUSES, "status")
        _check_channel(r["channel"])
        items.append(
            {
                "user_id": str(r["user_id"]),
                "purpose": r["purpose"],
                "channel": r["channel"],
                "status": r["status"],
                "source": r["source"],
                "proof": r.get("proof"),
                "at": now if r.get("at") is None else as_utc(r["at"]),
                "recorded_at": now,
            }
        )
    if not items:
        return 0
    with ws.state.write() as s:
        for start in range(0, len(items), 5000):
            s.execute(insert(ConsentRecord), items[start : start + 5000])
    return len(items)


def consent_history(ws: Any, user_id: str) -> list[Consent]:
    """Every consent record of ``user_id``, oldest first."""
    with ws.state.read() as s:
        rows = s.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.user_id == str(user_id))
            .order_by(ConsentRecord.at, ConsentRecord.id)
        ).all()
        return [_consent(r) for r in rows]


def latest_consents(
    s: Session, user_ids: Iterable[str], purposes: Iterable[str] | None = None
) -> dict[tuple[str, str, str], tuple[datetime, int, str]]:
    """The latest record per (user, purpose, channel) of ``user_ids`` as
    ``(at, id, status)``; one query per 900 users."""
    users = sorted({str(u) for u in user_ids})
    wanted = None if purposes is None else sorted(set(purposes))
    out: dict[tuple[str, str, str], tuple[datetime, int, str]] = {}
    for start in range(0, len(users), _CHUNK):
        query = select(
            ConsentRecord.user_id,
            ConsentRecord.purpose,
            ConsentRecord.channel,
            ConsentRecord.at,
            ConsentRecord.id,
            ConsentRecord.status,
        ).where(ConsentRecord.user_id.in_(users[start : start + _CHUNK]))
        if wanted is not None:
            query = query.where(ConsentRecord.purpose.in_(wanted))
        for user, purpose, channel, at, id_, status in s.execute(query):
            key = (user, purpose, channel)
            mark = (as_utc(at), id_, status)
            if key not in out or mark[:2] > out[key][:2]:
                out[key] = mark
    return out


def status_in_force(
    latest: dict[tuple[str, str, str], tuple[datetime, int, str]],
    user_id: str,
    purpose: str,
    channel: str,
) -> str | None:
    """The status in force from :func:`latest_consents`: the later of the channel's own
    record and the ``'*'`` record, or None when neither exists."""
    own = latest.get((user_id, purpose, channel))
    anywhere = latest.get((user_id, purpose, ANY_CHANNEL))
    best = max((m for m in (own, anywhere) if m is not None), default=None, key=lambda m: m[:2])
    return None if best is None else best[2]


def consent_in_force(
    s: Session, user_ids: Iterable[str], purpose: str, channel: str
) -> dict[str, str | None]:
    """For each of ``user_ids`` the consent status in force for ``purpose`` on
    ``channel`` (granted, denied, revoked), or None when there is no record."""
    users = [str(u) for u in user_ids]
    latest = latest_consents(s, users, [purpose])
    return {u: status_in_force(latest, u, purpose, channel) for u in users}


def consent_allows(status: str | None, purpose: str, *, required: bool) -> bool:
    """Whether a send of ``purpose`` may go with consent ``status`` in force.

    >>> consent_allows(None, "marketing", required=True)
    False
    >>> consent_allows(None, "service", required=True)
    True
    >>> consent_allows("revoked", "transactional", required=False)
    False
    """
    if status in ("denied", "revoked"):
        return False
    if purpose == "marketing" and required:
        return status == "granted"
    return True


# -- suppressions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressionEntry:
    """One suppression."""

    subject: str
    channel: str
    kind: str
    reason: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "subject": self.subject,
            "channel": self.channel,
            "kind": self.kind,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }


def address_hash(ws: Any, address: str, channel: str) -> str:
    """The keyed hash of a contact address as suppressions and ``contacts.address_hash``
    hold it: HMAC-SHA-256 under the workspace key of the normalized address — an e-mail
    trimmed and lower-cased, a phone number (sms, whatsapp) reduced to its digits and
    ``+``, anything else (a WeChat openid, a push token) trimmed. For e-mail and phone it
    equals the ``email_hash`` / ``phone_hash`` alias ingest writes."""
    import re

    from liucun.core._hashing import keyed_hash

    text = str(address).strip()
    if channel == "email":
        text = text.lower()
    elif channel in ("sms", "whatsapp"):
        text = re.sub(r"[^0-9+]", "", text)
    if not text:
        raise InvalidInput(f"the address {address!r} is empty once normalized for {channel}")
    return keyed_hash(ws.hash_key, text)


def add_suppression(
    ws: Any, subject: str, *, channel: str = ANY_CHANNEL, kind: str, reason: str | None = None
) -> bool:
    """Suppress ``subject`` (a user id or an address hash) on ``channel``; False when the
    same suppression was already there (nothing written)."""
    if not subject or not str(subject).strip():
        raise InvalidInput("the subject is empty; give a user id or an address hash")
    _check(kind, SUPPRESSION_KINDS, "kind")
    _check_channel(channel)
    with ws.state.write() as s:
        done = s.scalar(
            select(Suppression.id).where(
                Suppression.subject == subject,
                Suppression.channel == channel,
                Suppression.kind == kind,
            )
        )
        if done is not None:
            return False
        s.add(
            Suppression(
                subject=subject,
                channel=channel,
                kind=kind,
                reason=reason,
                at=as_utc(ws.clock.now()),
            )
        )
    return True


def remove_suppression(
    ws: Any, subject: str, *, channel: str | None = None, kind: str | None = None
) -> int:
    """Lift the suppressions of ``subject`` (only on ``channel`` / of ``kind`` when
    given); returns how many were removed."""
    query = delete(Suppression).where(Suppression.subject == subject)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    if kind is not None:
        query = query.where(Suppression.kind == kind)
    with ws.state.write() as s:
        return int(s.execute(query).rowcount or 0)


def list_suppressions(ws: Any, *, subject: str | None = None) -> list[SuppressionEntry]:
    """The suppressions (of one subject), oldest first."""
    query = select(Suppression).order_by(Suppression.at, Suppression.id)
    if subject is not None:
        query = query.where(Suppression.subject == subject)
    with ws.state.read() as s:
        return [
            SuppressionEntry(r.subject, r.channel, r.kind, r.reason, as_utc(r.at))
            for r in s.scalars(query)
        ]


def suppressions_for(s: Session, subjects: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """``subject → [(channel, kind), …]`` for ``subjects``; one query per 900."""
    keys = sorted({str(x) for x in subjects})
    out: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(keys), _CHUNK):
        query = select(Suppression.subject, Suppression.channel, Suppression.kind).where(
            Suppression.subject.in_(keys[start : start + _CHUNK])
        )
        for subject, channel, kind in s.execute(query):
            out.setdefault(subject, []).append((channel, kind))
    for found in out.values():
        found.sort(
            key=lambda ck: SUPPRESSION_KINDS.index(ck[1]) if ck[1] in SUPPRESSION_KINDS else 9
        )
    return out


def _consent(r: ConsentRecord) -> Consent:
    return Consent(
        r.user_id,
        r.purpose,
        r.channel,
        r.status,
        r.source,
        r.proof,
        as_utc(r.at),
        as_utc(r.recorded_at),
    )


# -- import ------------------------------------------------------------------------------

IMPORT_SOURCE = "users.attributes"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class ConsentImport:
    """What :func:`import_consents_from_users` did."""

    users: int
    granted: int
    denied: int
    unchanged: int
    missing: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready."""
        return dict(self.__dict__)


def import_consents_from_users(ws: Any, *, attribute: str = "marketing_opt_in") -> ConsentImport:
    """Record each customer's ``users.attributes.<attribute>`` (true/false) as a granted
    or denied ``marketing`` consent on every channel (``'*'``), source
    ``users.attributes``, dated at the customer's sign-up (else now). A customer whose
    consent in force already has that status adds nothing, so importing twice writes
    nothing, and a later decision (a revocation in the app) is never overridden by an
    older sign-up answer."""
    import json

    users = ws.customers().select("user_id", "attributes", "signup_ts").to_pandas()
    wanted: dict[str, tuple[str, datetime | None]] = {}
    missing = 0
    for user, attrs, signup in users.itertuples(index=False):
        try:
            value = json.loads(attrs).get(attribute) if attrs else None
        except (TypeError, ValueError, AttributeError):
            value = None
        text = str(value).strip().lower() if value is not None else ""
        if text in _TRUE:
            status = "granted"
        elif text in _FALSE:
            status = "denied"
        else:
            missing += 1
            continue
        at = None if signup is None or signup != signup else as_utc(signup.to_pydatetime())
        wanted[str(user)] = (status, at)
    with ws.state.read() as s:
        latest = latest_consents(s, wanted, ["marketing"])
    rows = []
    unchanged = 0
    for user, (status, at) in wanted.items():
        mark = latest.get((user, "marketing", ANY_CHANNEL))
        if mark is not None and (mark[2] == status or (at is not None and mark[0] >= at)):
            unchanged += 1
            continue
        rows.append(
            {
                "user_id": user,
                "purpose": "marketing",
                "channel": ANY_CHANNEL,
                "status": status,
                "source": IMPORT_SOURCE,
                "at": at,
            }
        )
    record_consents(ws, rows)
    granted = sum(r["status"] == "granted" for r in rows)
    return ConsentImport(len(users), granted, len(rows) - granted, unchanged, missing)
