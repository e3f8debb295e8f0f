"""Vectorised string building: ids, hex digests and JSON objects, without row loops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def numbered(
    prefix: str, numbers: np.ndarray, width: int, *, mask: np.ndarray | None = None
) -> pa.Array:
    """``prefix`` + zero-padded ``numbers``, e.g. ``U00000042``; null where ``mask``."""
    values = pa.array(numbers, type=pa.int64(), mask=mask)
    digits = pc.utf8_lpad(pc.cast(values, pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def hex_strings(raw: np.ndarray) -> pa.Array:
    """Lower-case hex text of each row of a ``(n, k)`` uint8 array (``2k`` characters)."""
    n, k = raw.shape
    out = np.empty((n, 2 * k), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(n + 1, dtype=np.int32) * (2 * k)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))


def choose(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """The label of each integer code (codes < 0 become null)."""
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pa.array(list(labels), type=pa.string()).take(indices)


def number_text(
    values: np.ndarray, decimals: int | None = None, *, mask: np.ndarray | None = None
) -> pa.Array:
    """JSON number text for floats (rounded to ``decimals``) or integers; null where ``mask``."""
    if decimals is not None:
        values = np.round(values, decimals)
    return pc.cast(pa.array(values, mask=mask), pa.string())


def quoted(values: pa.Array) -> pa.Array:
    """JSON string literal of plain text values (the caller guarantees no quotes)."""
    return pc.binary_join_element_wise('"', values, '"', "")


def json_object(fields: Sequence[tuple[str, pa.Array | str]], n: int) -> pa.Array:
    """JSON objects of ``n`` rows from ``(key, value_text)`` pairs.

    ``value_text`` is already JSON (use :func:`quoted` / :func:`number_text`); a plain
    ``str`` is a constant for every row. A null value omits its key on that row, so
    optional keys go after the first key, which must always be present.
    """
    parts: list[pa.Array | str] = []
    for position, (key, value) in enumerate(fields):
        sep = "{" if position == 0 else ","
        if isinstance(value, str):
            parts.append(f'{sep}"{key}":{value}')
        elif value.null_count and position > 0:
            frag = pc.binary_join_element_wise(f',"{key}":', value, "")
            parts.append(pc.fill_null(frag, ""))
        else:
            parts.extend([f'{sep}"{key}":', value])
    parts.append("}" if fields else "{}")
    if all(isinstance(p, str) for p in parts):
        return pa.array(["".join(str(p) for p in parts)] * n, type=pa.string())
    return pc.binary_join_element_wise(*parts, "")
