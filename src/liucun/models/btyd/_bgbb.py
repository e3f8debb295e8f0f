"""The BG/BB model of Fader, Hardie & Shang (2010), discrete-time non-contractual buying.

At each of ``n`` transaction opportunities an alive customer buys with probability
``p ~ Beta(alpha, beta)`` and, before each opportunity, dies with probability
``theta ~ Beta(gamma, delta)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from scipy.special import betaln, digamma, gammaln

from liucun.core import InvalidInput
from liucun.models.btyd._base import (
    Data,
    FloatArray,
    LikelihoodModel,
    as_1d,
    check_weights,
    validate_rft,
)


def _dbetaln(a: Any, b: Any) -> tuple[Any, Any]:
    """Partial derivatives of ``log B(a, b)``."""
    dab = digamma(a + b)
    return digamma(a) - dab, digamma(b) - dab


def _validate_periods(frequency: Any, recency: Any, n_periods: Any, *, broadcast: bool) -> Any:
    x, tx, n = validate_rft(
        frequency, recency, n_periods, t_name="n_periods", allow_broadcast=broadcast
    )
    if np.any(n != np.round(n)) or np.any(tx != np.round(tx)):
        raise InvalidInput("recency and n_periods must be whole numbers of periods")
    if np.any(x > tx):
        raise InvalidInput(
            "frequency must not exceed recency in the BG/BB (a customer who bought x times "
            "last bought at period t_x >= x)"
        )
    return x, tx, n


class BetaGeoBetaBinomModel(LikelihoodModel):
    """BG/BB: parameters ``alpha, beta`` (buying) and ``gamma, delta`` (dying).

    Data are per customer (or per histogram cell with ``weights``): ``frequency`` = number
    of repeat transactions, ``recency`` = period of the last one (0 if none), and
    ``n_periods`` = number of transaction opportunities.
    """

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")

    def fit(self, frequency: Any, recency: Any, n_periods: Any, weights: Any = None) -> Self:
        """Fit by maximum likelihood; ``weights`` are the counts of a histogram."""
        x, tx, n = _validate_periods(frequency, recency, n_periods, broadcast=False)
        w = check_weights(weights, len(x))
        return self._fit({"x": x, "tx": tx, "n": n}, w)

    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        return np.array([1.0, 1.0, 1.0, 1.0])

    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        al, be, ga, de = params
        x, tx, n = data["x"], data["tx"], data["n"]
        base = betaln(al, be) + betaln(ga, de)
        dab_a, dab_b = _dbetaln(al, be)
        dgd_g, dgd_d = _dbetaln(ga, de)
        # term 0: alive through all n periods
        t0 = betaln(al + x, be + n - x) + betaln(ga, de + n) - base
        p_a, p_b = _dbetaln(al + x, be + n - x)
        q_g, q_d = _dbetaln(ga, de + n)
        g0 = np.column_stack([p_a - dab_a, p_b - dab_b, q_g - dgd_g, q_d - dgd_d])
        # terms i = 0 .. n - t_x - 1: died right after period t_x + i
        i_max = int(np.max(n - tx)) if len(n) else 0
        i = np.arange(max(i_max, 1), dtype=np.float64)[:, None]
        valid = i < (n - tx)[None, :]
        bb = be + tx - x + i
        dd = de + tx + i
        ti = np.where(valid, betaln(al + x, bb) + betaln(ga + 1, dd) - base, -np.inf)
        top = np.maximum(t0, ti.max(axis=0))
        e0 = np.exp(t0 - top)
        ei = np.exp(ti - top)
        total = e0 + ei.sum(axis=0)
        ll = top + np.log(total)
        w0 = e0 / total
        wi = ei / total
        r_a, r_b = _dbetaln(al + x, bb)
        s_g, s_d = _dbetaln(ga + 1, dd)
        gi = np.stack(
            [
                (wi * (r_a - dab_a)).sum(axis=0),
                (wi * (r_b - dab_b)).sum(axis=0),
                (wi * (s_g - dgd_g)).sum(axis=0),
                (wi * (s_d - dgd_d)).sum(axis=0),
            ],
            axis=1,
        )
        grad = w0[:, None] * g0 + gi
        return -ll, -grad

    # ---- predictions -----------------------------------------------------------------
    def _log_likelihood(self, x: FloatArray, tx: FloatArray, n: FloatArray) -> FloatArray:
        params = self._check_is_fitted()
        nll, _ = self._negative_log_likelihood(params, {"x": x, "tx": tx, "n": n})
        return -nll

    def p_alive(self, frequency: Any, recency: Any, n_periods: Any) -> FloatArray:
        """``P(alive at period n + 1 | x, t_x, n)`` (FHS 2010, eq. 11)."""
        al, be, ga, de = self._check_is_fitted()
        x, tx, n = _validate_periods(frequency, recency, n_periods, broadcast=True)
        log_num = (
            betaln(al + x, be + n - x) - betaln(al, be) + betaln(ga, de + n + 1) - betaln(ga, de)
        )
        return np.exp(log_num - self._log_likelihood(x, tx, n))

    def conditional_expected_transactions(
        self, n_future: Any, frequency: Any, recency: Any, n_periods: Any
    ) -> FloatArray:
        """Expected transactions in the next ``n_future`` opportunities (FHS 2010, eq. 13)."""
        al, be, ga, de = self._check_is_fitted()
        x, tx, n = _validate_periods(frequency, recency, n_periods, broadcast=True)
        nf = as_1d("n_future", n_future)
        if np.any(nf < 0):
            raise InvalidInput("n_future must be non-negative")
        x, tx, n, nf = np.broadcast_arrays(x, tx, n, nf)
        log_lead = (
            betaln(al + x + 1, be + n - x)
            - betaln(al, be)
            - self._log_likelihood(x, tx, n)
            + gammaln(ga + de)
            - gammaln(1 + de)
        )
        bracket = np.exp(gammaln(1 + de + n) - gammaln(ga + de + n)) - np.exp(
            gammaln(1 + de + n + nf) - gammaln(ga + de + n + nf)
        )
        return np.exp(log_lead) * de / (ga - 1) * bracket

    def expected_transactions(self, n_periods: Any) -> FloatArray:
        """Population ``E[X(n)]``: expected transactions of a new customer in ``n`` periods."""
        al, be, ga, de = self._check_is_fitted()
        n = as_1d("n_periods", n_periods)
        ratio = np.exp(
            gammaln(ga + de) + gammaln(1 + de + n) - gammaln(ga + de + n) - gammaln(1 + de)
        )
        return al / (al + be) * de / (ga - 1) * (1 - ratio)

    def p_transactions(self, x: Any, n_periods: Any) -> FloatArray:
        """``P(X(n) = x)`` for a new customer (FHS 2010, eq. 8)."""
        al, be, ga, de = self._check_is_fitted()
        x, n = np.broadcast_arrays(as_1d("x", x), as_1d("n_periods", n_periods))
        if np.any(x < 0) or np.any(x > n) or np.any(x != np.round(x)):
            raise InvalidInput("x must be a whole number between 0 and n_periods")
        base = betaln(al, be) + betaln(ga, de)

        def log_comb(k: Any, j: Any) -> Any:
            return gammaln(k + 1) - gammaln(j + 1) - gammaln(k - j + 1)

        out = np.exp(log_comb(n, x) + betaln(al + x, be + n - x) + betaln(ga, de + n) - base)
        i_max = int(n.max()) if len(n) else 0
        for i in range(i_max):
            ok = (i >= x) & (i < n)
            ii = np.where(ok, i, x)
            term = np.exp(
                log_comb(ii, x) + betaln(al + x, be + ii - x) + betaln(ga + 1, de + ii) - base
            )
            out = out + np.where(ok, term, 0.0)
        return out
