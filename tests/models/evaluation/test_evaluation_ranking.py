"""Lift and capture at the top of a ranking, by hand and by their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import InvalidInput
from liucun.models.evaluation import capture, gains_table, lift


def test_capture_and_lift_by_hand() -> None:
    # 10 customers ranked 9..0; churners at ranks 1, 3 and 10 (3 of 10, base rate 0.3)
    y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    s = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert capture(y, s, 0.1) == pytest.approx(1 / 3)  # top 1 customer: 1 churner
    assert lift(y, s, 0.1) == pytest.approx((1 / 1) / 0.3)
    assert capture(y, s, 0.2) == pytest.approx(1 / 3)  # top 2: still 1
    assert capture(y, s, 0.3) == pytest.approx(2 / 3)  # top 3: 2
    assert lift(y, s, 0.3) == pytest.approx((2 / 3) / 0.3)
    assert capture(y, s, 1.0) == 1.0
    assert lift(y, s, 1.0) == 1.0
    # 5 % of 10 customers is half a customer: half of the top churner
    assert capture(y, s, 0.05) == pytest.approx(0.5 / 3)


def test_ties_straddling_the_cut_count_in_proportion() -> None:
    # top score 5 (a churner); then four tied at 3 holding two churners; then the rest
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([5, 3, 3, 3, 3, 1, 1, 1, 1, 1])
    # top 30 % = 3 customers: the 5, and 2 of the 4 tied (each worth 2/4 churner)
    assert capture(y, s, 0.3) == pytest.approx((1 + 2 * 2 / 4) / 3)
    # the order of tied rows does not matter
    swap = np.array([0, 3, 2, 1, 4, 5, 6, 7, 8, 9])
    assert capture(y[swap], s[swap], 0.3) == capture(y, s, 0.3)
    # a score that ties everybody has lift 1 everywhere
    for f in (0.05, 0.1, 0.2, 0.5):
        assert lift(y, np.zeros(10), f) == pytest.approx(1.0)


def test_gains_table_columns() -> None:
    y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    s = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    table = gains_table(y, s, [0.1, 0.3])
    assert list(table.columns) == [
        "fraction",
        "customers",
        "positives",
        "capture",
        "precision",
        "lift",
    ]
    np.testing.assert_allclose(table["customers"], [1, 3])
    np.testing.assert_allclose(table["positives"], [1, 2])
    np.testing.assert_allclose(table["precision"], [1, 2 / 3])
    np.testing.assert_allclose(table["lift"], [1 / 0.3, (2 / 3) / 0.3])


labelled = st.integers(min_value=1, max_value=80).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: sum(v) > 0),
        st.lists(st.integers(0, 20), min_size=n, max_size=n),
        st.floats(0.01, 1.0),
    )
)


@settings(max_examples=80, deadline=None)
@given(labelled, st.randoms(use_true_random=False))
def test_capture_properties(data, rnd) -> None:  # type: ignore[no-untyped-def]
    y, s, f = np.array(data[0]), np.array(data[1], dtype=float), data[2]
    got = capture(y, s, f)
    assert 0.0 <= got <= 1.0 + 1e-12
    assert capture(y, s, 1.0) == pytest.approx(1.0)
    assert lift(y, s, f) == pytest.approx(got / f)
    # monotone in the share, invariant to monotone transforms and to row order
    assert capture(y, s, min(1.0, f + 0.1)) >= got - 1e-12
    assert capture(y, np.exp(s / 5) - 3, f) == pytest.approx(got, abs=1e-12)
    order = list(range(len(y)))
    rnd.shuffle(order)
    assert capture(y[order], s[order], f) == pytest.approx(got, abs=1e-12)
    # a perfect ranking captures min(1, f n / positives)
    assert capture(y, y.astype(float), f) == pytest.approx(min(1.0, f * len(y) / y.sum()))


def test_random_score_has_lift_near_one() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(50_000) < 0.2).astype(int)
    table = gains_table(y, rng.random(y.size))
    np.testing.assert_allclose(table["lift"], 1.0, atol=0.08)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: capture([0, 0], [1, 2], 0.1), "no positive"),
        (lambda: capture([0, 1], [1, 2], 0.0), r"fractions must lie in \(0, 1\]"),
        (lambda: lift([0, 1], [1, 2], 1.5), "0.1 means the top 10 %"),
        (lambda: gains_table([0, 1], [1, 2], []), "fractions is empty"),
    ],
)
def test_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=match):
        call()
