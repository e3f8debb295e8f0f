"""Qini curve, AUUC, uplift at k: closed-form examples, random = 0, oracle > model > 0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from uplift_data import campaign

from liucun.core import InvalidInput
from liucun.models.uplift import (
    NO_CONTROL,
    NO_TREATED,
    XLearner,
    auuc,
    effect_curve,
    evaluate_uplift,
    qini_curve,
    uplift_at_k,
)

Y, T = [1.0, 0.0, 1.0, 0.0], [1, 1, 0, 0]


def test_qini_curve_by_hand() -> None:
    """Ranked (T, y): (1,1) (1,0) (0,1) (0,0); N_T = 2.
    Q(1) = 1, Q(2) = 1, Q(3) = 1 - 1·2/1 = -1, Q(4) = 1 - 1·2/2 = 0; gain = Q / N_T.
    Area: trapezoids 0.0625 + 0.125 + 0 - 0.0625 = 0.125, minus gain(1)/2 = 0."""
    c = qini_curve(Y, T, [4, 3, 2, 1])
    np.testing.assert_allclose(c.fraction, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(c.gain, [0, 0.5, 0.5, -0.5, 0])
    assert c.area() == pytest.approx(0.125)
    assert c.at(0.625) == pytest.approx(0.0)


def test_tied_scores_enter_together() -> None:
    """Ties {0, 1} then {2, 3}: the k = 1 and k = 3 points vanish; the area is
    0.5·(0 + 0.5)/2 + 0.5·(0.5 + 0)/2 = 0.25."""
    c = qini_curve(Y, T, [1, 1, 0, 0])
    np.testing.assert_allclose(c.fraction, [0, 0.5, 1])
    np.testing.assert_allclose(c.gain, [0, 0.5, 0])
    assert c.area() == pytest.approx(0.25)
    assert auuc(Y, T, [7, 7, 7, 7]) == 0.0


def test_effect_curve_by_hand() -> None:
    """tau = [3, -1, 2, 0] ranked by score [1, 2, 3, 4]: 0, 2, -1, 3 → cumulative 0, 2, 1,
    4, over n = 4; area 0 + 0.0625 + 0.09375 + 0.15625 - 1/2 = -0.1875."""
    c = effect_curve([3, -1, 2, 0], [1, 2, 3, 4])
    np.testing.assert_allclose(c.gain, [0, 0, 0.5, 0.25, 1])
    assert c.area() == pytest.approx(-0.1875)


def test_propensity_weights_by_hand() -> None:
    """Weights 1/e for treated, 1/(1-e) for control: ranked (T, y, e) = (1, 2, 0.5),
    (0, 1, 0.25), (1, 0, 0.8), (0, 0, 0.6); weights 2, 4/3, 1.25, 2.5.
    k = 1: Q = S_T = 4. k = 2: S_T = 4, W_T = 2, S_C = 4/3, W_C = 4/3 → Q = 4 - 2 = 2.
    k = 3: W_T = 3.25 → Q = 4 - (4/3)(3.25/(4/3)) = 0.75.
    k = 4: W_T = 3.25, W_C = 23/6 → Q = 4 - (4/3)(3.25/(23/6)) = 4 - 26/23; gain = Q/3.25."""
    c = qini_curve([2, 1, 0, 0], [1, 0, 1, 0], [4, 3, 2, 1], propensity=[0.5, 0.25, 0.8, 0.6])
    np.testing.assert_allclose(c.gain, [0, 4 / 3.25, 2 / 3.25, 0.75 / 3.25, (4 - 26 / 23) / 3.25])


def test_random_ranking_scores_zero_in_expectation() -> None:
    c = campaign(2000, seed=20)
    rng = np.random.default_rng(0)
    areas = np.array([auuc(c.y, c.treated, rng.random(c.y.size)) for _ in range(300)])
    assert abs(areas.mean()) < 4 * areas.std(ddof=1) / np.sqrt(areas.size)
    # the same number of draws detects a useful ranking at once
    assert auuc(c.y, c.treated, c.tau) > 5 * areas.std(ddof=1)


def test_oracle_beats_model_beats_random() -> None:
    train, test = campaign(4000, seed=21), campaign(3000, seed=22)
    pred = XLearner(num_threads=1).fit(train.X, train.treated, train.y).predict(test.X)
    oracle = auuc(test.y, test.treated, test.tau)
    model = auuc(test.y, test.treated, pred)
    assert oracle > model > 0
    ev = evaluate_uplift(test.y, test.treated, pred, true_effect=test.tau)
    assert ev.auuc == pytest.approx(model)
    assert 0 < ev.true_auuc < ev.oracle_auuc  # type: ignore[operator]
    assert 0.6 < ev.qini_coefficient < 1  # type: ignore[operator]
    assert ev.pearson == pytest.approx(np.corrcoef(pred, test.tau)[0, 1])
    assert ev.spearman == pytest.approx(stats.spearmanr(pred, test.tau).statistic)
    same = evaluate_uplift(test.y, test.treated, test.tau, true_effect=test.tau)
    assert same.qini_coefficient == pytest.approx(1.0)


def test_uplift_at_k() -> None:
    """Top half of ranked (T, y): (1, 3), (0, 1) → 3 - 1 = 2; one unit per arm → se 0."""
    r = uplift_at_k([3, 1, 1, 0], [1, 0, 1, 0], [4, 3, 2, 1], 0.5)
    assert (r.n, r.n_treated, r.n_control, r.uplift, r.se, r.reason) == (2, 1, 1, 2.0, 0.0, "ok")
    r = uplift_at_k([3, 1, 1, 0], [1, 1, 0, 0], [4, 3, 2, 1], 0.25)
    assert r.reason == NO_CONTROL and np.isnan(r.uplift)
    assert uplift_at_k([3, 1], [0, 1], [2, 1], 0.5).reason == NO_TREATED
    # ⌈0.3·10⌉ = 3 units; Welch-style arm variances over n
    y = np.array([5.0, 1.0, 4.0, 0.0, 0, 0, 0, 0, 0, 0])
    t = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    r = uplift_at_k(y, t, -np.arange(10.0), 0.3)
    assert (r.n, r.uplift) == (3, 3.5)
    assert r.se == pytest.approx(np.sqrt(np.var([5.0, 4.0]) / 2))
    with pytest.raises(InvalidInput, match=r"fraction must be in \(0, 1\]"):
        uplift_at_k(y, t, y, 0.0)


def test_evaluation_without_truth_and_edge_cases() -> None:
    ev = evaluate_uplift(Y, T, [1, 1, 1, 1], fractions=(0.5, 1.0))
    assert ev.auuc == 0.0 and ev.ate == 0.0
    assert ev.pearson is None and ev.qini_coefficient is None
    assert [r.fraction for r in ev.uplift_at] == [0.5, 1.0]
    flat = evaluate_uplift(Y, T, [1, 1, 1, 1], true_effect=[0.5, 0.5, 0.5, 0.5])
    assert flat.pearson is None and flat.oracle_auuc == 0.0 and flat.qini_coefficient is None
    assert set(ev.as_dict()) >= {"auuc", "uplift_at_50pct", "uplift_at_100pct"}
    with pytest.raises(InvalidInput, match="score is empty"):
        auuc([], [], [])
    with pytest.raises(InvalidInput, match="y has 3 rows"):
        auuc([1, 0, 1], T, [4, 3, 2, 1])
    with pytest.raises(InvalidInput, match="got 0 treated and 4 control"):
        auuc(Y, [0, 0, 0, 0], [4, 3, 2, 1])


arms = st.lists(
    st.tuples(st.floats(-5, 5), st.booleans(), st.integers(-3, 3)), min_size=2, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(arms)
def test_auuc_depends_only_on_the_ranking(rows: list[tuple[float, bool, int]]) -> None:
    y = np.array([r[0] for r in rows])
    t = np.array([r[1] for r in rows])
    s = np.array([r[2] for r in rows], dtype=float)
    assume(t.any() and (~t).any())
    base = qini_curve(y, t, s)
    for transformed in (3 * s + 1, np.exp(s)):
        c = qini_curve(y, t, transformed)
        np.testing.assert_allclose(c.gain, base.gain)
    # constant propensity changes nothing; the end point is the difference in means
    np.testing.assert_allclose(qini_curve(y, t, s, propensity=0.3).gain, base.gain, atol=1e-12)
    assert base.gain[-1] == pytest.approx(y[t].mean() - y[~t].mean(), abs=1e-12)
    # rows may be listed in any order
    perm = np.random.default_rng(len(rows)).permutation(len(rows))
    np.testing.assert_allclose(qini_curve(y[perm], t[perm], s[perm]).gain, base.gain)
