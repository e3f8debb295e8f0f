"""Meta-learners of the conditional average treatment effect (CATE) on LightGBM.

All three learn ``τ(x) = E[Y(1) − Y(0) | X = x]`` from randomized data (a past campaign or
an experiment): a treatment flag per unit and its known assignment probability
(``propensity``; default: the observed treated share).

- :class:`TLearner` — one outcome model per arm; ``τ(x) = μ₁(x) − μ₀(x)``.
- :class:`XLearner` — Künzel et al. (2019): impute each unit's effect with the other
  arm's outcome model, regress the imputed effects per arm and blend them with the
  propensity, ``τ(x) = e(x)·τ₀(x) + (1 − e(x))·τ₁(x)``. Strong when one arm is much
  smaller than the other.
- :class:`DRLearner` — Kennedy (2023): cross-fitted outcome models give the doubly robust
  pseudo-outcome ``μ₁ − μ₀ + T(Y − μ₁)/e − (1 − T)(Y − μ₀)/(1 − e)``, which is regressed
  on the features. With a known propensity it is unbiased for ``τ(x)`` whatever the
  outcome models' errors.

Outcome models are LightGBM classifiers for a binary outcome, Poisson regressors for
counts (``outcome="count"``, e.g. orders) and least-squares regressors otherwise (revenue);
effect models are always least-squares regressors. Training is deterministic by default
(``random_state``, ``deterministic=True``, ``force_col_wise=True``); ``num_threads`` sets the
threads (0 = LightGBM's default).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol, Self

import lightgbm as lgb
import numpy as np
import pandas as pd

from liucun.core import ConfigError, InvalidInput
from liucun.models._base import Estimator, check_is_fitted
from liucun.models.uplift._evaluation import ipw_difference
from liucun.models.uplift._inputs import (
    BoolArray,
    FeatureEncoder,
    Features,
    FloatArray,
    as_float,
    as_propensity,
    as_treatment,
    n_rows,
    require_both_arms,
)

Outcome = Literal["auto", "binary", "continuous", "count"]
OUTCOMES: tuple[str, ...] = ("auto", "binary", "continuous", "count")
_OBJECTIVE = {"binary": "binary", "continuous": "regression", "count": "poisson"}
#: Parameters liucun sets itself; ``params`` may not override them.
_RESERVED = ("objective", "num_iterations", "num_boost_round", "n_estimators")


class _Model(Protocol):
    def predict(self, X: Any, /) -> Any: ...


class _Constant:
    """The model of a target that does not vary (LightGBM cannot fit one class)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: Features) -> FloatArray:
        return np.full(n_rows(X), self.value)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name} must be a whole number ≥ {low}, got {value!r}")


