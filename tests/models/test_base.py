"""One estimator contract: parameters in ``__init__``, ``get_params``/``set_params`` and
``sklearn.base.clone`` for every model, and NotFittedError from liucun.core."""

from __future__ import annotations

import pytest
from sklearn.base import clone

from liucun.core import ConfigError, NotFittedError, as_utc
from liucun.models import CustomerValueModel, Estimator, check_is_fitted
from liucun.models._base import as_cutoff
from liucun.models.btyd import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from liucun.models.churn import ChurnModel
from liucun.models.uplift import DRLearner, TLearner, XLearner

ESTIMATORS = [
    BetaGeoModel(penalizer=0.01, max_iter=50),
    ModifiedBetaGeoModel(tol=1e-8),
    ParetoNBDModel(penalizer=0.1),
    BetaGeoBetaBinomModel(max_iter=20),
    GammaGammaModel(penalizer=0.001),
    CustomerValueModel(horizons=(30, 60)),
    ChurnModel(horizon_days=60, params={"num_leaves": 7}, n_estimators=50, random_state=3),
    TLearner(n_estimators=9, random_state=2),
    XLearner(learning_rate=0.1, params={"lambda_l2": 1.0}),
    DRLearner(n_folds=4, num_threads=1),
]


@pytest.mark.parametrize("model", ESTIMATORS, ids=lambda m: type(m).__name__)
def test_clone_gives_an_unfitted_copy_with_equal_params(model: Estimator) -> None:
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == model.get_params()
    assert copy.get_params(deep=False) == model.get_params(deep=False)


@pytest.mark.parametrize("model", ESTIMATORS, ids=lambda m: type(m).__name__)
def test_set_params_changes_one_parameter_and_refuses_unknown_ones(model: Estimator) -> None:
    name = next(iter(model.get_params(deep=False)))
    copy = clone(model)
    value = object()
    assert copy.set_params(**{name: value}) is copy and copy.get_params()[name] is value
    with pytest.raises(ConfigError, match="has no parameter 'seed'"):
        clone(model).set_params(seed=1)


def test_clone_of_a_fitted_model_is_unfitted() -> None:
    import numpy as np

    fitted = GammaGammaModel().fit(np.array([1, 2, 3, 1, 4] * 20), np.linspace(5, 50, 100))
    copy = clone(fitted)
    assert hasattr(fitted, "params_") and not hasattr(copy, "params_")
    with pytest.raises(NotFittedError, match="not fitted"):
        copy.conditional_expected_spend(1, 10.0)


def test_one_naming_scheme() -> None:
    """random_state, never seed; n_estimators for boosting rounds; max_iter for optimisers."""
    for model in ESTIMATORS:
        names = set(model.get_params())
        assert not names & {"seed", "num_boost_round", "maxiter", "n_iter"}, type(model)
    assert (
        "random_state" in ChurnModel().get_params() and "n_estimators" in ChurnModel().get_params()
    )
    assert "max_iter" in BetaGeoModel().get_params()


def test_positional_parameters_break_the_contract() -> None:
    class Loose(Estimator):
        def __init__(self, factor: float = 1.0) -> None:
            self.factor = factor

    with pytest.raises(TypeError, match="keyword-only"):
        Loose().get_params()


def test_not_fitted_error_lives_in_core() -> None:
    import liucun.models.btyd as btyd

    assert not hasattr(btyd, "NotFittedError")
    with pytest.raises(NotFittedError, match="call fit\\(\\) first") as caught:
        check_is_fitted(CustomerValueModel(), "orders_model_")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, AttributeError)


def test_the_one_engine_boundary_for_cut_offs() -> None:
    from datetime import UTC, date, datetime, timedelta, timezone

    aware = datetime(2026, 7, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert as_cutoff(aware) == datetime(2026, 7, 1)
    assert as_cutoff(date(2026, 7, 1)) == datetime(2026, 7, 1)
    assert as_utc(as_cutoff(aware)) == aware.astimezone(UTC)
    with pytest.raises(ConfigError, match="date or datetime"):
        as_cutoff("2026-07-01")  # type: ignore[arg-type]
