"""Contact addresses for delivery, encrypted at rest.

An address (e-mail, phone, push token, WeChat openid, WhatsApp number) is stored only as
AES-256-GCM ciphertext under a key derived (HKDF-SHA-256) from the workspace secret
(``ws.hash_key``) or from ``LIUCUN_CONTACT_KEY`` (hex, at least 32 digits) when set, with
the customer and channel as associated data (a ciphertext moved to another row does not
decrypt). ``address_hash`` is the keyed hash of the normalized address (e-mail trimmed and
lower-cased, phone reduced to digits and ``+``: the same form ingestion hashes), so an
address can be looked up or suppressed without being read. Addresses are decrypted in
memory at send time and never logged.
"""

from __future__ import annotations

import base64
import csv
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from liucun.core import ConfigError, InvalidInput
from liucun.state import Contact

#: Environment variable holding a contact key of its own (else: the workspace secret).
CONTACT_KEY_ENV = "LIUCUN_CONTACT_KEY"
_INFO = b"liucun contacts v1"
_PREFIX = "v1:"
#: Import columns → the channel the address is for.
COLUMNS: dict[str, str] = {
    "email": "email",
    "phone": "sms",
    "push_token": "push",
    "wechat_openid": "wechat",
    "whatsapp": "whatsapp",
}
CONTACT_CHANNELS: tuple[str, ...] = tuple(COLUMNS.values())
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHUNK = 500


def contact_key(ws: Any) -> bytes:
    """The contact encryption key of ``ws`` (derived once, then cached on it). Call it
    before opening a state write transaction: the workspace secret is checked against
    state on first use, which needs a transaction of its own."""
    cached = getattr(ws, "_liucun_contact_key", None)
    if cached is not None:
        return cached
    material = os.environ.get(CONTACT_KEY_ENV)
    if material:
        try:
            secret = bytes.fromhex(material.strip())
        except ValueError:
            secret = b""
        if len(secret) < 16:
            raise ConfigError(
                f"{CONTACT_KEY_ENV} is not at least 32 hex digits; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
    else:
        secret = ws.hash_key
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    ws._liucun_contact_key = key
    return key


def normalize(channel: str, address: str) -> str:
    """The form that is hashed: a trimmed, lower-cased e-mail; a phone's digits and
    ``+`` (sms, whatsapp); other addresses trimmed.

    >>> normalize("email", "  Li.Wei@Example.CN "), normalize("sms", "+86 138-0013-8000")
    ('li.wei@example.cn', '+8613800138000')
    """
    text = str(address).strip()
    if channel == "email":
        return text.lower()
    if channel in ("sms", "whatsapp"):
        return re.sub(r"[^0-9+]", "", text)
    return text


def check_address(channel: str, address: str) -> str | None:
    """Why ``address`` cannot be used on ``channel`` (None: it can)."""
    value = normalize(channel, address)
    if not value:
        return "is empty"
    if channel == "email" and not _EMAIL.match(value):
        return "is not an e-mail address (name@domain)"
    if channel in ("sms", "whatsapp") and len(value.lstrip("+")) < 6:
        return "is not a phone number (at least 6 digits, e.g. +8613800138000)"
    return None


def _aad(user_id: str, channel: str) -> bytes:
    return f"{user_id}\x1f{channel}".encode()


def encrypt(ws: Any, user_id: str, channel: str, address: str) -> str:
    """``address`` encrypted for the row (user, channel): ``v1:`` + base64."""
    nonce = os.urandom(12)
    sealed = AESGCM(contact_key(ws)).encrypt(nonce, address.encode("utf-8"), _aad(user_id, channel))
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt(ws: Any, user_id: str, channel: str, token: str) -> str:
    """The address in ``token`` (ConfigError: another key, or a tampered row)."""
    if not token.startswith(_PREFIX):
        raise ConfigError(f"the contact of {user_id} on {channel} is not in a known format")
    raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
    try:
        plain = AESGCM(contact_key(ws)).decrypt(raw[:12], raw[12:], _aad(user_id, channel))
    except InvalidTag:
        raise ConfigError(
            f"the contact of {user_id} on {channel} does not decrypt with this workspace's "
            f"key; restore the secret key (or {CONTACT_KEY_ENV}) it was stored with"
        ) from None
    return plain.decode("utf-8")


def address_hash(ws: Any, channel: str, address: str) -> str:
    """The keyed hash of the normalized address (64 hex digits)."""
    return ws.keyed_hash(normalize(channel, address))


def _check_channel(channel: str) -> None:
    if channel not in CONTACT_CHANNELS:
        raise ConfigError(
            f"{channel!r} is not a channel with addresses; use one of "
            f"{', '.join(CONTACT_CHANNELS)} (webhook and in_app need none)"
        )


def set_contact(ws: Any, user_id: str, channel: str, address: str) -> None:
    """Store (or replace) ``user_id``'s address on ``channel``, encrypted."""
    _check_channel(channel)
    problem = check_address(channel, address)
    if problem is not None:
        raise InvalidInput(f"the {channel} address given for {user_id} {problem}")
    contact_key(ws)
    with ws.state.write() as s:
        _upsert(s, ws, [(str(user_id), channel, address.strip())], ws.clock.now())


def contact_for(ws: Any, user_id: str, channel: str) -> str | None:
    """``user_id``'s address on ``channel``, decrypted (None: there is none)."""
    contact_key(ws)
    with ws.state.read() as s:
        return contacts_for(s, ws, [(user_id, channel)]).get((user_id, channel))


def contacts_for(
    s: Session,
    ws: Any,
    pairs: Iterable[tuple[str, str]],
    errors: dict[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], str]:
    """The addresses of ``(user_id, channel)`` pairs that have one, decrypted. With
    ``errors``, an address that does not decrypt is put there (the sentence) instead of
    raising."""
    wanted = set(pairs)
    users = sorted({u for u, _ in wanted})
    out: dict[tuple[str, str], str] = {}
    for start in range(0, len(users), _CHUNK):
        chunk = users[start : start + _CHUNK]
        for row in s.scalars(select(Contact).where(Contact.user_id.in_(chunk))):
            pair = (row.user_id, row.channel)
            if pair not in wanted:
                continue
            try:
                out[pair] = decrypt(ws, row.user_id, row.channel, row.address_encrypted)
            except ConfigError as exc:
                if errors is None:
                    raise
                errors[pair] = str(exc)
    return out


def find_by_address(ws: Any, channel: str, address: str) -> list[str]:
    """The customers whose ``channel`` address is ``address`` (by keyed hash)."""
    contact_key(ws)
    digest = address_hash(ws, channel, address)
    with ws.state.read() as s:
        return sorted(
            s.scalars(
                select(Contact.user_id).where(
                    Contact.channel == channel, Contact.address_hash == digest
                )
            )
        )


def _upsert(s: Session, ws: Any, rows: list[tuple[str, str, str]], now: Any) -> int:
    """Insert or replace ``(user_id, channel, address)`` rows (the last one of a pair wins)."""
    latest = {(u, c): a for u, c, a in rows}
    users = sorted({u for u, _ in latest})
    held: dict[tuple[str, str], Contact] = {}
    for start in range(0, len(users), _CHUNK):
        chunk = users[start : start + _CHUNK]
        for row in s.scalars(select(Contact).where(Contact.user_id.in_(chunk))):
            held[(row.user_id, row.channel)] = row
    for (user_id, channel), address in latest.items():
        token = encrypt(ws, user_id, channel, address)
        digest = address_hash(ws, channel, address)
        found = held.get((user_id, channel))
        if found is None:
            s.add(
                Contact(
                    user_id=user_id,
                    channel=channel,
                    address_encrypted=token,
                    address_hash=digest,
                    updated_at=now,
                )
            )
        else:
            found.address_encrypted, found.address_hash, found.updated_at = token, digest, now
    s.flush()
    return len(latest)


@dataclass(frozen=True)
class Rejected:
    """A value of the input that was not stored: its ``line`` (1 = the header), column
    and why (never the value itself)."""

    line: int
    column: str
    reason: str


@dataclass(frozen=True)
class ContactImport:
    """What :func:`import_contacts` did: input ``rows``, addresses ``stored`` (per
    channel) and the values ``rejected``."""

    rows: int
    stored: dict[str, int]
    rejected: list[Rejected] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "stored": dict(self.stored),
            "stored_total": sum(self.stored.values()),
            "rejected": [r.__dict__ for r in self.rejected],
        }


