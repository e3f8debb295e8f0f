"""Multiple-comparison corrections across the metrics and variants of an experiment.

- **Holm** (family-wise error rate): sort the m p-values, ``p̃_(i) = max_{j≤i}
  min(1, (m − j + 1)·p_(j))``.
- **Benjamini–Hochberg** (false discovery rate): ``p̃_(i) = min_{j≥i} min(1, m/j·p_(j))``.

Both work along the last axis, so a grid of experiments × metrics is corrected per
experiment in one call. Missing p-values (NaN, e.g. from a result whose reason is not
``"ok"``) are left out of the family and stay NaN. The adjusted values equal
statsmodels' ``multipletests(method="holm" | "fdr_bh")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liucun.core import ConfigError, InvalidInput
from liucun.experiments.stats._frequentist import check_alpha
from liucun.experiments.stats._inputs import FloatArray, as_array

Correction = Literal["holm", "bh"]


@dataclass(frozen=True)
class CorrectionResult:
    """Adjusted p-values (same shape as the input) and which hypotheses are rejected."""

    p_adjusted: FloatArray
    reject: NDArray[np.bool_]
    method: Correction
    alpha: float


def holm(p_values: ArrayLike, *, alpha: float = 0.05) -> CorrectionResult:
    """Holm's step-down correction (controls the family-wise error rate)."""
    return adjust_p_values(p_values, method="holm", alpha=alpha)


def benjamini_hochberg(p_values: ArrayLike, *, alpha: float = 0.05) -> CorrectionResult:
    """Benjamini–Hochberg step-up correction (controls the false discovery rate)."""
    return adjust_p_values(p_values, method="bh", alpha=alpha)


def adjust_p_values(
    p_values: ArrayLike, *, method: Correction, alpha: float = 0.05
) -> CorrectionResult:
    """Adjust ``p_values`` along the last axis with ``method`` (``"holm"`` or ``"bh"``)."""
    check_alpha(alpha)
    if method not in ("holm", "bh"):
        raise ConfigError(f"method must be 'holm' or 'bh' (Benjamini–Hochberg), got {method!r}")
    p = as_array(p_values)
    if p.ndim == 0:
        p = p[None]
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise InvalidInput("p-values must lie in [0, 1]")
    order = np.argsort(np.where(finite, p, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(np.where(finite, p, np.inf), order, axis=-1)
    m = finite.sum(axis=-1, keepdims=True).astype(np.float64)
    rank = np.arange(1, p.shape[-1] + 1, dtype=np.float64)
    with np.errstate(all="ignore"):
        if method == "holm":
            scaled = np.where(rank <= m, (m - rank + 1.0) * ranked, -np.inf)
            adj = np.maximum.accumulate(scaled, axis=-1)
        else:
            scaled = np.where(rank <= m, m / rank * ranked, np.inf)
            adj = np.flip(np.minimum.accumulate(np.flip(scaled, -1), axis=-1), -1)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, np.minimum(adj, 1.0), axis=-1)
    out = np.where(finite, out, np.nan)
    shape = np.shape(p_values)
    out = out.reshape(shape) if shape else out
    return CorrectionResult(
        p_adjusted=out,
        reject=np.nan_to_num(out, nan=1.0) <= alpha,
        method=method,
        alpha=alpha,
    )
