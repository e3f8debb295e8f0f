"""Alert delivery through the journeys outbox: e-mail (the SMTP adapter) and Standard
Webhooks (the webhook adapter), to the targets of the alert's level in ``[alerts]``.

Recipients are staff, not customers: each e-mail address gets a contact row of its own
under the id ``staff:<keyed hash>`` (the address itself is stored only encrypted, like a
customer's), and every row is ``purpose = "transactional"``, so quiet hours, frequency
caps and marketing consent do not hold an alert back (suppressions still apply: a
bounced address stops). Keys are stable (``alert:<id>:<event>:email:<staff id>``,
``alert:<id>:<event>:webhook:<channel>``): the SMTP Message-ID and the ``webhook-id``
come from them, so enqueueing twice sends once.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liucun.core import ConfigError, Hint
from liucun.journeys._channels import channel_kind
from liucun.journeys._contacts import _upsert, contact_key, normalize
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import Contact, OutboxMessage

#: The user id of webhook rows (a webhook has no person behind it).
WEBHOOK_USER = "liucun:alerts"
#: What a notification tells: the alert was raised, came back after a snooze, resolved.
EVENTS = ("raised", "reopened", "resolved")
LEVEL_NAMES = {1: "team", 2: "owner", 3: "one-to-one service"}


def staff_id(ws: Any, address: str) -> str:
    """The contact id of a staff e-mail address: ``staff:`` + 24 hex digits of its keyed
    hash (stable per workspace; the address is not readable from it)."""
    return "staff:" + ws.keyed_hash("email:" + normalize("email", address))[:24]


def ensure_staff_contacts(ws: Any, addresses: Iterable[str]) -> dict[str, str]:
    """Store the addresses that have no contact yet (encrypted, one short transaction);
    returns address → staff id."""
    wanted = {a: staff_id(ws, a) for a in dict.fromkeys(addresses)}
    if not wanted:
        return {}
    contact_key(ws)
    with ws.state.read() as s:
        held = set(
            s.scalars(
                select(Contact.user_id).where(
                    Contact.user_id.in_(sorted(set(wanted.values()))), Contact.channel == "email"
                )
            )
        )
    missing = [(uid, "email", a) for a, uid in wanted.items() if uid not in held]
    if missing:
        with ws.state.write() as s:
            _upsert(s, ws, missing, ws.clock.now())
    return wanted


def level_targets(cfg: Any, level: int, scope: str | None) -> tuple[list[str], list[str]]:
    """E-mail addresses and webhook channels of an alert of ``level`` in ``scope``: the
    level's targets, plus for level 2 the owners of the scope's value."""
    targets = {1: cfg.level1, 2: cfg.level2, 3: cfg.level3}[level]
    emails = list(targets.email)
    if level == 2 and scope:
        emails += cfg.owners.get(scope.partition("=")[2], [])
    return list(dict.fromkeys(emails)), list(dict.fromkeys(targets.webhook))


def all_addresses(cfg: Any) -> list[str]:
    """Every e-mail address ``[alerts]`` names for alerts (not the weekly report)."""
    out = [*cfg.level1.email, *cfg.level2.email, *cfg.level3.email]
    for owners in cfg.owners.values():
        out += owners
    return list(dict.fromkeys(out))


def check_webhooks(ws: Any, names: Sequence[str]) -> dict[str, str | None]:
    """Each webhook target's URL; ConfigError for a name without a ``[channels.NAME]``
    of kind webhook."""
    out = {}
    for name in names:
        ch = ws.settings.channels.get(name)
        if ch is None or channel_kind(name, ch) != "webhook":
            raise ConfigError(
                f"the alert target webhook {name!r} needs [channels.{name}] with "
                'kind = "webhook", url = "https://…" and secret = "whsec_…" in liucun.toml',
                hint=Hint(option="webhook", setting="alerts.level1"),
            )
        out[name] = ch.url
    return out


def notify(s: Session, ws: Any, alert: Any, event: str, now: datetime) -> int:
    """Enqueue the e-mails and webhooks telling ``event`` about the alert row ``alert``
    (in the caller's transaction); returns how many rows were added. Staff contacts must
    exist already (:func:`ensure_staff_contacts`)."""
    cfg = ws.settings.alerts
    emails, hooks = level_targets(cfg, int(alert.level), alert.scope)
    urls = check_webhooks(ws, hooks)
    tag = event if event != "reopened" else f"reopened:{now:%Y%m%dT%H%M%SZ}"
    data = alert_dict(alert)
    subject, text, markup = email_content(ws, data, event)
    items = []
    for address in emails:
        uid = staff_id(ws, address)
        items.append(
            Outgoing(
                key=f"alert:{alert.id}:{tag}:email:{uid}",
                user_id=uid,
                channel="email",
                payload={
                    "subject": subject,
                    "body": markup,
                    "text": text,
                    "html": markup,
                    "purpose": "transactional",
                    "timezone": ws.settings.reporting_timezone,
                    "alert_id": alert.id,
                    "locale": "en",
                },
            )
        )
    providers: dict[str, str] = {}
    for name in hooks:
        key = f"alert:{alert.id}:{tag}:webhook:{name}"
        providers[key] = name
        items.append(
            Outgoing(
                key=key,
                user_id=WEBHOOK_USER,
                channel="webhook",
                payload={
                    "body": {"event": f"alert.{event}", "alert": data},
                    "url": urls[name],
                    "purpose": "transactional",
                    "alert_id": alert.id,
                },
            )
        )
    added = enqueue(s, items, now=now)
    for key, name in providers.items():
        # the outbox sends a row through [channels.<provider>]; a new row has none yet
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == key, OutboxMessage.provider.is_(None))
            .values(provider=name)
            .execution_options(synchronize_session=False)
        )
    return added


def alert_dict(a: Any) -> dict[str, Any]:
    """An alert row (or view) as JSON-ready data."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": int(a.id),
        "key": a.key,
        "monitor": a.monitor,
        "level": int(a.level),
        "scope": a.scope,
        "subject": a.subject,
        "message": a.message,
        "value": a.value,
        "baseline": a.baseline,
        "status": a.status,
        "raised_at": iso(a.raised_at),
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": iso(a.acknowledged_at),
        "snoozed_until": iso(a.snoozed_until),
        "resolved_at": iso(a.resolved_at),
    }


