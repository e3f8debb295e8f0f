"""Targeting policy: budgets, sleeping dogs, and the unbiased IPW value of a policy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import ConfigError, InvalidInput
from liucun.models.uplift import (
    NO_BUDGET,
    NOBODY_PROFITABLE,
    CampaignEconomics,
    compare_policies,
    plan_policy,
    policy_value,
    top_n,
)

ECON = CampaignEconomics(margin=10.0, contact_cost=1.0)


def test_sleeping_dogs_are_excluded_and_counted() -> None:
    tau = np.array([0.5, -0.2, 0.3, -0.01, 0.05, 0.0, 0.2])
    p = plan_policy(tau, ECON)
    # profit = 10·tau - 1: 4, -3, 2, -1.1, -0.5, -1, 1
    assert p.treat.tolist() == [True, False, True, False, False, False, True]
    assert (p.n_sleeping_dogs, p.n_unprofitable, p.n_over_budget) == (2, 2, 0)
    assert p.expected_incremental_outcome == pytest.approx(1.0)
    assert p.expected_cost == 3.0
    assert p.expected_incremental_profit == pytest.approx(7.0)
    assert p.roi == pytest.approx(10.0 / 3.0)
    np.testing.assert_allclose(p.expected_profit, 10 * tau - 1)
    # without any cost a sleeping dog still loses money and is never treated
    free = plan_policy(tau, CampaignEconomics(margin=1.0))
    assert not free.treat[tau < 0].any() and free.treat[tau > 0].all()
    assert free.roi is None and free.n_sleeping_dogs == 2


def test_count_budget_takes_the_most_profitable() -> None:
    tau = np.array([0.5, 0.4, 0.3, 0.2, 0.9])
    p = plan_policy(tau, ECON, max_customers=2)
    assert p.treat.tolist() == [True, False, False, False, True]
    assert (p.n_targeted, p.n_over_budget, p.reason) == (2, 3, "ok")
    assert plan_policy(tau, ECON, max_customers=0).reason == NO_BUDGET
    assert plan_policy(-tau, ECON).reason == NOBODY_PROFITABLE


def test_money_budget_with_coupon_cost_per_redemption() -> None:
    """Cost = contact 1 + coupon 5 × redemptions; greedy by profit per unit of cost."""
    econ = CampaignEconomics(
        margin=10.0, contact_cost=1.0, coupon_cost=5.0, coupon_basis="per_redemption"
    )
    tau = np.array([1.0, 0.8, 0.5, 0.3])
    redemptions = np.array([1.0, 0.2, 0.1, 0.0])
    # cost 6, 2, 1.5, 1; profit 4, 6, 3.5, 2; ratio 0.67, 3, 2.33, 2
    p = plan_policy(tau, econ, max_spend=4.0, redemptions=redemptions)
    assert p.treat.tolist() == [False, True, True, False]  # 2 + 1.5; then 1 would exceed 4
    assert p.expected_cost == 3.5 and p.n_over_budget == 2
    p = plan_policy(tau, econ, max_spend=4.5, redemptions=redemptions)
    assert p.treat.tolist() == [False, True, True, True]
    with pytest.raises(InvalidInput, match="needs redemptions"):
        plan_policy(tau, econ)
    per_treated = CampaignEconomics(margin=10.0, contact_cost=1.0, coupon_cost=5.0)
    np.testing.assert_allclose(per_treated.treatment_cost(3), [6.0, 6.0, 6.0])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-1, 2), min_size=1, max_size=9),
    st.lists(st.floats(0, 3), min_size=9, max_size=9),
    st.floats(0, 6),
    st.integers(0, 9),
)
def test_budgets_are_respected_and_counts_add_up(
    tau: list[float], redemptions: list[float], spend: float, cap: int
) -> None:
    econ = CampaignEconomics(
        margin=3.0, contact_cost=0.2, coupon_cost=0.5, coupon_basis="per_redemption"
    )
    r = np.array(redemptions[: len(tau)])
    t = np.array(tau)
    p = plan_policy(t, econ, max_spend=spend, max_customers=cap, redemptions=r)
    cost = econ.treatment_cost(t.size, r)
    assert p.expected_cost <= spend + 1e-9 and p.n_targeted <= cap
    assert p.n_targeted + p.n_sleeping_dogs + p.n_unprofitable + p.n_over_budget == t.size
    assert not p.treat[t < 0].any() and (p.expected_profit[p.treat] > 0).all()
    if p.n_targeted < cap:  # the money ran out: no skipped candidate would still fit
        skipped = ~p.treat & (t >= 0) & (p.expected_profit > 0)
        assert (cost[skipped] > spend - p.expected_cost - 1e-9).all()
    # with a count budget only, no other set of the same size earns more
    q = plan_policy(t, econ, max_customers=2, redemptions=r)
    allowed = [i for i in range(t.size) if t[i] >= 0]
    prof = q.expected_profit
    best = max(prof[list(c)].sum() for k in (0, 1, 2) for c in itertools.combinations(allowed, k))
    assert prof[q.treat].sum() == pytest.approx(best)


def test_economics_are_validated() -> None:
    with pytest.raises(ConfigError, match="margin must be > 0"):
        CampaignEconomics(margin=0.0)
    with pytest.raises(ConfigError, match="must be ≥ 0"):
        CampaignEconomics(margin=1.0, coupon_cost=-1.0)
    with pytest.raises(ConfigError, match="coupon_basis must be one of"):
        CampaignEconomics(margin=1.0, coupon_basis="per_order")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_customers must be a whole number"):
        plan_policy([0.1], ECON, max_customers=-1)
    with pytest.raises(ConfigError, match="max_spend must be a number"):
        plan_policy([0.1], ECON, max_spend=-1.0)


def _population(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Fixed units with both potential outcomes and a per-unit assignment probability."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y0 = rng.poisson(np.exp(0.5 * x)).astype(float)
    tau = 0.6 * x + 0.2
    y1 = y0 + tau + rng.normal(0, 0.5, n)
    e = np.where(x > 0, 0.7, 0.3)  # assignment depends on what drives the outcome
    return x, y0, y1, e


def test_ipw_policy_value_is_unbiased_by_simulation() -> None:
    n, reps = 500, 3000
    x, y0, y1, e = _population(n, 30)
    econ = CampaignEconomics(margin=2.0, contact_cost=0.3)
    policy = x > -0.3
    truth = float(np.mean(policy * (econ.margin * (y1 - y0) - 0.3)))
    rng = np.random.default_rng(31)
    est, ses, naive = np.empty(reps), np.empty(reps), np.empty(reps)
    for i in range(reps):
        t = rng.random(n) < e
        y = np.where(t, y1, y0)
        v = policy_value(policy, y, t, econ, propensity=e)
        est[i], ses[i] = v.value, v.se
        sel_t, sel_c = policy & t, policy & ~t
        naive[i] = policy.mean() * (econ.margin * (y[sel_t].mean() - y[sel_c].mean()) - 0.3)
    mc_se = est.std(ddof=1) / np.sqrt(reps)
    assert abs(est.mean() - truth) < 4 * mc_se
    # the reported standard error matches the spread of the estimates
    assert ses.mean() == pytest.approx(est.std(ddof=1), rel=0.1)
    # ignoring the propensity is biased here: the check can tell
    assert abs(naive.mean() - truth) > 10 * naive.std(ddof=1) / np.sqrt(reps)


def test_policy_value_formula_and_truth() -> None:
    y = np.array([3.0, 1.0, 0.0, 2.0])
    t = np.array([1, 0, 1, 0])
    e = np.array([0.5, 0.5, 0.25, 0.75])
    econ = CampaignEconomics(margin=2.0, contact_cost=1.0)
    v = policy_value([1, 1, 1, 0], y, t, econ, propensity=e, true_effect=[1, 1, 0, 5])
    # terms: (2·3 - 1)/0.5 = 10, -(2·1)/0.5 = -4, (0 - 1)/0.25 = -4, 0 → mean 0.5
    assert v.value == pytest.approx(0.5)
    assert v.se == pytest.approx(np.std([10, -4, -4, 0], ddof=1) / 2)
    assert v.total == pytest.approx(2.0) and v.n_targeted == 3
    assert v.true_value == pytest.approx(np.mean([2 - 1, 2 - 1, 0 - 1, 0]))
    assert v.ci_low < v.value < v.ci_high
    realized = policy_value([1, 1, 1, 0], y, t, econ, propensity=e, treated_cost=[4, 9, 2, 9])
    # (6 - 4)/0.5 = 4, -(2·1)/0.5 = -4 (control: no cost), (0 - 2)/0.25 = -8, 0 → mean -2
    assert realized.value == pytest.approx(-2.0)


def test_compare_policies_values_every_alternative_on_the_same_data() -> None:
    rng = np.random.default_rng(40)
    n = 2000
    tau = rng.normal(0.1, 0.5, n)
    t = rng.random(n) < 0.5
    y = rng.normal(size=n) + t * tau
    plan = plan_policy(tau, ECON)
    risk = rng.random(n)
    table = compare_policies(plan, y, t, ECON, rankings={"churn_risk": risk}, true_effect=tau)
    assert table.policy.tolist() == ["uplift", "everyone", "no_one", "churn_risk"]
    rows = table.set_index("policy")
    assert rows.loc["churn_risk", "n_targeted"] == plan.n_targeted
    assert rows.loc["no_one", "value"] == 0.0 and rows.loc["everyone", "n_targeted"] == n
    assert rows.loc["uplift", "true_value"] > rows.loc["everyone", "true_value"]
    assert rows.loc["uplift", "true_value"] > rows.loc["churn_risk", "true_value"]
    one = policy_value(top_n(risk, plan.n_targeted), y, t, ECON, true_effect=tau)
    assert rows.loc["churn_risk", "value"] == pytest.approx(one.value)


def test_top_n_breaks_ties_by_row_order() -> None:
    assert top_n([1, 3, 3, 2], 2).tolist() == [False, True, True, False]
    assert top_n([1, 1, 1], 2).tolist() == [True, True, False]
    assert not top_n([1, 2], 0).any()
