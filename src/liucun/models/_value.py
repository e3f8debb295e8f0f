"""Customer value: P(alive), expected orders and CLV from BG/NBD and Gamma-Gamma.

The two published models, fitted on the customer summary as of a date, give each buyer
three numbers the scores table carries: the probability that the customer is still
active, the expected number of orders over 30/90/365 days, and CLV over the same
horizons = expected orders × Gamma-Gamma expected order value.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Self

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import InvalidInput, as_utc
from liucun.models._base import Estimator, check_is_fitted
from liucun.models._summary import customer_summary
from liucun.models.btyd import (
    BetaGeoModel,
    ConvergenceError,
    FitWarning,
    GammaGammaModel,
    fit_with_penalizers,
)

#: Horizons (days) of the expected orders and CLV columns of the scores table.
VALUE_HORIZONS: tuple[int, ...] = (30, 90, 365)
#: Gamma-Gamma needs repeat buyers; with fewer, every buyer gets the mean order value.
MIN_REPEAT_BUYERS = 20


def value_summary(events: ir.Table, *, as_of: date | datetime) -> ir.Table:
    """The customer summary (weekly units, one purchase per day) of the orders before
    ``as_of`` (a date means its midnight UTC; naive means UTC): what
    :class:`CustomerValueModel` fits and predicts on."""
    end = as_utc(as_of)
    before = events.filter(events.ts < end)
    return customer_summary(
        before, calibration_end=(end - timedelta(microseconds=1)).date(), time_unit_days=7.0
    )


class CustomerValueModel(Estimator):
    """BG/NBD (orders) + Gamma-Gamma (order value) per buyer, scikit-learn style.

    Parameters
    ----------
    horizons
        Days of the ``expected_orders_{h}d`` and ``clv_{h}d`` columns.

    Attributes (after ``fit``)
    --------------------------
    orders_model_ : BetaGeoModel
    spend_model_ : GammaGammaModel or None
        None when fewer than :data:`MIN_REPEAT_BUYERS` customers bought twice with a
        positive value; then ``mean_order_value_`` is every buyer's expected order value.
    mean_order_value_ : float
    penalizers_ : dict
        The penalizer each model needed (0 = unpenalized).
    n_customers_ : int
    """

    def __init__(self, *, horizons: Sequence[int] = VALUE_HORIZONS) -> None:
        self.horizons = horizons

    def fit(self, summary: pd.DataFrame) -> Self:
        """Fit on a :func:`value_summary` frame (``frequency, recency, T, monetary_value``)."""
        x, tx, big_t, m = _arrays(summary)
        if len(x) == 0:
            raise InvalidInput("no customer has ordered before the cut-off: nothing to fit")
        self.orders_model_, pen_orders = fit_with_penalizers(BetaGeoModel, x, tx, big_t)
        self.penalizers_ = {"bg_nbd": pen_orders}
        repeat = (x > 0) & (m > 0)
        total = float((m[repeat] * x[repeat]).sum())
        self.mean_order_value_ = total / float(x[repeat].sum()) if repeat.any() else 0.0
        self.spend_model_: GammaGammaModel | None = None
        if repeat.sum() >= MIN_REPEAT_BUYERS:
            try:
                spend, pen_spend = fit_with_penalizers(GammaGammaModel, x[repeat], m[repeat])
                self.spend_model_ = spend
                self.penalizers_["gamma_gamma"] = pen_spend
            except ConvergenceError as exc:
                warnings.warn(
                    f"Gamma-Gamma did not converge ({exc}); CLV uses the mean order value "
                    f"{self.mean_order_value_:.2f} for everyone",
                    FitWarning,
                    stacklevel=2,
                )
        self.n_customers_ = len(x)
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """``user_id, p_alive, expected_order_value`` and, per horizon h,
        ``expected_orders_{h}d`` and ``clv_{h}d``."""
        check_is_fitted(self, "orders_model_")
        x, tx, big_t, m = _arrays(summary)
        out = pd.DataFrame({"user_id": summary["user_id"].astype(str).to_numpy()})
        model = self.orders_model_
        out["p_alive"] = model.p_alive(x, tx, big_t)
        if self.spend_model_ is not None:
            value = _expected_spend(self.spend_model_, x, m)
        else:
            value = np.full(len(x), self.mean_order_value_)
        out["expected_order_value"] = value
        for h in self.horizons:
            orders = model.conditional_expected_transactions(h / 7.0, x, tx, big_t)
            out[f"expected_orders_{h}d"] = orders
            out[f"clv_{h}d"] = orders * value
        return out

    def params(self) -> dict[str, float]:
        """The fitted parameters of both models, for the model card."""
        out = {f"bg_nbd.{k}": float(v) for k, v in self.orders_model_.params_.items()}
        if self.spend_model_ is not None:
            out |= {f"gamma_gamma.{k}": float(v) for k, v in self.spend_model_.params_.items()}
        return out


def _expected_spend(model: GammaGammaModel, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gamma-Gamma's ``E[Z | x, m_x]`` for every customer, zero-value repeat buyers too.

    Gamma-Gamma is fitted on repeat buyers with a positive mean value (a real export has
    orders of value 0). For a repeat buyer whose repeat orders were all worth 0 the same
    weighted mean is taken at ``m_x = 0``: ``p * gamma / (p * x + q - 1)``, the limit of
    the formula, shrunk from the population mean toward 0 the more orders they made.
    """
    zero = (x > 0) & (m <= 0)
    value = model.conditional_expected_spend(x, np.where(zero, 1.0, m))
    if zero.any():
        p, q, gamma = (model.params_[k] for k in ("p", "q", "gamma"))
        value = np.where(zero, p * gamma / (p * x + q - 1), value)
    return value


def _arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = {"user_id", "frequency", "recency", "T", "monetary_value"} - set(summary.columns)
    if missing:
        raise InvalidInput(
            f"the customer summary lacks {sorted(missing)}; build it with value_summary()"
        )
    return tuple(  # type: ignore[return-value]
        summary[c].to_numpy(dtype=np.float64)
        for c in ("frequency", "recency", "T", "monetary_value")
    )
