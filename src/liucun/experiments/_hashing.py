"""Deterministic buckets: GrowthBook's hash (version 2), vectorized over unit ids.

``bucket(seed, id) = (fnv1a32(str(fnv1a32(seed + id))) mod 10,000) / 10,000`` with the
32-bit FNV-1a hash over the Unicode code points of the text, as GrowthBook's Python SDK
computes it. It depends on nothing but the text (never on Python's salted ``hash()``,
the process or the platform), and a unit gets the same bucket in liucun as in a
GrowthBook SDK given the same seed and id. The loop runs over character positions, with
numpy doing all ids at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liucun.core import InvalidInput

#: Buckets per hash: a unit's bucket is a multiple of 1/BUCKETS in [0, 1).
BUCKETS = 10_000
_OFFSET = np.uint32(0x811C9DC5)
_PRIME = np.uint32(0x01000193)
_CHUNK = 250_000

UnitIds: TypeAlias = (
    Sequence[str] | pa.Array | pa.ChunkedArray | NDArray[np.str_] | NDArray[np.object_]
)


def _step(h: NDArray[np.uint32], code: NDArray[np.uint32] | np.uint32) -> NDArray[np.uint32]:
    with np.errstate(over="ignore"):
        return (h ^ code) * _PRIME  # uint32 arithmetic wraps modulo 2³², as FNV wants


def _fnv_text(text: str) -> np.uint32:
    """FNV-1a of one text (the seed), as the starting state for every id."""
    h = np.array([_OFFSET], dtype=np.uint32)
    for ch in text:
        h = _step(h, np.uint32(ord(ch)))
    return h[0]


def _fnv_codes(
    start: np.uint32, codes: NDArray[np.uint32], lengths: NDArray[np.int64]
) -> NDArray[np.uint32]:
    """Continue FNV-1a from ``start`` over each row of code points (``lengths`` used)."""
    h = np.full(codes.shape[0], start, dtype=np.uint32)
    for j in range(codes.shape[1]):
        h = np.where(j < lengths, _step(h, codes[:, j]), h)
    return h


def _fnv_decimal(n: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """FNV-1a of the decimal text of each number (``str(n)``), without making strings."""
    h = np.full(n.shape, _OFFSET, dtype=np.uint32)
    wide = n.astype(np.int64)
    for k in range(9, -1, -1):
        power = 10**k
        digit = ((wide // power) % 10 + 48).astype(np.uint32)
        h = np.where((wide >= power) | (k == 0), _step(h, digit), h)
    return h


def as_unit_ids(units: UnitIds) -> NDArray[np.str_]:
    """Unit ids as a numpy string array; refuses missing ids."""
    if isinstance(units, pa.ChunkedArray):
        units = units.combine_chunks()
    if isinstance(units, pa.Array):
        values = units.to_numpy(zero_copy_only=False)
    else:
        values = np.asarray(units, dtype=object)
    if values.ndim != 1:
        raise InvalidInput("unit ids must be a flat list")
    missing = sum(v is None for v in values)
    if missing:
        raise InvalidInput(
            f"{missing} unit ids are None; every unit needs an id (drop anonymous units or "
            "assign them by their anonymous_id)"
        )
    return values.astype(np.str_) if values.size else np.array([], dtype=np.str_)


def buckets(seed: str, units: NDArray[np.str_]) -> NDArray[np.float64]:
    """GrowthBook v2 bucket in [0, 1) of every unit id under ``seed``."""
    start = _fnv_text(seed)
    out = np.empty(units.size, dtype=np.float64)
    for lo in range(0, units.size, _CHUNK):
        part = units[lo : lo + _CHUNK]
        width = max(part.dtype.itemsize // 4, 1)
        codes = np.ascontiguousarray(part, dtype=f"<U{width}").view(np.uint32)
        codes = codes.reshape(part.size, width)
        lengths = np.strings.str_len(part).astype(np.int64)
        first = _fnv_codes(start, codes, lengths)
        out[lo : lo + _CHUNK] = (_fnv_decimal(first) % BUCKETS).astype(np.float64) / BUCKETS
    return out
