"""The BG/NBD model of Fader, Hardie & Lee (2005), "Counting your customers the easy way".

While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
after each repeat purchase they drop out with probability ``p ~ Beta(a, b)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from liucun.models.btyd._base import (
    Data,
    FloatArray,
    RFTModel,
    nonnegative,
    validate_rft,
)


def nbd_pmf_terms(n_max: int, r: float, alpha: float, t: FloatArray) -> FloatArray:
    """``P(N(t) = j)`` under the NBD (Poisson, Gamma(r, alpha) rate) for j = 0..n_max.

    Returns shape ``(n_max + 1, len(t))``.
    """
    j = np.arange(n_max + 1, dtype=np.float64)[:, None]
    log_p = (
        gammaln(r + j)
        - gammaln(r)
        - gammaln(j + 1)
        + r * np.log(alpha / (alpha + t))
        + j * np.log(np.where(t > 0, t / (alpha + t), 1.0))
    )
    out = np.exp(log_p)
    return np.where((t > 0) | (j == 0), out, 0.0)


class BetaGeoModel(RFTModel):
    """BG/NBD: Pareto/NBD's "easy" sibling with dropout after each repeat purchase.

    Parameters
    ----------
    penalizer, max_iter, tol
        See :class:`LikelihoodModel`.

    Examples
    --------
    >>> m = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> round(float(m.conditional_expected_transactions(39, 2, 30.43, 38.86)[0]), 3)
    1.226
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        return np.array([1.0, 1.0 / self._repeat_rate(data, weights), 1.0, 3.0])

    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, a, b = params
        x, tx, big_t = data["x"], data["tx"], data["T"]
        ux, inv = _unique_frequencies(data)
        # Terms that depend on the data only through x: computed once per distinct x.
        a1 = (gammaln(r + ux) - gammaln(r))[inv] + r * np.log(alpha)
        a2 = (betaln(a, b + ux) - betaln(a, b))[inv]
        d_r = (digamma(r + ux) - digamma(r))[inv] + np.log(alpha)
        d_ab = (digamma(a + b) - digamma(a + b + ux))[inv]
        d_bx = (digamma(b + ux) - digamma(b))[inv]
        rep = x > 0
        bx1 = np.where(rep, b + x - 1, 1.0)
        rx = r + x
        log_at, log_atx = np.log(alpha + big_t), np.log(alpha + tx)
        a3 = -rx * log_at
        a4 = np.where(rep, np.log(a) - np.log(bx1) - rx * log_atx, -np.inf)
        top = np.maximum(a3, a4)
        e3, e4 = np.exp(a3 - top), np.exp(a4 - top)
        total = e3 + e4
        ll = a1 + a2 + top + np.log(total)
        w3, w4 = e3 / total, e4 / total
        grad = np.empty((x.size, 4))
        grad[:, 0] = d_r - w3 * log_at - w4 * log_atx
        grad[:, 1] = r / alpha - rx * (w3 / (alpha + big_t) + w4 / (alpha + tx))
        grad[:, 2] = d_ab + w4 / a
        grad[:, 3] = d_ab + d_bx - w4 / bx1
        return -ll, -grad

    # ---- predictions -----------------------------------------------------------------
    def expected_transactions(self, t: Any) -> FloatArray:
        """Population ``E[X(t)]``: expected repeat transactions of a new customer in ``t``."""
        r, alpha, a, b = self._check_is_fitted()
        t = nonnegative("t", t)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def _log_dead_odds(self, x: FloatArray, tx: FloatArray, big_t: FloatArray) -> FloatArray:
        r, alpha, a, b = self._check_is_fitted()
        rep = x > 0
        bx1 = np.where(rep, b + x - 1, 1.0)
        return np.where(
            rep,
            np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx)),
            -np.inf,
        )

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> FloatArray:
        """``P(alive at T | x, t_x, T)``; exactly 1 for customers without repeats."""
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        return 1.0 / (1.0 + np.exp(self._log_dead_odds(x, tx, big_t)))

    def conditional_expected_transactions(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> FloatArray:
        """``E[Y(t) | x, t_x, T]``: expected transactions in ``(T, T + t]`` (FHL 2005, eq. 10)."""
        r, alpha, a, b = self._check_is_fitted()
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        t = nonnegative("t", t)
        x, tx, big_t, t = np.broadcast_arrays(x, tx, big_t, t)
        z = t / (alpha + big_t + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))) * (
            hyp2f1(r + x, b + x, a + b + x - 1, z)
        )
        return head * body * self.p_alive(x, tx, big_t)

    def p_transactions(self, n: Any, t: Any) -> FloatArray:
        """``P(X(t) = n)`` for a new customer (FHL 2005, eq. 8)."""
        r, alpha, a, b = self._check_is_fitted()
        n, t = self._counts_at(n, t)
        n_max = int(n.max())
        pmf = nbd_pmf_terms(n_max, r, alpha, t)  # (n_max+1, m)
        cdf_below = np.cumsum(pmf, axis=0) - pmf  # sum_{j<n}
        idx = n.astype(int)
        cols = np.arange(len(t))
        first = np.exp(betaln(a, b + n) - betaln(a, b)) * pmf[idx, cols]
        second = np.where(
            n > 0,
            np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (1 - cdf_below[idx, cols]),
            0.0,
        )
        return first + second


def _unique_frequencies(data: Data) -> tuple[FloatArray, np.ndarray]:
    """Distinct frequencies and each row's index into them, cached in ``data`` for a fit."""
    cache = cast("dict[str, Any]", data)  # the fit's own dict, reused for every evaluation
    if "_ux" not in cache:
        cache["_ux"], cache["_inv"] = np.unique(cache["x"], return_inverse=True)
    return cache["_ux"], cache["_inv"]
