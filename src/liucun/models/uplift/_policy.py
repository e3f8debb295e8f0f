"""Whom to treat: expected incremental profit under a budget, and what a policy earns.

**Profit model.** For a customer with predicted uplift ``τ`` (in the outcome's units:
orders or revenue), treating costs a ``contact_cost`` (the message) plus the coupon. The
coupon is charged either

- ``"per_treated"``: ``coupon_cost`` for every treated customer (a voucher that costs
  when issued, e.g. a gift), or
- ``"per_redemption"``: ``coupon_cost × redemptions``, where ``redemptions`` is each
  customer's expected number of coupon uses *if treated* (e.g. expected orders in the
  window × the share of orders that use the coupon). This includes the discounts given on
  orders the customer would have placed anyway — the real cost of a coupon.

so the expected incremental profit of treating is ``τ·margin − contact_cost − coupon
cost``, with ``margin`` the profit per unit of outcome (per order, or the margin rate on
revenue). :func:`plan_policy` treats the customers with the highest positive expected
profit within a budget of customers or of money; customers whose expected effect is
negative ("sleeping dogs": the contact makes them buy *less*) are never treated and are
counted.

**Policy value.** :func:`policy_value` estimates, on held-out randomized data, the
incremental profit of a treat/don't-treat rule relative to treating nobody with the
Horvitz–Thompson (inverse propensity) estimator

    V̂(π) = (1/n) Σᵢ πᵢ · (Tᵢ/eᵢ − (1 − Tᵢ)/(1 − eᵢ)) · (margin·Yᵢ − Tᵢ·cᵢ)

which is unbiased for ``(1/n) Σᵢ πᵢ (margin·τᵢ − cᵢ)`` whatever the outcome model, because
assignment was random with known ``eᵢ``; its standard error is the sample standard
deviation of the summands over ``√n``. With the true effects (simulated data) the true
value is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from liucun.core import ConfigError, InvalidInput
from liucun.models.uplift._inputs import (
    BoolArray,
    FloatArray,
    as_float,
    as_propensity,
    as_treatment,
)

CouponBasis = Literal["per_treated", "per_redemption"]
COUPON_BASES: tuple[str, ...] = ("per_treated", "per_redemption")

#: Reason codes of :class:`Policy`.
OK = "ok"
NOBODY_PROFITABLE = "nobody_profitable"
NO_BUDGET = "no_budget"


@dataclass(frozen=True)
class CampaignEconomics:
    """Money of one retention action (see the module docstring for the profit model).

    Parameters
    ----------
    margin
        Profit per unit of outcome: per incremental order, or the margin rate when the
        outcome is revenue (e.g. 0.3). Must be > 0.
    contact_cost
        Cost of contacting one customer (message, call), ≥ 0.
    coupon_cost
        Cost of one coupon, ≥ 0: per treated customer or per redemption (``coupon_basis``).
    coupon_basis
        ``"per_treated"`` or ``"per_redemption"``.
    """

    margin: float
    contact_cost: float = 0.0
    coupon_cost: float = 0.0
    coupon_basis: CouponBasis = "per_treated"

    def __post_init__(self) -> None:
        for name in ("margin", "contact_cost", "coupon_cost"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if self.margin <= 0:
            raise ConfigError(
                f"margin must be > 0 (profit per unit of outcome), got {self.margin!r}"
            )
        if self.contact_cost < 0 or self.coupon_cost < 0:
            raise ConfigError("contact_cost and coupon_cost must be ≥ 0")
        if self.coupon_basis not in COUPON_BASES:
            raise ConfigError(
                f"coupon_basis must be one of {', '.join(COUPON_BASES)}, got {self.coupon_basis!r}"
            )

    def treatment_cost(self, n: int, redemptions: Any = None) -> FloatArray:
        """Expected cost of treating each of ``n`` customers."""
        if self.coupon_basis == "per_treated" or self.coupon_cost == 0:
            return np.full(n, self.contact_cost + self.coupon_cost)
        if redemptions is None:
            raise InvalidInput(
                "coupon_basis='per_redemption' needs redemptions: each customer's expected "
                "coupon uses if treated (e.g. predicted orders × coupon use rate)"
            )
        if np.ndim(redemptions) == 0:
            r = np.full(n, as_float("redemptions", [redemptions])[0])
        else:
            r = as_float("redemptions", redemptions, n)
        if (r < 0).any():
            raise InvalidInput("redemptions must be ≥ 0 (expected coupon uses per customer)")
        return self.contact_cost + self.coupon_cost * r


@dataclass(frozen=True)
class Policy:
    """The customers to treat and what they are expected to earn.

    ``treat`` and ``expected_profit`` hold one value per customer (in input order); the
    counts split the customers not treated into sleeping dogs (negative expected
    effect), unprofitable ones (effect ≥ 0 but below cost) and those cut by the budget.
    ``roi`` is expected incremental gross profit ÷ expected cost (``None`` without cost).
    ``reason`` is ``"ok"``, ``"nobody_profitable"`` or ``"no_budget"``.
    """

    treat: BoolArray
    expected_profit: FloatArray
    n_customers: int
    n_targeted: int
    n_sleeping_dogs: int
    n_unprofitable: int
    n_over_budget: int
    expected_incremental_outcome: float
    expected_cost: float
    expected_incremental_profit: float
    roi: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Scalar figures as a flat dict."""
        skip = {"treat", "expected_profit"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


def _budget_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return int(value)


def plan_policy(
    uplift: Any,
    economics: CampaignEconomics,
    *,
    max_customers: int | None = None,
    max_spend: float | None = None,
    redemptions: Any = None,
) -> Policy:
    """Choose whom to treat to maximize expected incremental profit within a budget.

    Only customers with a positive expected profit and a non-negative expected effect are
    candidates. Without a money budget they are taken by expected profit, best first, up
    to ``max_customers`` — the most profitable set of that size. With ``max_spend`` they
    are taken by expected profit per unit of cost (free ones first) while the money lasts:
    optimal when every customer costs the same; with unequal costs it is the greedy
    knapsack rule (a customer who no longer fits is skipped and cheaper ones still fill
    the budget), within one customer's profit of the best.

    Parameters
    ----------
    uplift
        Predicted incremental outcome per customer if treated (e.g. from a learner).
    economics
        Margin and costs.
    max_customers
        Treat at most this many customers.
    max_spend
        Spend at most this much on contacts and coupons (expected cost).
    redemptions
        Expected coupon uses per customer if treated (``coupon_basis="per_redemption"``).

    Examples
    --------
    >>> p = plan_policy([0.5, -0.2, 0.1, 0.05], CampaignEconomics(margin=10, contact_cost=0.8),
    ...                 max_customers=1)
    >>> p.treat.tolist(), p.n_sleeping_dogs, p.n_unprofitable, p.n_over_budget
    ([True, False, False, False], 1, 1, 1)
    """
    tau = as_float("uplift", uplift)
    n = tau.size
    cap = _budget_int("max_customers", max_customers)
    if max_spend is not None and (
        isinstance(max_spend, bool) or not isinstance(max_spend, int | float) or max_spend < 0
    ):
        raise ConfigError(f"max_spend must be a number ≥ 0, got {max_spend!r}")
    cost = economics.treatment_cost(n, redemptions)
    profit = tau * economics.margin - cost
    sleeping = tau < 0
    candidate = ~sleeping & (profit > 0)
    idx = np.flatnonzero(candidate)
    by_profit = idx[np.lexsort((idx, -profit[idx]))]  # ties by row order
    idx = by_profit if max_spend is None else _within_spend(by_profit, profit, cost, max_spend, cap)
    if cap is not None:
        idx = idx[:cap]
    treat = np.zeros(n, dtype=bool)
    treat[idx] = True
    spend = float(cost[treat].sum())
    gross = float(tau[treat].sum() * economics.margin)
    n_cand = int(candidate.sum())
    reason = OK if treat.any() else NOBODY_PROFITABLE if n_cand == 0 else NO_BUDGET
    return Policy(
        treat=treat,
        expected_profit=profit,
        n_customers=n,
        n_targeted=int(treat.sum()),
        n_sleeping_dogs=int(sleeping.sum()),
        n_unprofitable=int((~sleeping & ~candidate).sum()),
        n_over_budget=int(n_cand - treat.sum()),
        expected_incremental_outcome=float(tau[treat].sum()),
        expected_cost=spend,
        expected_incremental_profit=gross - spend,
        roi=gross / spend if spend > 0 else None,
        reason=reason,
    )


def _within_spend(
    by_profit: np.ndarray, profit: FloatArray, cost: FloatArray, max_spend: float, cap: int | None
) -> np.ndarray:
    """Candidates (best profit first) taken by profit per unit of cost, free ones first,
    while ``max_spend`` lasts; with unequal costs a candidate who no longer fits is
    skipped and cheaper ones still fill the budget (greedy knapsack)."""
    ratio = profit[by_profit] / np.maximum(cost[by_profit], 1e-300)
    idx = by_profit[np.argsort(-np.where(cost[by_profit] > 0, ratio, np.inf), kind="stable")]
    fits = np.cumsum(cost[idx]) <= max_spend + 1e-9
    if not fits.all() and np.ptp(cost[idx]) > 0:  # unequal costs: skip, keep filling
        fits = np.zeros(idx.size, dtype=bool)
        left, room = float(max_spend) + 1e-9, idx.size if cap is None else cap
        for j, c in enumerate(cost[idx].tolist()):
            if room and c <= left:
                fits[j], left, room = True, left - c, room - 1
    return idx[fits]


def top_n(score: Any, n: int) -> BoolArray:
    """Treat the ``n`` highest-scored customers (ties by row order), e.g. by churn risk."""
    s = as_float("score", score)
    k = _budget_int("n", n) or 0
    treat = np.zeros(s.size, dtype=bool)
    treat[np.argsort(-s, kind="stable")[:k]] = True
    return treat


@dataclass(frozen=True)
class PolicyValue:
    """Estimated incremental profit of a policy relative to treating nobody.

    ``value`` is per customer of the evaluation data (multiply by a population size to
    scale it), with standard error ``se`` and a ``1 − alpha`` interval; ``total`` is
    ``value × n``. ``true_value`` is the same quantity computed from the true effects
    when they are known (simulated data), else ``None``.
    """

    policy: str
    n: int
    n_targeted: int
    value: float
    se: float
    ci_low: float
    ci_high: float
    total: float
    true_value: float | None = None


def policy_value(
    treat: Any,
    y: Any,
    treatment: Any,
    economics: CampaignEconomics,
    *,
    propensity: Any = None,
    redemptions: Any = None,
    treated_cost: Any = None,
    true_effect: Any = None,
    name: str = "policy",
    alpha: float = 0.05,
) -> PolicyValue:
    """Horvitz–Thompson estimate of a policy's incremental profit on randomized data.

    Parameters
    ----------
    treat
        The policy: True for customers it treats (one per unit of the evaluation data).
    y, treatment, propensity
        Observed outcome, actual assignment and its probability in the randomized data.
    economics, redemptions
        As :func:`plan_policy`; they give each unit's cost if treated.
    treated_cost
        Realized cost of the units that were treated (e.g. the discounts they actually
        redeemed plus the contact), instead of the expected cost.
    true_effect
        True individual effects in the units of ``y`` (simulated data).
    name
        Label of the policy in the result.
    alpha
        1 − confidence level of the interval.
    """
    t = as_treatment(treatment)
    n = t.size
    if n == 0:
        raise InvalidInput("the evaluation data are empty")
    pi = as_treatment(treat, n)
    yy = as_float("y", y, n)
    e = as_propensity(propensity, t)
    cost = (
        economics.treatment_cost(n, redemptions)
        if treated_cost is None
        else as_float("treated_cost", treated_cost, n)
    )
    profit = economics.margin * yy - np.where(t, cost, 0.0)
    weight = np.where(t, 1.0 / e, -1.0 / (1.0 - e))
    terms = pi * weight * profit
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    truth = None
    if true_effect is not None:
        tau = as_float("true_effect", true_effect, n)
        truth = float(np.mean(pi * (economics.margin * tau - cost)))
    return PolicyValue(
        policy=name,
        n=n,
        n_targeted=int(pi.sum()),
        value=value,
        se=se,
        ci_low=value - z * se,
        ci_high=value + z * se,
        total=value * n,
        true_value=truth,
    )


def compare_policies(
    plan: Policy | Any,
    y: Any,
    treatment: Any,
    economics: CampaignEconomics,
    *,
    rankings: Mapping[str, Any] | None = None,
    propensity: Any = None,
    redemptions: Any = None,
    treated_cost: Any = None,
    true_effect: Any = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Value of the uplift policy against treating everyone, no one, and top-N rankings.

    Each alternative ranking in ``rankings`` (e.g. ``{"churn_risk": risk}``) treats as many
    customers as the plan, highest score first. All policies are valued on the same
    held-out randomized data by :func:`policy_value`.

    Returns
    -------
    pandas.DataFrame
        One row per policy (``uplift``, ``everyone``, ``no_one``, then the rankings) with
        the columns of :class:`PolicyValue`.
    """
    chosen = plan.treat if isinstance(plan, Policy) else as_treatment(plan)
    n = chosen.size
    k = int(chosen.sum())
    policies: dict[str, BoolArray] = {
        "uplift": chosen,
        "everyone": np.ones(n, dtype=bool),
        "no_one": np.zeros(n, dtype=bool),
    }
    for label, score in (rankings or {}).items():
        policies[label] = top_n(as_float(label, score, n), k)
    rows = [
        policy_value(
            mask,
            y,
            treatment,
            economics,
            propensity=propensity,
            redemptions=redemptions,
            treated_cost=treated_cost,
            true_effect=true_effect,
            name=label,
            alpha=alpha,
        )
        for label, mask in policies.items()
    ]
    return pd.DataFrame([r.__dict__ for r in rows])
