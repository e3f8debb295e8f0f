"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

Purchase rate ``lambda ~ Gamma(r, alpha)``, exponential lifetime with ``mu ~ Gamma(s,
beta)``. The likelihood is evaluated in the form of Fader & Hardie (2005), "A note on
deriving the Pareto/NBD model and related expressions", with the Gauss hypergeometric
function 2F1 on the branch that keeps its argument in ``[0, 1)`` (split on ``alpha >=
beta``), all in log space.

The gradient uses the equivalent integral over the death time,
``s * int_{t_x}^{T} (alpha + tau)^{-(r+x)} (beta + tau)^{-(s+1)} dtau``, whose parameter
derivatives are expectations under the normalised integrand; those are computed with
composite Gauss-Legendre quadrature on ``v = log(min(alpha, beta) + tau)``, where the
integrand is smooth, and are accurate to near machine precision.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1, logsumexp

from liucun.models.btyd._base import (
    Data,
    FloatArray,
    RFTModel,
    nonnegative,
    validate_rft,
)

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_PANELS = 8


def _log_quadrature_grid(
    lower: FloatArray, upper: FloatArray, shift: float
) -> tuple[FloatArray, FloatArray]:
    """Nodes ``tau`` (n, K) and log weights for ``int_lower^upper d tau``.

    Composite Gauss-Legendre on ``v = log(shift + tau)``; the log weights include the
    Jacobian ``e^v``. Empty intervals get weight ``-inf``.
    """
    v0 = np.log(shift + lower)[:, None]
    v1 = np.log(shift + upper)[:, None]
    width = (v1 - v0) / _PANELS
    panel = np.arange(_PANELS)[:, None]
    u = ((panel + 0.5) + 0.5 * _GL_NODES[None, :]).ravel()  # in panel units
    w = np.tile(0.5 * _GL_WEIGHTS, _PANELS)
    v = v0 + width * u[None, :]
    with np.errstate(divide="ignore"):
        log_w = np.log(width) + np.log(w)[None, :] + v
    tau = np.maximum(np.exp(v) - shift, 0.0)
    return tau, log_w


