"""The shared likelihood machinery: gradients, weights, validation and failure modes."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput, LiucunError, NotFittedError
from liucun.models.btyd import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    ConvergenceError,
    FitWarning,
    GammaGammaModel,
    LikelihoodModel,
    ModifiedBetaGeoModel,
    NoStandardErrorsWarning,
    ParetoNBDModel,
)

RFT_MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]


def _isort_key(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_btyd_all_is_sorted_and_resolvable() -> None:
    """``__all__`` is in ruff's RUF022 order and every name exists."""
    module = importlib.import_module("liucun.models.btyd")
    assert list(module.__all__) == sorted(module.__all__, key=_isort_key)
    for name in module.__all__:
        assert hasattr(module, name)


def _data_for(model: LikelihoodModel, cdnow: pd.DataFrame, donations: pd.DataFrame) -> dict:
    sample = cdnow.iloc[::7]
    if isinstance(model, BetaGeoBetaBinomModel):
        return {
            k: donations[c].to_numpy(float)
            for k, c in (("x", "frequency"), ("tx", "recency"), ("n", "periods"))
        }
    if isinstance(model, GammaGammaModel):
        rep = sample[sample["frequency"] > 0]
        return {"x": rep["frequency"].to_numpy(float), "m": rep["monetary_value"].to_numpy(float)}
    return {
        k: sample[c].to_numpy(float) for k, c in (("x", "frequency"), ("tx", "recency"), ("T", "T"))
    }


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (BetaGeoModel(), [0.3, 5.0, 0.7, 2.0]),
        (BetaGeoModel(), [1.7, 0.4, 3.0, 0.6]),
        (ModifiedBetaGeoModel(), [0.4, 6.0, 0.9, 1.5]),
        (ModifiedBetaGeoModel(), [2.0, 0.5, 4.0, 0.3]),
        (ParetoNBDModel(), [0.5, 10.0, 0.6, 12.0]),
        (ParetoNBDModel(), [1.3, 3.0, 2.0, 0.8]),
        (BetaGeoBetaBinomModel(), [1.1, 0.8, 0.6, 2.5]),
        (BetaGeoBetaBinomModel(), [0.3, 2.0, 1.5, 0.4]),
        (GammaGammaModel(), [6.0, 3.5, 15.0]),
        (GammaGammaModel(), [0.8, 1.2, 40.0]),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, LikelihoodModel) else "",
)
def test_analytic_gradient_matches_finite_differences(
    model: LikelihoodModel, params: list[float], cdnow: pd.DataFrame, donations: pd.DataFrame
) -> None:
    """The exact gradient equals a central finite difference (step 1e-6, relative)."""
    data = _data_for(model, cdnow, donations)
    p = np.asarray(params, dtype=float)
    _, grad = model._negative_log_likelihood(p, data)
    analytic = grad.sum(axis=0)
    numeric = np.empty_like(p)
    for j in range(len(p)):
        h = 1e-6 * p[j]
        up, down = p.copy(), p.copy()
        up[j] += h
        down[j] -= h
        numeric[j] = (
            model._negative_log_likelihood(up, data)[0].sum()
            - model._negative_log_likelihood(down, data)[0].sum()
        ) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("model_cls", RFT_MODELS)
def test_weights_equal_expanded_rows(model_cls: type, cdnow: pd.DataFrame) -> None:
    """CDNOW with times rounded to whole weeks, collapsed to a weighted histogram, fits
    exactly like the one-row-per-customer data."""
    rows = pd.DataFrame(
        {
            "x": cdnow["frequency"].to_numpy(float),
            "tx": np.floor(cdnow["recency"].to_numpy()),
            "T": np.ceil(cdnow["T"].to_numpy()),
        }
    )
    hist = rows.groupby(["x", "tx", "T"]).size().rename("w").reset_index()
    assert len(hist) < len(rows) / 2
    weighted = model_cls().fit(hist["x"], hist["tx"], hist["T"], weights=hist["w"])
    expanded = model_cls().fit(rows["x"], rows["tx"], rows["T"])
    for k in model_cls.param_names:
        assert weighted.params_[k] == pytest.approx(expanded.params_[k], rel=1e-4), k
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-9)
    assert weighted.n_obs_ == expanded.n_obs_ == len(rows)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([-1, 2], [0, 3], [5, 5]), "frequency must be non-negative"),
        (([1.5, 2], [1, 3], [5, 5]), "whole numbers"),
        (([1, 2], [6, 3], [5, 5]), "recency must not exceed T"),
        (([0, 2], [1, 3], [5, 5]), "recency must be 0 when frequency is 0"),
        (([1, 2], [-1, 3], [5, 5]), "recency must be non-negative"),
        (([1, 2], [1, 3], [5]), "same length"),
        (([1, np.nan], [1, 3], [5, 5]), "NaN"),
        ((["a", 1], [1, 3], [5, 5]), "numeric"),
    ],
)
@pytest.mark.parametrize("model_cls", RFT_MODELS)
def test_bad_inputs_raise_invalid_input(model_cls: type, args: tuple, match: str) -> None:
    """Validation happens in fit and names the problem."""
    with pytest.raises(InvalidInput, match=match):
        model_cls().fit(*args)


