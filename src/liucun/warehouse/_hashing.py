"""Keyed hashes (HMAC-SHA-256) computed column-wise by the ingest engine.

DuckDB has SHA-256 but no HMAC. HMAC is two SHA-256 passes over the padded key
(RFC 2104), ``HMAC(k, m) = sha256(outer || sha256(inner || m))``, with the pads from
:func:`liucun.core.hmac_pads`; DuckDB's ``sha256`` accepts a BLOB, so the result equals
:func:`liucun.core.keyed_hash` bit for bit (tests check it with arbitrary Unicode text).

The pads are derived from the workspace secret: they appear as literals in the query
text held in memory, never in a stored table or view.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from liucun.core._hashing import hmac_pads

__all__ = ["hmac_sha256"]


@ibis.udf.scalar.builtin(name="sha256")
def _sha256(value: dt.binary) -> str:  # type: ignore[empty-body,valid-type]
    """SHA-256 of the bytes ``value``, as 64 lower-case hex digits."""


@ibis.udf.scalar.builtin(name="unhex")
def _unhex(value: str) -> dt.binary:  # type: ignore[empty-body,valid-type]
    """The bytes that the hex digits ``value`` spell."""


@ibis.udf.scalar.builtin(name="encode")
def _utf8(value: str) -> dt.binary:  # type: ignore[empty-body,valid-type]
    """The UTF-8 bytes of ``value``."""


@ibis.udf.scalar.builtin(name="concat")
def _concat(a: dt.binary, b: dt.binary) -> dt.binary:  # type: ignore[empty-body,valid-type]
    """``a`` followed by ``b``."""


def hmac_sha256(value: ir.StringValue, key: bytes) -> ir.StringValue:
    """HMAC-SHA-256 of ``value`` (UTF-8) under ``key``, as 64 hex digits; NULL stays NULL.

    Examples
    --------
    >>> from liucun.core._hashing import keyed_hash
    >>> t = ibis.memtable({"v": ["ann@example.com"]})
    >>> con = ibis.duckdb.connect()
    >>> con.execute(t.select(h=hmac_sha256(t.v, b"k" * 32))).h[0] == keyed_hash(
    ...     b"k" * 32, "ann@example.com")
    True
    """
    inner, outer = hmac_pads(key)
    first = _sha256(_concat(ibis.literal(inner, type="binary"), _utf8(value)))
    digest = _sha256(_concat(ibis.literal(outer, type="binary"), _unhex(first)))
    return ibis.ifelse(value.isnull(), ibis.null("string"), digest)
