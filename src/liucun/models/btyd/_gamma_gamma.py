"""The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: iso-value curves").

A customer's transaction values are Gamma(p, nu) with ``nu ~ Gamma(q, gamma)``; the model
is fitted on the mean repeat-transaction value of customers with at least one repeat.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Self

import numpy as np
from scipy.special import digamma, gammaln

from liucun.core import InvalidInput
from liucun.models.btyd._base import (
    Data,
    FloatArray,
    LikelihoodModel,
    as_1d,
    check_counts,
    check_same_length,
    check_weights,
)


class TransactionModel(Protocol):
    """Anything with a BTYD-style conditional expectation (BG/NBD, MBG/NBD, Pareto/NBD)."""

    def conditional_expected_transactions(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> FloatArray: ...


def _validate_spend(frequency: Any, monetary_value: Any) -> tuple[FloatArray, FloatArray]:
    x = as_1d("frequency", frequency)
    m = as_1d("monetary_value", monetary_value)
    if len(x) != len(m) and len(x) != 1 and len(m) != 1:
        check_same_length(frequency=x, monetary_value=m)
    x, m = np.broadcast_arrays(x, m)
    check_counts("frequency", x)
    if np.any(m < 0):
        raise InvalidInput(f"monetary_value must be non-negative; found {m.min():g}")
    if np.any((x > 0) & (m <= 0)):
        raise InvalidInput(
            "monetary_value must be > 0 for customers with frequency > 0 (mean value of "
            "their repeat transactions); drop zero-value repeat buyers or fix the values"
        )
    return x, m


class GammaGammaModel(LikelihoodModel):
    """Gamma-Gamma model of average transaction value, parameters ``p, q, gamma``.

    Examples
    --------
    >>> gg = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "gamma": 15.44})
    >>> round(float(gg.conditional_expected_spend(2, 30.0)[0]), 2)
    30.94
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> Self:
        """Fit on customers with ``frequency > 0`` (the others carry no spend information)."""
        x, m = _validate_spend(frequency, monetary_value)
        check_same_length(frequency=as_1d("frequency", frequency), monetary_value=m)
        w = check_weights(weights, len(x))
        keep = x > 0
        if not keep.any():
            raise InvalidInput("no customer has frequency > 0; Gamma-Gamma needs repeat buyers")
        return self._fit({"x": x[keep], "m": m[keep]}, w[keep])

    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        mean = float(weights @ data["m"]) / float(weights.sum())
        return np.array([2.0, 2.0, mean])

    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        p, q, gamma = params
        x, m = data["x"], data["m"]
        px = p * x
        log_gxm = np.log(gamma + x * m)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * log_gxm
        )
        d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_gxm)
        d_q = digamma(px + q) - digamma(q) + np.log(gamma) - log_gxm
        d_gamma = q / gamma - (px + q) / (gamma + x * m)
        return -ll, -np.column_stack([d_p, d_q, d_gamma])

    def conditional_expected_spend(self, frequency: Any, monetary_value: Any) -> FloatArray:
        """``E[Z | x, m_x]``: a weighted mean of the population mean and the customer's mean.

        Customers with ``frequency == 0`` get the population mean ``p * gamma / (q - 1)``.
        """
        p, q, gamma = self._check_is_fitted()
        x, m = _validate_spend(frequency, monetary_value)
        return p * (gamma + x * m) / (p * x + q - 1)

    def clv(
        self,
        btyd_model: TransactionModel,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        horizon: int,
        time_unit_days: float = 7,
        discount_rate: float = 0.0,
    ) -> FloatArray:
        """Discounted expected value of each customer's purchases over ``horizon`` months.

        ``sum_{i=1..horizon} (E[Y(t_i)] - E[Y(t_{i-1})]) * E[Z] / (1 + discount_rate)**i``
        with ``t_i = 30 i / time_unit_days`` in the BTYD model's time unit (months of 30
        days; ``discount_rate`` is per month), as in lifetimes.

        Parameters
        ----------
        btyd_model
            A fitted BG/NBD, MBG/NBD or Pareto/NBD model.
        frequency, recency, T
            The customers' history in the BTYD model's time unit.
        monetary_value
            Mean repeat-transaction value (0 when ``frequency`` is 0).
        horizon
            Number of 30-day months.
        time_unit_days
            Days per time unit of ``recency`` and ``T`` (7 for weeks).
        discount_rate
            Monthly discount rate (e.g. 0.01).
        """
        if int(horizon) != horizon or horizon < 1:
            raise InvalidInput(f"horizon must be a positive whole number of months, got {horizon}")
        if not time_unit_days > 0:
            raise InvalidInput(f"time_unit_days must be > 0, got {time_unit_days}")
        if not discount_rate > -1:
            raise InvalidInput(f"discount_rate must be > -1, got {discount_rate}")
        spend = self.conditional_expected_spend(frequency, monetary_value)
        total = np.zeros_like(spend)
        previous = np.zeros_like(spend)
        for i in range(1, int(horizon) + 1):
            cum = btyd_model.conditional_expected_transactions(
                30.0 * i / time_unit_days, frequency, recency, T
            )
            total = total + (cum - previous) * spend / (1 + discount_rate) ** i
            previous = cum
        return total