def test_bad_weights_and_hyperparameters() -> None:
    """Weights must match and be non-negative; hyper-parameters are checked in fit."""
    with pytest.raises(InvalidInput, match="weights has length"):
        BetaGeoModel().fit([1, 2], [1, 3], [5, 5], weights=[1])
    with pytest.raises(InvalidInput, match="weights must be non-negative"):
        BetaGeoModel().fit([1, 2], [1, 3], [5, 5], weights=[1, -1])
    with pytest.raises(InvalidInput, match="penalizer"):
        BetaGeoModel(penalizer=-1.0).fit([1, 2], [1, 3], [5, 5])
    assert isinstance(InvalidInput("x"), LiucunError)


def test_init_only_stores() -> None:
    """scikit-learn's contract: keyword-only, no validation or fitted state in __init__."""
    m = BetaGeoModel(penalizer=-5.0, max_iter=3)
    assert (m.penalizer, m.max_iter) == (-5.0, 3)
    assert not hasattr(m, "params_")
    with pytest.raises(TypeError):
        BetaGeoModel(0.1)  # type: ignore[misc]


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.p_alive(1, 1.0, 2.0),
        lambda m: m.expected_transactions(1.0),
        lambda m: m.summary(),
    ],
)
def test_unfitted_model_raises(call) -> None:  # type: ignore[no-untyped-def]
    """Predictions before fit raise NotFittedError (also a ValueError and AttributeError)."""
    with pytest.raises(NotFittedError, match="not fitted"):
        call(BetaGeoModel())


@pytest.mark.parametrize("model_cls", [*RFT_MODELS, BetaGeoBetaBinomModel])
def test_degenerate_data_do_not_fit_silently(model_cls: type) -> None:
    """Nobody ever buys again: the repeat-buying process is not identified, so the fit either
    raises ConvergenceError or warns with FitWarning and reports the degradation (the
    optimiser did not converge, or there are no standard errors)."""
    n = 300
    zeros = np.zeros(n)
    horizon = np.full(n, 6.0) if model_cls is BetaGeoBetaBinomModel else np.linspace(1, 39, n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = model_cls().fit(zeros, zeros, horizon)
        except ConvergenceError as exc:
            assert "What to try" in str(exc)
            return
    assert any(issubclass(w.category, FitWarning) for w in caught)
    assert model.converged_ is False or model.has_standard_errors_ is False
    assert model.fit_notes_


def test_iteration_limit_raises_convergence_error(cdnow_xtT) -> None:  # type: ignore[no-untyped-def]
    """Stopping far from the optimum is an error with a checklist, not a silent result."""
    with pytest.raises(ConvergenceError, match="raise max_iter"):
        BetaGeoModel(max_iter=1).fit(*cdnow_xtT)


def test_penalizer_shrinks_parameters(cdnow_xtT, bgnbd_cdnow: BetaGeoModel) -> None:  # type: ignore[no-untyped-def]
    """An L2 penalty pulls the largest parameter toward zero and lowers the likelihood."""
    pen = BetaGeoModel(penalizer=0.01).fit(*cdnow_xtT)
    assert pen.params_["alpha"] < bgnbd_cdnow.params_["alpha"]
    assert pen.log_likelihood_ < bgnbd_cdnow.log_likelihood_


def test_a_singular_hessian_keeps_the_optimum_but_not_the_standard_errors(
    cdnow_xtT,  # type: ignore[no-untyped-def]
) -> None:
    """Converged and standard errors are separate facts: a parameter the likelihood does
    not depend on makes the Hessian singular while the optimiser still converges on the
    others. Its summary shows NaN standard errors and says why."""

    class Padded(BetaGeoModel):
        param_names = ("r", "alpha", "a", "b", "unused")

        def _initial_params(self, data, weights):  # type: ignore[no-untyped-def]
            return np.r_[super()._initial_params(data, weights), 1.0]

        def _negative_log_likelihood(self, params, data):  # type: ignore[no-untyped-def]
            nll, grad = super()._negative_log_likelihood(params[:4], data)
            return nll, np.column_stack([grad, np.zeros(len(nll))])

    with pytest.warns(NoStandardErrorsWarning, match="standard errors are NaN"):
        model = Padded().fit(*cdnow_xtT)
    assert model.converged_ is True and model.has_standard_errors_ is False
    assert model.params_["r"] == pytest.approx(0.243, abs=1e-3)  # the published fit
    table = model.summary()
    assert table["se"].isna().all()
    assert table.attrs["has_standard_errors"] is False and table.attrs["converged"] is True
    assert any("Hessian" in note for note in table.attrs["notes"])


def test_a_clean_fit_has_both_flags_and_no_notes(bgnbd_cdnow: BetaGeoModel) -> None:
    assert bgnbd_cdnow.converged_ and bgnbd_cdnow.has_standard_errors_
    assert bgnbd_cdnow.fit_notes_ == ()
    assert bgnbd_cdnow.summary().attrs["notes"] == []
