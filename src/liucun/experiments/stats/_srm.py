"""Sample-ratio mismatch: are the arms' unit counts consistent with the configured split?

A chi-square goodness-of-fit test of the observed counts against
``expected_i = total · w_i / Σw``: ``χ² = Σ (o_i − e_i)² / e_i`` on ``k − 1`` degrees of
freedom. A tiny p-value means the assignment or the exposure logging is broken and the
experiment's effects should not be trusted. GrowthBook warns below p = 0.001.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from liucun.core import ConfigError, InvalidInput
from liucun.experiments.stats._codes import NO_UNITS, OK, Reason
from liucun.experiments.stats._core import StrArray, reason, value
from liucun.experiments.stats._inputs import Value, as_array

#: p-value below which a split is flagged as a mismatch (GrowthBook's default).
SRM_THRESHOLD: Final = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Chi-square test of the split; ``mismatch`` is ``p_value < threshold``.

    For scalar-shaped input (one experiment, counts of shape ``(k,)``) the fields are
    floats/bools; for a batch (shape ``(..., k)``) they are arrays. With no units at all
    ``statistic`` and ``p_value`` are ``None``/NaN, ``mismatch`` is false and ``reason``
    is ``"no_units"``.
    """

    statistic: Value
    p_value: Value
    df: int
    expected: NDArray[np.float64]
    mismatch: bool | NDArray[np.bool_]
    reason: Reason | StrArray
    threshold: float


def srm_test(
    counts: ArrayLike, weights: ArrayLike, *, threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Sample-ratio-mismatch test of unit ``counts`` per variant against ``weights``.

    The last axis of ``counts`` indexes variants; ``weights`` (same length, any positive
    scale, e.g. ``[0.5, 0.5]`` or ``[1, 1, 2]``) broadcast against it.

    Examples
    --------
    >>> r = srm_test([5_000, 5_300], [0.5, 0.5])
    >>> round(r.statistic, 4), r.mismatch
    (8.7379, False)
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"threshold must be between 0 and 1 (e.g. 0.001), got {threshold}")
    obs, w = as_array(counts), as_array(weights)
    if obs.ndim == 0 or obs.shape[-1] < 2:
        raise InvalidInput("counts must hold one count per variant (at least two variants)")
    if w.shape[-1:] != obs.shape[-1:]:
        raise InvalidInput(
            f"weights has {w.shape[-1] if w.ndim else 1} entries but counts has "
            f"{obs.shape[-1]} variants; give one weight per variant"
        )
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ConfigError(
            f"every weight must be a positive number, got {w.tolist()}; leave variants "
            "that receive no traffic out of both counts and weights"
        )
    if np.any(~np.isfinite(obs)) or np.any(obs < 0):
        raise InvalidInput(f"counts must be non-negative numbers, got {obs.tolist()}")
    total = obs.sum(axis=-1, keepdims=True)
    expected = total * w / w.sum(axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        stat = np.sum((obs - expected) ** 2 / expected, axis=-1)
    df = obs.shape[-1] - 1
    p = special.chdtrc(df, stat)
    has = total[..., 0] > 0
    scalar = obs.ndim == 1
    code = np.where(has, OK, NO_UNITS).astype(np.str_)
    mismatch = has & (np.nan_to_num(p, nan=1.0) < threshold)
    return SRMResult(
        statistic=value(stat, has, scalar),
        p_value=value(p, has, scalar),
        df=df,
        expected=np.broadcast_to(expected, obs.shape).copy(),
        mismatch=bool(mismatch) if scalar else mismatch,
        reason=reason(code, scalar),
        threshold=threshold,
    )
