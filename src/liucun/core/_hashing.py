"""Keyed hashes of identifiers (HMAC-SHA-256 under a per-workspace secret).

An unsalted hash of a phone number is reversible by trying every number; a keyed hash
is not without the key, which stays outside the warehouse (``secret.key``, mode 0600,
or ``LIUCUN_SECRET_KEY``).

>>> keyed_hash(b"k" * 32, "ann@example.com")[:16]
'52ecd7806231652c'
"""

from __future__ import annotations

import hashlib
import hmac

#: SHA-256's block size: HMAC pads the key to it.
BLOCK = 64
_CHECK = b"liucun key check v1"


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA-256 of ``value`` (UTF-8) under ``key``, as 64 hex digits."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys, for engines that compute it from SHA-256:
    ``HMAC(k, m) = sha256(outer || sha256(inner || m))``."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_fingerprint(key: bytes) -> str:
    """A fingerprint that tells keys apart without revealing them."""
    return hmac.new(key, _CHECK, hashlib.sha256).hexdigest()[:32]
