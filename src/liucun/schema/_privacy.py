"""Which fields hold contact data, the one kind of data liucun never stores in clear.

Contact data (e-mail addresses, phone numbers) arrives as *input* columns, never as
canonical ones: ingest replaces it by its keyed hash (HMAC-SHA-256 under the workspace
secret) before anything is written — the ``email_hash`` / ``phone_hash`` aliases of a
user, ``"hmac:…"`` values in ``properties`` / ``attributes`` and in the quarantine.

A column is contact data when its name, normalized (lower case, runs of other
characters as ``_``), is one of the names below or ends with ``_`` and one of them,
e.g. ``E-Mail``, ``work_email``, ``Mobile Phone``, ``billing_tel``.

>>> contact_kind("E-Mail"), contact_kind("mobile_phone"), contact_kind("email_hash")
('email', 'phone', None)
"""

from __future__ import annotations

import re
from typing import Literal

from liucun.schema._tables import TABLES

ContactKind = Literal["email", "phone"]

#: Normalized input names that hold an e-mail address.
EMAIL_FIELDS: tuple[str, ...] = ("email", "e_mail", "email_address", "mail", "mail_address")
#: Normalized input names that hold a phone number.
PHONE_FIELDS: tuple[str, ...] = (
    "phone",
    "phone_number",
    "phone_no",
    "mobile",
    "mobile_number",
    "mobile_phone",
    "mobile_no",
    "cellphone",
    "cell_phone",
    "tel",
    "telephone",
    "msisdn",
)

#: The prefix of a keyed hash that stands in for a contact value inside JSON text.
HASH_MARK = "hmac:"

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize_name(name: str) -> str:
    """``'Order Date '`` → ``'order_date'``: lower case, runs of other characters → ``_``."""
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")


def _matches(normal: str, names: tuple[str, ...]) -> bool:
    return any(normal == n or normal.endswith("_" + n) for n in names)


def contact_kind(name: str) -> ContactKind | None:
    """``'email'`` or ``'phone'`` when input column ``name`` holds contact data, else None."""
    normal = normalize_name(name)
    if _matches(normal, EMAIL_FIELDS):
        return "email"
    if _matches(normal, PHONE_FIELDS):
        return "phone"
    return None


def sensitive_columns(table: str) -> tuple[str, ...]:
    """Canonical columns of ``table`` classified ``sensitive`` (stored only as keyed hashes)."""
    return tuple(c.name for c in TABLES[table] if c.sensitivity == "sensitive")


def is_sensitive(table: str, name: str) -> bool:
    """True when field ``name`` of an input for ``table`` must never be stored in clear:
    contact data, or a canonical column classified ``sensitive``."""
    return contact_kind(name) is not None or name in sensitive_columns(table)
