"""One call over a grid of 1,000 experiments × 10 metrics equals the scalar calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from liucun.experiments.stats import (
    CupedStat,
    MeanStat,
    ProportionStat,
    RatioStat,
    bayesian_test,
    cuped_ttest,
    proportion_test,
    ratio_test,
    sequential_test,
    welch_ttest,
)

SHAPE = (1_000, 10)


def _grid(rng: np.random.Generator, lift: float) -> dict[str, Any]:
    n = rng.integers(0, 3_000, SHAPE).astype(float)
    n[0, :4] = [0, 1, 2, 5]  # edge cases: empty arm, one unit, tiny arms
    x = rng.gamma(2.0, 10.0, SHAPE) * (1 + lift)
    sd = rng.uniform(0.0, 20.0, SHAPE)
    sd[1, 0] = 0.0  # no variance in this arm
    pre = rng.gamma(2.0, 10.0, SHAPE)
    cross = n * (x * pre + 0.5 * sd * 10.0)  # covariate: sd 10, correlation 0.5
    d = rng.uniform(1.0, 3.0, SHAPE)  # ratio denominator: mean d, sd 1, correlation 0.5
    return {
        "mean": MeanStat(n, x * n, (x * x + sd * sd) * n),
        "prop": ProportionStat(n, np.floor(n * rng.uniform(0, 0.3, SHAPE))),
        "ratio": RatioStat(
            n, x * n, (x * x + sd * sd) * n, d * n, (d * d + 1.0) * n, n * (x * d + 0.5 * sd)
        ),
        "cuped": CupedStat(
            n, x * n, (x * x + sd * sd) * n, pre * n, (pre * pre + 100.0) * n, cross
        ),
    }


def _element(stat: Any, idx: tuple[int, int]) -> Any:
    return type(stat)(
        **{f.name: float(np.asarray(getattr(stat, f.name))[idx]) for f in fields(stat)}
    )


CASES: list[tuple[str, Callable[..., Any]]] = [
    ("mean", welch_ttest),
    ("prop", proportion_test),
    ("ratio", ratio_test),
    ("cuped", cuped_ttest),
    ("mean", sequential_test),
    ("prop", sequential_test),
    ("cuped", bayesian_test),
]


@pytest.mark.parametrize(("kind", "test"), CASES)
@pytest.mark.parametrize("relative", [False, True])
def test_vectorized_equals_scalar(kind: str, test: Callable[..., Any], relative: bool) -> None:
    rng = np.random.default_rng(99)
    control, treatment = _grid(rng, 0.0)[kind], _grid(rng, 0.02)[kind]
    grid = test(control, treatment, relative=relative)
    assert np.shape(grid.reason) == SHAPE
    picks = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    picks += [tuple(i) for i in rng.integers(0, SHAPE, (60, 2))]
    for idx in picks:
        one = test(_element(control, idx), _element(treatment, idx), relative=relative)
        assert one.reason == grid.reason[idx]
        for f in fields(one):
            got, want = getattr(grid, f.name), getattr(one, f.name)
            if f.name == "reason":
                continue
            if isinstance(got, np.ndarray):
                if want is None:
                    assert np.isnan(got[idx]), (f.name, idx)
                else:
                    assert got[idx] == pytest.approx(want, rel=1e-12, abs=1e-300), (f.name, idx)
            else:
                assert got == want
    assert (grid.reason == "ok").mean() > 0.9  # the grid is mostly analysable