def log_hyp2f1_series(
    a: float, b: FloatArray, c: FloatArray, z: FloatArray, terms: int = 4000
) -> FloatArray:
    """``log 2F1(a, b; c; z)`` by direct summation in log space (for tests; ``0 <= z < 1``)."""
    a_, b_, c_, z_ = np.broadcast_arrays(
        np.asarray(a, float), np.asarray(b, float), np.asarray(c, float), np.asarray(z, float)
    )
    k = np.arange(terms, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore"):
        log_terms = (
            gammaln(a_ + k)
            - gammaln(a_)
            + gammaln(b_ + k)
            - gammaln(b_)
            - gammaln(c_ + k)
            + gammaln(c_)
            - gammaln(k + 1)
            + k * np.log(z_)
        )
    log_terms = np.where((k == 0), 0.0, log_terms)
    return logsumexp(log_terms, axis=0)


class ParetoNBDModel(RFTModel):
    """Pareto/NBD: parameters ``r, alpha`` (purchase rate) and ``s, beta`` (lifetime)."""

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        mean_t = float(weights @ data["T"]) / float(weights.sum())
        return np.array([1.0, 1.0 / self._repeat_rate(data, weights), 1.0, max(mean_t, 1e-3)])

    # ---- likelihood pieces -----------------------------------------------------------
    @staticmethod
    def _log_death_integral(
        params: FloatArray, x: FloatArray, tx: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        """``log(s * int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau)`` via 2F1.

        Fader & Hardie (2005), eqs. (22)-(23): the term ``s/(r+s+x) * A_0``.
        """
        r, alpha, s, beta = params
        rsx = r + s + x
        if alpha >= beta:
            big, b_arg = alpha, s + 1
        else:
            big, b_arg = beta, r + x
        diff = abs(alpha - beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1 = np.log(hyp2f1(rsx, b_arg, rsx + 1, diff / (big + tx))) - rsx * np.log(big + tx)
            l2 = np.log(hyp2f1(rsx, b_arg, rsx + 1, diff / (big + big_t))) - rsx * np.log(
                big + big_t
            )
            log_a0 = l1 + np.log(-np.expm1(np.minimum(l2 - l1, 0.0)))
        return np.log(s) - np.log(rsx) + log_a0

    @staticmethod
    def _quadrature_moments(
        params: FloatArray, x: FloatArray, tx: FloatArray, big_t: FloatArray
    ) -> dict[str, FloatArray]:
        """log of the death integral and normalised moments under its integrand."""
        r, alpha, s, beta = params
        tau, log_w = _log_quadrature_grid(tx, big_t, min(alpha, beta))
        log_a = np.log(alpha + tau)
        log_b = np.log(beta + tau)
        log_f = log_w - (r + x)[:, None] * log_a - (s + 1) * log_b
        log_int = logsumexp(log_f, axis=1)
        empty = ~np.isfinite(log_int)
        safe = np.where(empty[:, None], 0.0, log_f - np.where(empty, 0.0, log_int)[:, None])
        pi = np.where(empty[:, None], 0.0, np.exp(safe))
        return {
            "log_sint": np.log(s) + log_int,
            "log_a": (pi * log_a).sum(axis=1),
            "inv_a": (pi / (alpha + tau)).sum(axis=1),
            "log_b": (pi * log_b).sum(axis=1),
            "inv_b": (pi / (beta + tau)).sum(axis=1),
        }

    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, s, beta = params
        x, tx, big_t = data["x"], data["tx"], data["T"]
        mom = self._quadrature_moments(params, x, tx, big_t)
        log_sint = self._log_death_integral(params, x, tx, big_t)
        bad = np.isnan(log_sint) | np.isposinf(log_sint)
        log_sint = np.where(bad, mom["log_sint"], log_sint)
        log_t1 = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        log_bracket = np.logaddexp(log_t1, log_sint)
        ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_bracket
        w1 = np.exp(log_t1 - log_bracket)
        wi = np.exp(log_sint - log_bracket)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha)
        d_r += -w1 * np.log(alpha + big_t) - wi * mom["log_a"]
        d_alpha = r / alpha - (r + x) * (w1 / (alpha + big_t) + wi * mom["inv_a"])
        d_s = np.log(beta) - w1 * np.log(beta + big_t) + wi * (1 / s - mom["log_b"])
        d_beta = s / beta - w1 * s / (beta + big_t) - wi * (s + 1) * mom["inv_b"]
        return -ll, -np.column_stack([d_r, d_alpha, d_s, d_beta])

    # ---- predictions -----------------------------------------------------------------
    def p_alive(self, frequency: Any, recency: Any, T: Any) -> FloatArray:
        """``P(alive at T | x, t_x, T)`` (Fader & Hardie 2005, eq. 24)."""
        params = self._check_is_fitted()
        r, alpha, s, beta = params
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        log_sint = self._log_death_integral(params, x, tx, big_t)
        bad = np.isnan(log_sint) | np.isposinf(log_sint)
        if bad.any():
            log_sint = np.where(
                bad, self._quadrature_moments(params, x, tx, big_t)["log_sint"], log_sint
            )
        log_t1 = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        return np.exp(log_t1 - np.logaddexp(log_t1, log_sint))

    def expected_transactions(self, t: Any) -> FloatArray:
        """Population ``E[X(t)] = r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)]``."""
        r, alpha, s, beta = self._check_is_fitted()
        t = nonnegative("t", t)
        return r * beta / alpha * -np.expm1((s - 1) * np.log(beta / (beta + t))) / (s - 1)

    def conditional_expected_transactions(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> FloatArray:
        """``E[Y(t) | x, t_x, T]`` (Fader & Hardie 2005, eq. 25)."""
        r, alpha, s, beta = self._check_is_fitted()
        x, tx, big_t = validate_rft(frequency, recency, T, allow_broadcast=True)
        t = nonnegative("t", t)
        x, tx, big_t, t = np.broadcast_arrays(x, tx, big_t, t)
        lead = (r + x) * (beta + big_t) / ((alpha + big_t) * (s - 1))
        tail = -np.expm1((s - 1) * np.log((beta + big_t) / (beta + big_t + t)))
        return lead * tail * self.p_alive(x, tx, big_t)

    def p_transactions(self, n: Any, t: Any) -> FloatArray:
        """``P(X(t) = n)`` for a new customer.

        ``NB(n; t) (beta/(beta+t))^s + int_0^t NB(n; tau) s beta^s / (beta+tau)^(s+1) dtau``
        with the integral by Gauss-Legendre quadrature.
        """
        r, alpha, s, beta = self._check_is_fitted()
        n, t = self._counts_at(n, t)

        def log_nb(k: FloatArray, tau: FloatArray) -> FloatArray:
            with np.errstate(divide="ignore", invalid="ignore"):
                ln = (
                    gammaln(r + k)
                    - gammaln(r)
                    - gammaln(k + 1)
                    + r * np.log(alpha / (alpha + tau))
                    + np.where(k > 0, k * np.log(tau / (alpha + tau)), 0.0)
                )
            return np.where((tau > 0) | (k == 0), ln, -np.inf)

        alive = np.exp(log_nb(n, t) + s * np.log(beta / (beta + t)))
        tau, log_w = _log_quadrature_grid(np.zeros_like(t), t, min(alpha, beta))
        log_g = (
            log_w
            + log_nb(n[:, None], tau)
            + np.log(s)
            + s * np.log(beta)
            - (s + 1) * np.log(beta + tau)
        )
        return alive + np.exp(logsumexp(log_g, axis=1))
