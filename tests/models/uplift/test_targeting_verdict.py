"""The targeting verdict (does uplift beat churn risk?) as a library call, on policy tables
written by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liucun.models.uplift import (
    TargetingVerdict,
    evaluate_uplift,
    ranking_auuc,
    targeting_verdict,
)


def _policies(value: list[float], true_value: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy": ["uplift", "everyone", "no_one", "churn_risk"][: len(value)],
            "value": value,
            "true_value": true_value,
        }
    )


def test_the_true_effects_decide_when_every_policy_has_one() -> None:
    table = _policies([0.10, 0.05, 0.0, 0.30], [0.25, 0.02, 0.0, 0.11])
    verdict = targeting_verdict(table)
    assert verdict == TargetingVerdict(0.25, 0.11, "true_effects")
    assert verdict.uplift_wins


def test_else_the_held_out_estimate_decides() -> None:
    table = _policies([0.10, 0.05, 0.0, 0.30], [math.nan] * 4)
    verdict = targeting_verdict(table)
    assert verdict == TargetingVerdict(0.10, 0.30, "held_out_estimate")
    assert not verdict.uplift_wins
    # one missing true value is enough to fall back to the estimate
    partial = _policies([0.4, 0.05, 0.0, 0.30], [0.25, 0.02, math.nan, 0.11])
    assert targeting_verdict(partial) == TargetingVerdict(0.4, 0.30, "held_out_estimate")
    # a tie is no win
    assert not TargetingVerdict(0.2, 0.2, "true_effects").uplift_wins


def test_no_churn_model_means_no_verdict() -> None:
    assert targeting_verdict(_policies([0.1, 0.05, 0.0], [math.nan] * 3)) is None


def test_ranking_auuc_prefers_the_true_effects() -> None:
    rng = np.random.default_rng(3)
    n = 400
    t = rng.random(n) < 0.5
    tau = rng.normal(0.5, 1.0, n)
    y = rng.normal(0.0, 1.0, n) + t * tau
    score = tau + rng.normal(0.0, 0.5, n)
    observed = evaluate_uplift(y, t, score)
    with_truth = evaluate_uplift(y, t, score, true_effect=tau)
    assert observed.true_auuc is None and with_truth.true_auuc is not None
    got = ranking_auuc({"uplift": with_truth, "churn_risk": observed})
    assert got == {"uplift": with_truth.true_auuc, "churn_risk": observed.auuc}
    assert got["uplift"] != pytest.approx(with_truth.auuc)
