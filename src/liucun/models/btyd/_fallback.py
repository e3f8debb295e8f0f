"""Fitting with a penalizer when the plain maximum-likelihood fit fails."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol, Self, TypeVar

from liucun.models.btyd._base import ConvergenceError, FitWarning

#: Penalizers tried in turn (0 first: the unpenalized MLE).
PENALIZERS: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)


class _Penalized(Protocol):
    def __init__(self, *, penalizer: float = ...) -> None: ...

    def fit(self, *args: Any) -> Self: ...


M = TypeVar("M", bound=_Penalized)


def fit_with_penalizers(
    model_type: type[M],
    *arrays: Any,
    penalizers: Sequence[float] = PENALIZERS,
    warn: bool = True,
) -> tuple[M, float]:
    """Fit ``model_type(penalizer=p)`` on ``arrays`` for each ``p`` in turn until one
    converges; return the model and the penalizer used.

    A short or sparse history often leaves a model's parameters unidentified (they run to
    a bound); a small penalty fixes that at the price of a little shrinkage, which a
    :class:`FitWarning` reports (unless ``warn=False``). Raises the last
    :class:`ConvergenceError` when every penalizer fails.
    """
    failure = ConvergenceError(f"no penalizer to try for {model_type.__name__}")
    for penalizer in penalizers:
        try:
            model = model_type(penalizer=penalizer).fit(*arrays)
        except ConvergenceError as exc:
            failure = exc
            continue
        if penalizer > 0 and warn:
            warnings.warn(
                f"{model_type.__name__} did not converge unpenalized; used penalizer "
                f"{penalizer} (its parameters are shrunk a little towards 0)",
                FitWarning,
                stacklevel=2,
            )
        return model, penalizer
    raise failure