class UpliftLearner(Estimator, abc.ABC):
    """Shared parameters, validation and LightGBM training of the meta-learners.

    Parameters
    ----------
    n_estimators
        Boosting rounds of every LightGBM model.
    learning_rate, num_leaves, min_child_samples
        LightGBM's ``learning_rate``, ``num_leaves`` and ``min_data_in_leaf``. The defaults
        are conservative (100 units per leaf) because a campaign's effect is small next
        to the noise of individual outcomes; lower ``min_child_samples`` on small data.
    params
        Any other LightGBM parameters (main names, e.g. ``{"lambda_l2": 1.0,
        "feature_fraction": 0.8}``); they override the defaults above. The objective is
        chosen by ``outcome`` and the rounds by ``n_estimators``.
    outcome
        ``"binary"`` (0/1, e.g. converted), ``"count"`` (orders; Poisson outcome models),
        ``"continuous"`` (revenue; least squares) or ``"auto"``: binary when every
        outcome is 0 or 1, continuous otherwise.
    random_state
        LightGBM ``seed`` (and the fold split of :class:`DRLearner`).
    num_threads
        LightGBM threads; 0 uses LightGBM's default (all cores).
    """

    #: Short name used by :func:`make_learner` and in summaries.
    name: ClassVar[str]
    #: The fitted attribute ``_fit`` sets last (a failed fit leaves the model unfitted).
    _last_fitted: ClassVar[str]

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        params: Mapping[str, Any] | None = None,
        outcome: Outcome = "auto",
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.params = params
        self.outcome = outcome
        self.random_state = random_state
        self.num_threads = num_threads

    # -- parameters ---------------------------------------------------------------------

    def _validate_params(self) -> None:
        _check_int("n_estimators", self.n_estimators, 1)
        _check_int("num_leaves", self.num_leaves, 2)
        _check_int("min_child_samples", self.min_child_samples, 1)
        _check_int("random_state", self.random_state, 0)
        _check_int("num_threads", self.num_threads, 0)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ConfigError(f"learning_rate must be a number > 0, got {rate!r}")
        if self.outcome not in OUTCOMES:
            raise ConfigError(f"outcome must be one of {', '.join(OUTCOMES)}; got {self.outcome!r}")
        if self.params is not None:
            if not isinstance(self.params, Mapping):
                raise ConfigError(
                    f"params must be a mapping of LightGBM parameters, got "
                    f"{type(self.params).__name__}"
                )
            clash = sorted(set(self.params) & set(_RESERVED))
            if clash:
                raise ConfigError(
                    f"params may not set {clash}: choose the objective with outcome= and the "
                    "number of rounds with n_estimators="
                )

    def lightgbm_params(self, objective: str = "regression") -> dict[str, Any]:
        """The LightGBM parameters of one model (defaults, then ``params``)."""
        out: dict[str, Any] = {
            "objective": objective,
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "seed": int(self.random_state),
            "num_threads": int(self.num_threads),
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        out.update(self.params or {})
        return out

    def _train(self, X: Features, y: FloatArray, objective: str) -> _Model:
        """Fit one LightGBM model (a constant when the target does not vary)."""
        if y.size == 0 or np.ptp(y) == 0.0:
            return _Constant(float(y[0]) if y.size else 0.0)
        params = self.lightgbm_params(objective)
        data = lgb.Dataset(X, label=y, params=params)
        return lgb.train(params, data, num_boost_round=int(self.n_estimators))

    def _outcome_model(self, X: Features, y: FloatArray) -> _Model:
        return self._train(X, y, _OBJECTIVE[self.outcome_])

    # -- fit / predict ------------------------------------------------------------------

    def fit(self, X: Features, treatment: Any, y: Any, propensity: Any = None) -> Self:
        """Learn the treatment effect from randomized data.

        Parameters
        ----------
        X
            Features known before treatment (DataFrame or 2-D array), one row per unit.
        treatment
            1/True for treated units, 0/False for control.
        y
            Outcome per unit (e.g. orders or revenue in the window after the start).
        propensity
            Probability each unit had of being treated (scalar or per unit, strictly
            between 0 and 1); default the observed treated share.

        Returns
        -------
        self
        """
        self._validate_params()
        self.encoder_ = FeatureEncoder()
        Xf = self.encoder_.fit_transform(X)
        n = n_rows(Xf)
        t = as_treatment(treatment, n)
        yy = as_float("y", y, n)
        require_both_arms(t)
        e = as_propensity(propensity, t)
        self.outcome_ = self._resolve_outcome(yy)
        self.n_features_in_ = self.encoder_.n_features
        if self.encoder_.columns is not None:
            self.feature_names_in_ = np.array(self.encoder_.columns, dtype=object)
        self.n_treated_ = int(t.sum())
        self.n_control_ = int(n - self.n_treated_)
        self.propensity_ = float(e.mean())
        self.ate_, self.ate_se_ = ipw_difference(yy, t, e)
        self._fit(Xf, t, yy, e)
        return self

    def _resolve_outcome(self, y: FloatArray) -> str:
        binary = bool(np.isin(y, (0.0, 1.0)).all())
        if self.outcome == "auto":
            return "binary" if binary else "continuous"
        if self.outcome == "binary" and not binary:
            raise InvalidInput("outcome='binary' needs y in {0, 1}; use outcome='continuous'")
        if self.outcome == "count" and (y < 0).any():
            raise InvalidInput("outcome='count' needs y ≥ 0 (e.g. orders); use 'continuous'")
        return str(self.outcome)

    @abc.abstractmethod
    def _fit(self, X: Features, t: BoolArray, y: FloatArray, e: FloatArray) -> None: ...

    def _check_fitted(self) -> None:
        check_is_fitted(self, self._last_fitted, how="fit(X, treatment, y)")

    def _features(self, X: Features) -> Features:
        self._check_fitted()
        return self.encoder_.transform(X)

    def _outcome_predict(self, model: _Model, X: Features) -> FloatArray:
        return np.asarray(model.predict(X), dtype=np.float64)

    @abc.abstractmethod
    def predict(self, X: Features) -> FloatArray:
        """Predicted treatment effect (CATE) per unit, in the outcome's units."""

    def summary(self) -> pd.DataFrame:
        """Training data and the difference-in-means effect it shows (one column ``value``)."""
        self._check_fitted()
        rows = {
            "n_control": float(self.n_control_),
            "n_treated": float(self.n_treated_),
            "propensity": self.propensity_,
            "ate_difference_in_means": self.ate_,
            "ate_se": self.ate_se_,
            "n_estimators": float(self.n_estimators),
        }
        frame = pd.DataFrame({"value": pd.Series(rows)})
        frame.index.name = f"{self.name}-learner ({self.outcome_})"
        return frame


class TLearner(UpliftLearner):
    """Two outcome models, one per arm: ``τ(x) = μ₁(x) − μ₀(x)``.

    Fitted attributes: ``model_control_``, ``model_treated_`` (LightGBM boosters) and the
    shared ones (``outcome_``, ``n_treated_``, ``n_control_``, ``propensity_``, ``ate_``,
    ``ate_se_``, ``n_features_in_``, ``feature_names_in_`` for DataFrames).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)); t = rng.random(2000) < 0.5
    >>> y = X[:, 0] + t * (X[:, 1] > 0) + rng.normal(size=2000)
    >>> m = TLearner(n_estimators=50, num_threads=1).fit(X, t, y)
    >>> bool(m.predict(X[:5]).shape == (5,))
    True
    """

    name = "t"
    _last_fitted = "model_treated_"

    def _fit(self, X: Features, t: BoolArray, y: FloatArray, e: FloatArray) -> None:
        self.model_control_ = self._outcome_model(_rows(X, ~t), y[~t])
        self.model_treated_ = self._outcome_model(_rows(X, t), y[t])

    def predict(self, X: Features) -> FloatArray:
        Xf = self._features(X)
        mu1 = self._outcome_predict(self.model_treated_, Xf)
        return mu1 - self._outcome_predict(self.model_control_, Xf)


class XLearner(UpliftLearner):
    """Künzel et al.'s X-learner: imputed effects per arm, blended by the propensity.

    Fitted attributes: ``model_control_``, ``model_treated_`` (outcome models),
    ``effect_model_control_``, ``effect_model_treated_`` (effect models) and the shared
    ones (see :class:`TLearner`).
    """

    name = "x"
    _last_fitted = "effect_model_treated_"

    def _fit(self, X: Features, t: BoolArray, y: FloatArray, e: FloatArray) -> None:
        Xc, Xt = _rows(X, ~t), _rows(X, t)
        self.model_control_ = self._outcome_model(Xc, y[~t])
        self.model_treated_ = self._outcome_model(Xt, y[t])
        d_treated = y[t] - self._outcome_predict(self.model_control_, Xt)
        d_control = self._outcome_predict(self.model_treated_, Xc) - y[~t]
        self.effect_model_control_ = self._train(Xc, d_control, "regression")
        self.effect_model_treated_ = self._train(Xt, d_treated, "regression")

    def predict(self, X: Features, propensity: Any = None) -> FloatArray:
        """CATE per unit: ``e·τ₀(x) + (1 − e)·τ₁(x)``.

        ``propensity`` is the treatment probability to blend with (scalar or per unit);
        default the mean training propensity ``propensity_``.
        """
        Xf = self._features(X)
        n = n_rows(Xf)
        if propensity is None:
            g = np.full(n, self.propensity_)
        else:
            g = as_propensity(propensity, np.zeros(n, dtype=bool))
        tau0 = self._outcome_predict(self.effect_model_control_, Xf)
        tau1 = self._outcome_predict(self.effect_model_treated_, Xf)
        return g * tau0 + (1.0 - g) * tau1


class DRLearner(UpliftLearner):
    """Kennedy's doubly robust learner with ``n_folds``-fold cross-fitting.

    Outcome models fitted on the other folds predict each unit's ``μ₀`` and ``μ₁``; the
    pseudo-outcome ``μ₁ − μ₀ + T(Y − μ₁)/e − (1 − T)(Y − μ₀)/(1 − e)`` of every unit is then
    regressed on the features by ``final_model_``. Folds are stratified by arm and drawn
    with ``random_state``.

    Parameters
    ----------
    n_folds
        Cross-fitting folds (≥ 2).
    **kwargs
        As :class:`UpliftLearner`.
    """

    name = "dr"
    _last_fitted = "final_model_"

    def __init__(self, *, n_folds: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_folds = n_folds

    def _validate_params(self) -> None:
        super()._validate_params()
        _check_int("n_folds", self.n_folds, 2)

    def _fit(self, X: Features, t: BoolArray, y: FloatArray, e: FloatArray) -> None:
        k = int(self.n_folds)
        if min(int(t.sum()), int((~t).sum())) < k:
            raise InvalidInput(
                f"DRLearner needs at least n_folds={k} units in each arm; lower n_folds"
            )
        fold = _stratified_folds(t, k, self.random_state)
        mu0, mu1 = np.empty(t.size), np.empty(t.size)
        for f in range(k):
            held, train = fold == f, fold != f
            X_held = _rows(X, held)
            m0 = self._outcome_model(_rows(X, train & ~t), y[train & ~t])
            m1 = self._outcome_model(_rows(X, train & t), y[train & t])
            mu0[held] = self._outcome_predict(m0, X_held)
            mu1[held] = self._outcome_predict(m1, X_held)
        tt = t.astype(np.float64)
        pseudo = mu1 - mu0 + tt * (y - mu1) / e - (1.0 - tt) * (y - mu0) / (1.0 - e)
        self.final_model_ = self._train(X, pseudo, "regression")

    def predict(self, X: Features) -> FloatArray:
        Xf = self._features(X)
        return self._outcome_predict(self.final_model_, Xf)


def _stratified_folds(t: BoolArray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.empty(t.size, dtype=np.int64)
    for arm in (t, ~t):
        idx = np.flatnonzero(arm)
        fold[rng.permutation(idx)] = np.arange(idx.size) % k
    return fold


def _rows(X: Features, mask: BoolArray) -> Features:
    return X.loc[mask] if isinstance(X, pd.DataFrame) else X[mask]


LEARNERS: dict[str, type[UpliftLearner]] = {"t": TLearner, "x": XLearner, "dr": DRLearner}


def make_learner(name: str, **kwargs: Any) -> UpliftLearner:
    """A learner by short name: ``"t"``, ``"x"`` or ``"dr"`` (keyword arguments as the class).

    Examples
    --------
    >>> make_learner("x", n_estimators=50).n_estimators
    50
    """
    key = name.lower().removesuffix("-learner").removesuffix("learner")
    if key not in LEARNERS:
        raise ConfigError(f"unknown uplift learner {name!r}; choose one of t, x, dr")
    return LEARNERS[key](**kwargs)
