"""Classification metrics against scikit-learn (to 1e-12) and their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import calibration as skc
from sklearn import metrics as skm

from liucun.core import InvalidInput
from liucun.models.evaluation import (
    brier_score,
    calibration_curve,
    expected_calibration_error,
    log_loss,
    pr_auc,
    roc_auc,
)


def _data(seed: int, n: int = 400, *, rounded: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from the probabilities, rounded so that many scores tie."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 3.0, n)
    if rounded:
        p = np.round(p, 2)
    return (rng.random(n) < p).astype(int), p


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed: int) -> None:
    y, p = _data(seed)
    assert roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)


def test_log_loss_clips_certain_misses_like_scikit_learn() -> None:
    y, p = np.array([1, 0, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0])
    got = log_loss(y, p)
    assert np.isfinite(got) and got > 15
    assert got == pytest.approx(skm.log_loss(y, p), rel=1e-12)
    want = -(2 * np.log(0.01) + 2 * np.log(0.99)) / 4  # two clipped misses, two clipped hits
    assert log_loss(y, p, eps=0.01) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("seed", range(3))
def test_calibration_curve_matches_scikit_learn(strategy: str, seed: int) -> None:
    y, p = _data(seed)
    prob_true, prob_pred = skc.calibration_curve(y, p, n_bins=10, strategy=strategy)
    got = calibration_curve(y, p, n_bins=10, strategy=strategy)  # type: ignore[arg-type]
    np.testing.assert_allclose(got["observed_rate"], prob_true, atol=1e-12)
    np.testing.assert_allclose(got["mean_predicted"], prob_pred, atol=1e-12)
    assert got["customers"].sum() == len(y)
    assert got["events"].sum() == y.sum()
    assert np.all(got["observed_low"] <= got["observed_rate"])
    assert np.all(got["observed_rate"] <= got["observed_high"])


def test_calibration_curve_wilson_interval_by_hand() -> None:
    """One bin, 3 events of 10: Wilson 95 % interval (0.1078, 0.6032) (Wilson 1927)."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    got = calibration_curve(y, np.full(10, 0.3), n_bins=1)
    assert len(got) == 1
    row = got.iloc[0]
    assert (row["customers"], row["events"], row["observed_rate"]) == (10, 3, 0.3)
    assert row["observed_low"] == pytest.approx(0.1078, abs=1e-4)
    assert row["observed_high"] == pytest.approx(0.6032, abs=1e-4)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_is_the_weighted_gap_of_the_calibration_curve(strategy: str) -> None:
    y, p = _data(11)
    curve = calibration_curve(y, p, n_bins=8, strategy=strategy)  # type: ignore[arg-type]
    want = np.sum(
        curve["customers"] / len(y) * np.abs(curve["observed_rate"] - curve["mean_predicted"])
    )
    ece = expected_calibration_error(y, p, n_bins=8, strategy=strategy)  # type: ignore[arg-type]
    assert ece == pytest.approx(want, abs=1e-12)


def test_ece_by_hand_and_default_is_equal_mass() -> None:
    # uniform 2 bins: [0, .5] holds p=.1,.2 (y 0,1): |0.5 - 0.15| ; (.5, 1] holds .9,.9 (1,1)
    y, p = np.array([0, 1, 1, 1]), np.array([0.1, 0.2, 0.9, 0.9])
    want = 0.5 * abs(0.5 - 0.15) + 0.5 * abs(1.0 - 0.9)
    assert expected_calibration_error(y, p, n_bins=2, strategy="uniform") == pytest.approx(want)
    # equal mass: 4 bins of one customer each -> mean |y - p|
    y4, p4 = np.array([0, 1, 0, 1]), np.array([0.1, 0.15, 0.6, 0.8])
    assert expected_calibration_error(y4, p4, n_bins=4) == pytest.approx(0.4375)  # mean |y - p|
    # equal width: 0.1 and 0.15 share [0, .25]: (|1 - .25| + .6 + .2) / 4
    assert expected_calibration_error(y4, p4, n_bins=4, strategy="uniform") == pytest.approx(0.3875)


def test_perfectly_calibrated_large_sample_has_small_ece() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p + 0.1, 0, 1)) > 0.08


def test_auc_and_ap_extremes() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, [1, 2, 3, 4]) == 1.0
    assert roc_auc(y, [4, 3, 2, 1]) == 0.0
    assert roc_auc(y, [5, 5, 5, 5]) == 0.5
    assert pr_auc(y, [1, 2, 3, 4]) == 1.0
    assert pr_auc(y, [5, 5, 5, 5]) == 0.5  # one threshold: precision = base rate
    assert roc_auc(np.array([False, True]), [0.2, 0.1]) == 0.0  # booleans are 0/1


scores_and_labels = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n),
        # whole numbers, so that the transforms below stay strictly increasing in floats
        st.lists(st.integers(-1000, 1000).map(float), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(scores_and_labels)
def test_auc_is_invariant_to_monotone_transforms(data: tuple[list[int], list[float]]) -> None:
    y, s = np.array(data[0]), np.array(data[1])
    base = roc_auc(y, s)
    assert roc_auc(y, np.arctan(s / 100) * 7 + 3) == pytest.approx(base, abs=1e-12)
    assert roc_auc(y, -s) == pytest.approx(1 - base, abs=1e-12)
    assert pr_auc(y, 2 * s + 5) == pytest.approx(pr_auc(y, s), abs=1e-12)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scores_and_labels, st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_row_order(data, rnd) -> None:  # type: ignore[no-untyped-def]
    y, s = np.array(data[0]), np.array(data[1])
    order = list(range(len(y)))
    rnd.shuffle(order)
    p = 1 / (1 + np.exp(-s / 100))
    assert roc_auc(y[order], s[order]) == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert pr_auc(y[order], s[order]) == pytest.approx(pr_auc(y, s), abs=1e-12)
    assert expected_calibration_error(y[order], p[order]) == pytest.approx(
        expected_calibration_error(y, p), abs=1e-12
    )


def test_random_score_has_auc_near_one_half() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20_000)
    assert roc_auc(y, rng.random(y.size)) == pytest.approx(0.5, abs=0.02)
    assert pr_auc(y, rng.random(y.size)) == pytest.approx(y.mean(), abs=0.02)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), "only 1"),
        (lambda: roc_auc([0, 0], [0.1, 0.2]), "only 0"),
        (lambda: pr_auc([0, 0], [0.1, 0.2]), "no positive"),
        (lambda: roc_auc([0, 2], [0.1, 0.2]), "0/1 outcomes.*found 2 at row 1"),
        (lambda: roc_auc([0, 1], [0.1]), "score has 1 values but there are 2 customers"),
        (lambda: roc_auc([0, 1], [0.1, np.nan]), "NaN"),
        (lambda: roc_auc([], []), "empty"),
        (lambda: brier_score([0, 1], [0.1, 1.2]), r"probabilities in \[0, 1\].*Ranking metrics"),
        (lambda: log_loss([0, 1], [0.1, 0.2], eps=0.7), "eps"),
        (lambda: calibration_curve([0, 1], [0.1, 0.2], n_bins=0), "n_bins"),
        (lambda: calibration_curve([0, 1], [0.1, 0.2], strategy="kmeans"), "equal mass"),  # type: ignore[arg-type]
        (lambda: calibration_curve([0, 1], [0.1, 0.2], confidence=1.0), "confidence"),
    ],
)
def test_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=match):
        call()
