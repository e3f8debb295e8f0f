"""API keys: ``lc_<key_id>.<secret>``, shown once, stored as a keyed hash.

The ``key_id`` is public (it names the key in lists, logs and the audit); the secret is
random (256 bits) and only its HMAC-SHA-256 under the workspace's secret key is kept, so
a copy of the state database does not give working keys. A key carries scopes:

- ``ingest``: post events and users; ``read``: read profiles; ``decide``: ask for the
  next best action; ``loyalty:write``, ``journeys:write``: change loyalty accounts and
  journeys; ``privacy``: consent, export and erasure; ``admin``: everything, and keys.

>>> new = create_key(ws, name="checkout", scopes=["decide"])    # doctest: +SKIP
>>> new.key                                                       # doctest: +SKIP
'lc_3f9a1c0d5e7b2a64.Jq…'
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from liucun.core import ConfigError, Hint, LiucunError
from liucun.state import ApiKey, current_actor, record_audit
from liucun.workspace import Workspace

#: Every scope, in the order the docs list them; ``admin`` implies all the others.
SCOPES = ("ingest", "read", "decide", "loyalty:write", "journeys:write", "privacy", "admin")
ADMIN = "admin"
PREFIX = "lc_"
_ID_BYTES = 8
_SECRET_BYTES = 32


class KeyNotFound(LiucunError, KeyError):
    """No API key has that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class KeyInfo:
    """An API key as stored (never its secret)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    rate_per_s: float | None = None
    burst: int | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """True when the key has ``scope`` (``admin`` has every scope)."""
        return scope in self.scopes or ADMIN in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "rate_per_s": self.rate_per_s,
            "burst": self.burst,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "last_used_at": None if self.last_used_at is None else self.last_used_at.isoformat(),
        }

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyInfo:
        return cls(
            key_id=row.key_id,
            name=row.name,
            scopes=tuple(json.loads(row.scopes)),
            created_at=row.created_at,
            created_by=row.created_by,
            rate_per_s=row.rate_per_s,
            burst=row.burst,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is the only time the full key is available."""

    key: str
    info: KeyInfo


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, de-duplicated in :data:`SCOPES` order; :class:`ConfigError` on an
    unknown one or none at all."""
    given = [s.strip().lower() for s in scopes]
    if not given:
        raise ConfigError(
            f"an API key needs at least one scope; give one of {', '.join(SCOPES)}",
            hint=Hint(option="scope", example="ingest"),
        )
    for scope in given:
        if scope not in SCOPES:
            raise ConfigError(
                f"{scope!r} is not a scope; use one of {', '.join(SCOPES)}",
                hint=Hint(option="scope", example="read"),
            )
    return tuple(s for s in SCOPES if s in given)


def _secret_hash(ws: Workspace, key_id: str, secret: str) -> str:
    return ws.keyed_hash(f"api key {key_id} {secret}")


def parse_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a key of the form ``lc_<key_id>.<secret>``, else None."""
    if not key.startswith(PREFIX) or "." not in key or len(key) > 200:
        return None
    key_id, _, secret = key[len(PREFIX) :].partition(".")
    if not key_id or not secret:
        return None
    return key_id, secret


def secret_matches(ws: Workspace, key_id: str, secret: str, stored_hash: str) -> bool:
    """True when ``secret`` is the secret of key ``key_id`` (constant-time comparison)."""
    return hmac.compare_digest(_secret_hash(ws, key_id, secret), stored_hash)


def create_key(
    ws: Workspace,
    *,
    name: str,
    scopes: Sequence[str],
    rate_per_s: float | None = None,
    burst: int | None = None,
    created_by: str | None = None,
) -> NewKey:
    """Create an API key with ``scopes``; the returned :attr:`NewKey.key` is shown once.

    ``rate_per_s`` and ``burst`` bound its requests (None: ``[serve]`` defaults). The
    creation is audited (who, the key id, name and scopes; never the secret).
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError(
            "an API key needs a name of 1 to 200 characters saying who uses it, e.g. checkout",
            hint=Hint(option="name", example="checkout"),
        )
    chosen = check_scopes(scopes)
    if rate_per_s is not None and not rate_per_s > 0:
        raise ConfigError(
            f"the rate {rate_per_s} is not a positive number of requests per second",
            hint=Hint(option="rate_per_s", example="200"),
        )
    if burst is not None and burst < 1:
        raise ConfigError(
            f"the burst {burst} is not a positive number of requests",
            hint=Hint(option="burst", example="400"),
        )
    key_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    actor = created_by or current_actor()
    now = ws.clock.now()
    row = ApiKey(
        key_id=key_id,
        name=name,
        secret_hash=_secret_hash(ws, key_id, secret),
        scopes=json.dumps(list(chosen)),
        rate_per_s=rate_per_s,
        burst=burst,
        created_at=now,
        created_by=actor,
    )
    with ws.state.write() as session:
        session.add(row)
        session.flush()
        record_audit(
            session,
            at=now,
            actor=actor,
            action="api.key.create",
            target=key_id,
            details={"name": name, "scopes": list(chosen)},
        )
        info = KeyInfo.from_row(row)
    return NewKey(key=f"{PREFIX}{key_id}.{secret}", info=info)


def get_key(ws: Workspace, key_id: str) -> KeyInfo:
    """The key ``key_id``; :class:`KeyNotFound` when there is none."""
    with ws.state.read() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None:
            raise KeyNotFound(_not_found(key_id))
        return KeyInfo.from_row(row)


def key_row(ws: Workspace, key_id: str) -> tuple[KeyInfo, str] | None:
    """The key ``key_id`` and its stored secret hash (for checking a presented key)."""
    with ws.state.read() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        return None if row is None else (KeyInfo.from_row(row), row.secret_hash)


def list_keys(ws: Workspace, *, include_revoked: bool = True) -> list[KeyInfo]:
    """Every API key, oldest first (revoked ones too unless ``include_revoked=False``)."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with ws.state.read() as session:
        return [KeyInfo.from_row(row) for row in session.scalars(query)]


def revoke_key(ws: Workspace, key_id: str, *, revoked_by: str | None = None) -> KeyInfo:
    """Revoke key ``key_id`` (audited); revoking a revoked key changes nothing.

    A running service refuses it at once when revoked through its own API, and within
    ``[serve] key_cache_s`` (default 2 s) when revoked elsewhere (another process, the CLI).
    """
    actor = revoked_by or current_actor()
    now = ws.clock.now()
    with ws.state.write() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None:
            raise KeyNotFound(_not_found(key_id))
        if row.revoked_at is None:
            row.revoked_at = now
            record_audit(
                session, at=now, actor=actor, action="api.key.revoke", target=key_id, details=None
            )
        session.flush()
        return KeyInfo.from_row(row)


def _not_found(key_id: str) -> str:
    shown = key_id if len(key_id) <= 40 else key_id[:39] + "…"
    return f"there is no API key {shown!r}; list the keys with `liucun keys list`"


def record_usage(ws: Workspace, used: dict[str, datetime]) -> int:
    """Set ``last_used_at`` of each key in ``used`` (only ever forward); return how many."""
    if not used:
        return 0
    with ws.state.write() as session:
        rows = session.scalars(select(ApiKey).where(ApiKey.key_id.in_(list(used))))
        n = 0
        for row in rows:
            at = used[row.key_id]
            if row.last_used_at is None or row.last_used_at < at:
                row.last_used_at = at
                n += 1
    return n
