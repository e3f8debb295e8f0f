"""Contact data in an input: found by column name, replaced by its keyed hash.

An e-mail address or a phone number never reaches the warehouse in clear. Where the
value serves as an identity (a users file's ``email`` or ``phone``) it becomes the
``email_hash`` / ``phone_hash`` alias: the keyed hash of the normalized value (e-mail
trimmed and lower-cased; phone reduced to its digits and ``+``), 64 hex digits. Anywhere
else — an events file's extra column in ``properties``, a users file's second e-mail in
``attributes``, any rejected row in ``quarantine.raw`` — it is written as
``"hmac:<the same 64 hex digits>"``, so a stored value can still be matched against an
alias, but not read.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from liucun.core import ConfigError, Hint
from liucun.ingest._parse import text
from liucun.schema import HASH_MARK, ContactKind, contact_kind, is_sensitive
from liucun.warehouse import LINE, hmac_sha256

__all__ = ["contact_columns", "hashed", "marked", "redacted"]


def contact_columns(
    columns: Sequence[str], key: bytes | None, *, source: str
) -> dict[str, ContactKind]:
    """The input columns that hold contact data, with their kind, in input order.

    Raises
    ------
    ConfigError
        There is contact data but no key to hash it with.
    """
    found = {c: kind for c in columns if c != LINE and (kind := contact_kind(c)) is not None}
    if found and key is None:
        raise ConfigError(
            f"{source} holds contact data (column {', '.join(found)}), which is stored only "
            "as a keyed hash, and no hash key was given; pass the workspace's key",
            hint=Hint(option="hash_key", example="ws.hash_key"),
        )
    return found


def normalized(value: ir.Value, kind: ContactKind) -> ir.StringValue:
    """The form that is hashed: a trimmed, lower-cased e-mail; a phone's digits and ``+``."""
    s = text(value)
    if kind == "email":
        return s.lower()
    return s.re_replace(r"[^0-9+]", "").nullif("")


def hashed(value: ir.Value, kind: ContactKind, key: bytes) -> ir.StringValue:
    """The keyed hash (64 hex digits) of a contact value; NULL when there is none."""
    return hmac_sha256(normalized(value, kind), key)


def marked(value: ir.Value, kind: ContactKind, key: bytes) -> ir.StringValue:
    """``"hmac:<hash>"``: how a contact value appears inside JSON text."""
    return ibis.literal(HASH_MARK) + hashed(value, kind, key)


def redacted(
    t: ir.Table, columns: Sequence[str], target: str, key: bytes | None
) -> dict[str, ir.Value]:
    """Replacements for the sensitive ones of ``columns`` of ``t`` (contact data, sensitive
    canonical columns): each one's marked keyed hash, for the quarantine's copy of a
    rejected row."""
    out: dict[str, ir.Value] = {}
    for c in columns:
        if c == LINE or not is_sensitive(target, c):
            continue
        if key is None:  # contact_columns refused this before; a sensitive column: drop it
            out[c] = ibis.null("string")
            continue
        kind = contact_kind(c)
        if kind is not None:
            out[c] = marked(t[c], kind, key)
        else:
            out[c] = ibis.literal(HASH_MARK) + hmac_sha256(text(t[c]), key)
    return out
