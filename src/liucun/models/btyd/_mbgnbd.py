"""The MBG/NBD model of Batislam, Denizel & Filiztekin (2007).

Like BG/NBD, but a customer may also drop out right after the first (trial) purchase, so
customers without repeats are not assumed alive. Formulas follow BTYDplus (``mbgcnbd``
with ``k = 1``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from liucun.models.btyd._base import (
    Data,
    FloatArray,
    RFTModel,
    nonnegative,
    validate_rft,
)
from liucun.models.btyd._bgnbd import nbd_pmf_terms


class ModifiedBetaGeoModel(RFTModel):
    """MBG/NBD: parameters ``r, alpha`` (purchase rate) and ``a, b`` (dropout)."""

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        return np.array([1.0, 1.0 / self._repeat_rate(data, weights), 1.0, 3.0])

    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, a, b = params
        x, tx, big_t = data["x"], data["tx"], data["T"]
        log_at, log_atx = np.log(alpha + big_t), np.log(alpha + tx)
        p1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        p2 = betaln(a, b + x + 1) - betaln(a, b)
        p3 = -(r + x) * log_at
        p4 = np.log(a) - np.log(b + x) + (r + x) * (log_at - log_atx)
        ll = p1 + p2 + p3 + np.logaddexp(0.0, p4)
        s = expit(p4)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - log_at + s * (log_at - log_atx)
        d_alpha = (
            r / alpha
            - (r + x) / (alpha + big_t)
            + s * (r + x) * (1 / (alpha + big_t) - 1 / (alpha + tx))
        )
        d_a = digamma(a + b) - digamma(a + b + x + 1) + s / a
        d_b = (
            digamma(b + x + 1) - digamma(a + b + x + 1) - digamma(b) + digamma(a + b) - s / (b + x)
        )
        return -ll, -np.column_stack([d_r, d_alpha, d_a, d_b])

    # ---- predictions -----------------------------------------------------------------
    def expected_transactions(self, t: Any) -> FloatArray:
        """Population ``E[X(t)]`` (Batislam et al. 2007)."""
        r, alpha, a, b = self._check_is_fitted()
        t = nonnegative("t", t)
        z = t / (alpha + t)
        return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, z))

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> FloatArray:
        """``P(alive at T | x, t_x, T)``; below 1 even without repeats."""
        r, alpha, a, b = self._check_is_fitted()
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        p4 = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))
        return expit(-p4)

    def conditional_expected_transactions(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> FloatArray:
        """``E[Y(t) | x, t_x, T]``: expected transactions in ``(T, T + t]``."""
        r, alpha, a, b = self._check_is_fitted()
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        t = nonnegative("t", t)
        x, tx, big_t, t = np.broadcast_arrays(x, tx, big_t, t)
        z = t / (alpha + big_t + t)
        head = (a + b + x) / (a - 1)
        body = 1 - np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))) * (
            hyp2f1(r + x, b + x + 1, a + b + x, z)
        )
        return head * body * self.p_alive(x, tx, big_t)

    def p_transactions(self, n: Any, t: Any) -> FloatArray:
        """``P(X(t) = n)`` for a new customer."""
        r, alpha, a, b = self._check_is_fitted()
        n, t = self._counts_at(n, t)
        pmf = nbd_pmf_terms(int(n.max()), r, alpha, t)
        cdf_below = np.cumsum(pmf, axis=0) - pmf
        idx, cols = n.astype(int), np.arange(len(t))
        alive = np.exp(betaln(a, b + n + 1) - betaln(a, b)) * pmf[idx, cols]
        dropped = np.exp(betaln(a + 1, b + n) - betaln(a, b)) * (1 - cdf_below[idx, cols])
        return alive + dropped