def _read(path: Path) -> pa.Table:
    suffixes = [s.lower() for s in path.suffixes]
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist; give the path of a CSV or Parquet file")
    if ".parquet" in suffixes:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return pa.table({n: table[n].cast(pa.string()) for n in table.column_names})
    if ".csv" not in suffixes:
        raise InvalidInput(f"{path} is neither .csv nor .parquet; export the contacts as one")
    import pyarrow.csv as pcsv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise InvalidInput(f"{path} is empty; it needs a header with user_id and an address")
    header = [h.strip() for h in header]
    return pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(column_names=header, skip_rows=1),
        convert_options=pcsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True
        ),
    )


def import_contacts(ws: Any, file: Path | str) -> ContactImport:
    """Store the addresses in ``file`` (CSV or Parquet: ``user_id`` plus any of
    ``email``, ``phone`` (SMS), ``push_token``, ``wechat_openid``, ``whatsapp``),
    encrypted; an empty cell is skipped, an unusable one rejected with its line."""
    path = Path(file)
    table = _read(path)
    columns = [c for c in table.column_names if c in COLUMNS]
    if "user_id" not in table.column_names or not columns:
        raise InvalidInput(
            f"{path} needs a user_id column and at least one of {', '.join(COLUMNS)}; "
            f"it has {', '.join(table.column_names) or 'no columns'}"
        )
    users = table["user_id"].to_pylist()
    values = {c: table[c].to_pylist() for c in columns}
    rows: list[tuple[str, str, str]] = []
    rejected: list[Rejected] = []
    for i, user in enumerate(users):
        line = i + 2
        if user is None or not str(user).strip():
            if any(values[c][i] for c in columns):
                rejected.append(Rejected(line, "user_id", "is empty; every row needs user_id"))
            continue
        for c in columns:
            value = values[c][i]
            if value is None or not str(value).strip():
                continue
            channel = COLUMNS[c]
            problem = check_address(channel, value)
            if problem is not None:
                rejected.append(Rejected(line, c, problem))
                continue
            rows.append((str(user).strip(), channel, str(value).strip()))
    stored: dict[str, int] = {}
    now = ws.clock.now()
    contact_key(ws)
    with ws.state.write() as s:
        for start in range(0, len(rows), 5000):
            _upsert(s, ws, rows[start : start + 5000], now)
    for (_, channel), _ in {(u, c): a for u, c, a in rows}.items():
        stored[channel] = stored.get(channel, 0) + 1
    ws.audit(
        "contacts.import",
        target=path.name,
        rows=len(users),
        stored=sum(stored.values()),
        rejected=len(rejected),
    )
    return ContactImport(rows=len(users), stored=stored, rejected=rejected)