def email_content(ws: Any, data: dict[str, Any], event: str) -> tuple[str, str, str]:
    """Subject, text and HTML of the e-mail telling ``event`` about alert ``data``."""
    cfg = ws.settings.alerts
    level = int(data["level"])
    shop = ws.settings.journeys.shop_name
    what = {"raised": "", "reopened": " (snooze over)", "resolved": " resolved"}[event]
    title = data["message"].split(": ")[0].rstrip(".")
    if len(title) > 150:
        title = title[:149] + "…"
    subject = f"[liucun L{level}{what}] {title}"
    if shop:
        subject += f" — {shop}"
    ack = f"liucun alerts ack {data['id']} --by YOUR_NAME"
    snooze = f"liucun alerts snooze {data['id']} --until 24h --by YOUR_NAME"
    lines = [
        ("Resolved: " if event == "resolved" else "") + data["message"],
        "",
        f"Level {level} ({LEVEL_NAMES[level]}), monitor {data['monitor']}, "
        f"scope {data['scope'] or '—'}, alert {data['id']}.",
    ]
    if event != "resolved":
        lines += ["", f"Acknowledge: {ack}", f"Snooze: {snooze}"]
    if cfg.cockpit_url:
        lines += ["", f"Cockpit: {cfg.cockpit_url.rstrip('/')}/alerts/{data['id']}"]
    text = "\n".join(lines)
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in (
            ("level", f"{level} ({LEVEL_NAMES[level]})"),
            ("monitor", data["monitor"]),
            ("scope", data["scope"] or "—"),
            ("subject", data["subject"] or "—"),
            ("value", _fmt(data["value"])),
            ("baseline / target", _fmt(data["baseline"])),
            ("alert", data["id"]),
        )
    )
    body = f"<p>{html.escape(lines[0])}</p><table>{rows}</table>"
    if event != "resolved":
        body += (
            f"<p>Acknowledge: <code>{html.escape(ack)}</code><br>"
            f"Snooze: <code>{html.escape(snooze)}</code></p>"
        )
    if cfg.cockpit_url:
        link = f"{cfg.cockpit_url.rstrip('/')}/alerts/{data['id']}"
        body += f"<p><a href='{html.escape(link)}'>Open in the cockpit</a></p>"
    return subject, text, f"<html><body>{body}</body></html>"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
