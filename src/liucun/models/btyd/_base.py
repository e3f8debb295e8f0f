"""The maximum-likelihood machinery every BTYD model shares.

:class:`LikelihoodModel` owns the optimiser (L-BFGS-B on log-parameters with the model's
exact gradient), the Hessian (central differences of that gradient), standard errors
(delta method from log-parameters), information criteria and :meth:`summary`. A model
declares only ``param_names``, a start point and its per-customer negative log-likelihood
with gradient.

A fit reports two things separately: ``converged_`` (the optimiser reported
convergence) and ``has_standard_errors_`` (the Hessian at the optimum is invertible, so
standard errors exist). Either one failing is a degraded, usable fit and warns.

Errors and warnings added here::

    LiucunError
    └── ConvergenceError (RuntimeError)          the optimiser did not reach a usable optimum
    FitWarning (UserWarning)                     the fit is usable but degraded
    ├── NotConvergedWarning                      the optimiser did not report convergence
    └── NoStandardErrorsWarning                  the Hessian is singular: no standard errors

:class:`~liucun.core.NotFittedError` (a model used before ``fit``) lives in ``liucun.core``.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, stats

from liucun.core import InvalidInput, LiucunError, NotFittedError
from liucun.models._base import Estimator, check_is_fitted

FloatArray = npt.NDArray[np.float64]
Data = Mapping[str, FloatArray]

#: Parameters outside this range (original scale) mean the optimum is on a boundary.
PARAM_LOWER = 1e-6
PARAM_UPPER = 1e6
_LOG_BOUND = 20.0  # the optimiser's box on log-parameters (about 2e-9 .. 5e8)

_CHECKLIST = (
    "What to try: (1) check the inputs: frequency counts repeat purchases only, recency and "
    "T share one time unit, and T is measured from each customer's first purchase; "
    "(2) make sure the data hold enough repeat buyers (a model of repeat buying cannot be "
    "identified when nearly nobody returns); (3) add a small penalizer, e.g. "
    "penalizer=0.001; (4) raise max_iter; (5) try another model of the family."
)
_NO_SE = (
    "the Hessian at the optimum is singular or not positive definite, so standard errors "
    "are NaN; the model may be over-parameterised for these data (try a penalizer)"
)
# warnings are raised three frames below the user's call: user → fit → _fit → step
_STACK = 4


class ConvergenceError(LiucunError, RuntimeError):
    """The optimiser failed or ended on a boundary; the message lists what to try."""


class FitWarning(UserWarning):
    """The fit finished but is degraded (optimiser not converged, Hessian singular, ...)."""


class NotConvergedWarning(FitWarning):
    """The optimiser did not report convergence, but the gradient is small."""


class NoStandardErrorsWarning(FitWarning):
    """The Hessian at the optimum is singular: the estimates stand, standard errors are NaN."""


def as_1d(name: str, values: Any) -> FloatArray:
    """Convert ``values`` to a 1-D float array, refusing non-finite entries."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from None
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} contains NaN or infinite values; drop or fill them")
    return arr


def nonnegative(name: str, values: Any) -> FloatArray:
    """:func:`as_1d`, refusing negative values."""
    arr = as_1d(name, values)
    if np.any(arr < 0):
        raise InvalidInput(f"{name} must be non-negative; found {arr.min():g}")
    return arr


def check_counts(name: str, values: FloatArray) -> None:
    """Refuse negative or fractional counts."""
    if np.any(values < 0):
        raise InvalidInput(f"{name} must be non-negative; found {values.min():g}")
    if np.any(values != np.round(values)):
        raise InvalidInput(f"{name} must hold whole numbers (counts of repeat transactions)")


def check_same_length(**arrays: FloatArray) -> int:
    """Return the common length of the arrays or raise naming the mismatch."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(f"inputs must have the same length, got {lengths}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise InvalidInput("inputs are empty; there is nothing to fit")
    return n


def check_weights(weights: Any, n: int) -> FloatArray:
    """Default to ones; otherwise non-negative finite weights of length ``n``."""
    if weights is None:
        return np.ones(n)
    w = as_1d("weights", weights)
    if len(w) != n:
        raise InvalidInput(f"weights has length {len(w)}, expected {n}")
    if np.any(w < 0) or w.sum() <= 0:
        raise InvalidInput("weights must be non-negative with a positive sum")
    return w


def validate_rft(
    frequency: Any, recency: Any, T: Any, *, t_name: str = "T", allow_broadcast: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate a frequency / recency / age triple and return float arrays.

    Checks: finite, non-negative, whole frequencies, ``recency <= T`` and ``recency == 0``
    whenever ``frequency == 0``.
    """
    x = as_1d("frequency", frequency)
    tx = as_1d("recency", recency)
    big_t = as_1d(t_name, T)
    if allow_broadcast:
        try:
            x, tx, big_t = np.broadcast_arrays(x, tx, big_t)
        except ValueError:
            raise InvalidInput(
                f"frequency, recency and {t_name} cannot be broadcast together: "
                f"{x.shape}, {tx.shape}, {big_t.shape}"
            ) from None
    else:
        check_same_length(frequency=x, recency=tx, **{t_name: big_t})
    check_counts("frequency", x)
    if np.any(tx < 0):
        raise InvalidInput(f"recency must be non-negative; found {tx.min():g}")
    if np.any(big_t < 0):
        raise InvalidInput(f"{t_name} must be non-negative; found {big_t.min():g}")
    if np.any(tx > big_t * (1 + 1e-12)):
        i = int(np.argmax(tx - big_t))
        raise InvalidInput(
            f"recency must not exceed {t_name}; row {i} has recency {tx[i]:g} > "
            f"{t_name} {big_t[i]:g} (both must be measured from the first purchase)"
        )
    if np.any((x == 0) & (tx != 0)):
        raise InvalidInput(
            "recency must be 0 when frequency is 0 (no repeat purchase, so no last repeat)"
        )
    return x, tx, np.maximum(big_t, tx)


class LikelihoodModel(Estimator, abc.ABC):
    """Base of the maximum-likelihood models: optimiser, Hessian, errors, summary.

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters (added to the mean negative log-likelihood as
        ``penalizer * sum(params**2)``, as lifetimes does). 0 gives the plain MLE.
    max_iter
        Maximum optimiser iterations.
    tol
        Relative tolerance on the objective (L-BFGS-B ``ftol``).
    """

    param_names: ClassVar[tuple[str, ...]]

    params_: dict[str, float]
    standard_errors_: dict[str, float]
    log_likelihood_: float
    converged_: bool
    has_standard_errors_: bool
    fit_notes_: tuple[str, ...]
    n_iter_: int
    aic_: float
    bic_: float
    n_obs_: float

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 500, tol: float = 1e-10):
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    # ---- what a model declares -------------------------------------------------------
    @abc.abstractmethod
    def _initial_params(self, data: Data, weights: FloatArray) -> FloatArray:
        """Start point in the original (positive) parameter scale."""

    @abc.abstractmethod
    def _negative_log_likelihood(
        self, params: FloatArray, data: Data
    ) -> tuple[FloatArray, FloatArray]:
        """Per-row negative log-likelihood, shape (n,), and its gradient, shape (n, k)."""

    # ---- fitting ---------------------------------------------------------------------
    def _check_hyper(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise InvalidInput(f"penalizer must be a finite number >= 0, got {self.penalizer}")
        if int(self.max_iter) < 1:
            raise InvalidInput(f"max_iter must be a positive integer, got {self.max_iter}")
        if not (self.tol > 0):
            raise InvalidInput(f"tol must be > 0, got {self.tol}")

    def _objective(
        self, theta: FloatArray, data: Data, weights: FloatArray, scale: float
    ) -> tuple[float, FloatArray]:
        """Penalised weighted NLL divided by ``scale`` and its gradient in log space."""
        params = np.exp(theta)
        nll, grad = self._negative_log_likelihood(params, data)
        value = float(weights @ nll) / scale + self.penalizer * float(params @ params)
        g_params = (weights @ grad) / scale + 2.0 * self.penalizer * params
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return value, g_params * params

    def _fit(self, data: Data, weights: FloatArray) -> Self:
        """Maximise the weighted likelihood, then derive standard errors and criteria."""
        self._check_hyper()
        data, weights = self._prepared(data, weights)
        scale = float(weights.sum())
        k = len(self.param_names)
        start = self._start(data, weights, scale)
        result = optimize.minimize(
            self._objective,
            start,
            args=(data, weights, scale),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * k,
            options={"maxiter": int(self.max_iter), "ftol": self.tol, "gtol": 1e-9},
        )
        theta = np.asarray(result.x, dtype=np.float64)
        params = np.exp(theta)
        named = dict(zip(self.param_names, params.tolist(), strict=True))
        converged, notes = self._check_optimum(result, named)
        se = self._standard_errors(theta, data, weights, scale)
        if not np.all(np.isfinite(se)):
            notes.append(_NO_SE)
        nll, _ = self._negative_log_likelihood(params, data)
        ll = -float(weights @ nll)
        self.params_ = named
        self.standard_errors_ = dict(zip(self.param_names, se.tolist(), strict=True))
        self.log_likelihood_ = ll
        self.converged_ = converged
        self.has_standard_errors_ = bool(np.all(np.isfinite(se)))
        self.fit_notes_ = tuple(notes)
        self.n_iter_ = int(result.nit)
        self.n_obs_ = scale
        self.aic_ = 2.0 * k - 2.0 * ll
        self.bic_ = k * float(np.log(scale)) - 2.0 * ll
        return self

    @staticmethod
    def _prepared(data: Data, weights: FloatArray) -> tuple[Data, FloatArray]:
        """Rows with positive weight, identical customers merged into one weighted row."""
        keep = weights > 0
        kept = {key: np.asarray(val)[keep] for key, val in data.items()}
        return _merge_identical_rows(kept, weights[keep])

    def _start(self, data: Data, weights: FloatArray, scale: float) -> FloatArray:
        """The start point on the log scale; refuses one where the likelihood is not finite."""
        start = np.log(np.asarray(self._initial_params(data, weights), dtype=np.float64))
        f0, _ = self._objective(start, data, weights, scale)
        if not np.isfinite(f0):
            raise ConvergenceError(
                f"{type(self).__name__}: the log-likelihood is not finite at the start "
                f"point. {_CHECKLIST}"
            )
        return start

    def _check_optimum(
        self, result: optimize.OptimizeResult, named: dict[str, float]
    ) -> tuple[bool, list[str]]:
        """Whether the optimiser converged, and notes on a degraded optimum.

        Raises :class:`ConvergenceError` for a non-finite objective, a parameter on a
        boundary or a stop far from the optimum (a large gradient); warns with
        :class:`NotConvergedWarning` when the optimiser did not report convergence but
        the gradient is small.
        """
        name = type(self).__name__
        if not np.isfinite(result.fun):
            raise ConvergenceError(
                f"{name}: the optimiser ended at a non-finite objective ({named}). {_CHECKLIST}"
            )
        at_bound = [n for n, p in named.items() if not (PARAM_LOWER <= p <= PARAM_UPPER)]
        if at_bound:
            raise ConvergenceError(
                f"{name}: parameter(s) {', '.join(at_bound)} ran to a boundary ({named}); "
                f"the data do not identify the model. {_CHECKLIST}"
            )
        if result.success:
            return True, []
        grad_norm = float(np.max(np.abs(result.jac)))
        if grad_norm > 1e-3:
            raise ConvergenceError(
                f"{name}: the optimiser stopped after {result.nit} iterations "
                f"({result.message}) with gradient {grad_norm:.2g}. {_CHECKLIST}"
            )
        note = (
            f"the optimiser did not report convergence ({result.message}); the gradient is "
            f"small ({grad_norm:.2g}) so the estimates are probably close to the optimum"
        )
        warnings.warn(f"{name}: {note}.", NotConvergedWarning, stacklevel=_STACK)
        return False, [note]

    def _standard_errors(
        self, theta: FloatArray, data: Data, weights: FloatArray, scale: float
    ) -> FloatArray:
        """Standard errors by the delta method from the log-scale Hessian; NaN (with a
        :class:`NoStandardErrorsWarning`) when the Hessian is singular."""
        hess = self._hessian_log_space(theta, data, weights, scale) * scale
        try:
            var_theta = np.diag(np.linalg.inv(hess))
        except np.linalg.LinAlgError:
            var_theta = np.full(len(theta), np.nan)
        if np.all(np.isfinite(var_theta)) and np.all(var_theta > 0):
            return np.exp(theta) * np.sqrt(var_theta)  # d p / d theta = p
        warnings.warn(
            f"{type(self).__name__}: {_NO_SE}.", NoStandardErrorsWarning, stacklevel=_STACK
        )
        return np.full(len(theta), np.nan)

    def _hessian_log_space(
        self, theta: FloatArray, data: Data, weights: FloatArray, scale: float
    ) -> FloatArray:
        """Central differences of the analytic gradient, symmetrised."""
        k = len(theta)
        hess = np.empty((k, k))
        for j in range(k):
            step = 1e-5 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += step
            down[j] -= step
            _, g_up = self._objective(up, data, weights, scale)
            _, g_down = self._objective(down, data, weights, scale)
            hess[:, j] = (g_up - g_down) / (2 * step)
        return 0.5 * (hess + hess.T)

    # ---- fitted state ----------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, float], **kwargs: Any) -> Self:
        """A model with given parameters (e.g. published ones), ready to predict."""
        model = cls(**kwargs)
        missing = set(cls.param_names) - set(params)
        if missing:
            raise InvalidInput(f"from_params needs {cls.param_names}; missing {sorted(missing)}")
        values = {name: float(params[name]) for name in cls.param_names}
        if not all(np.isfinite(v) and v > 0 for v in values.values()):
            raise InvalidInput(f"parameters must be positive and finite, got {values}")
        model.params_ = values
        return model

    def _check_is_fitted(self) -> FloatArray:
        check_is_fitted(self, "params_", how="fit() or from_params()")
        return np.array([self.params_[name] for name in self.param_names])

    def summary(self, alpha: float = 0.05) -> pd.DataFrame:
        """Estimates, standard errors and confidence intervals as a DataFrame.

        The interval is symmetric on the log scale, ``coef * exp(±z * se / coef)``, so it
        stays positive like the parameters. When the Hessian was singular the standard
        errors and intervals are NaN; ``attrs["notes"]`` says why (and notes an optimiser
        that did not report convergence), next to ``attrs["converged"]`` and
        ``attrs["has_standard_errors"]``.
        """
        params = self._check_is_fitted()
        if not hasattr(self, "standard_errors_"):
            raise NotFittedError("summary() needs a model fitted with fit()")
        se = np.array([self.standard_errors_[name] for name in self.param_names])
        z = float(stats.norm.ppf(1 - alpha / 2))
        spread = np.exp(z * se / params)
        level = f"{100 * (1 - alpha):g}%"
        table = pd.DataFrame(
            {
                "coef": params,
                "se": se,
                f"lower {level}": params / spread,
                f"upper {level}": params * spread,
            },
            index=pd.Index(self.param_names, name="param"),
        )
        table.attrs["converged"] = bool(self.converged_)
        table.attrs["has_standard_errors"] = bool(self.has_standard_errors_)
        table.attrs["notes"] = list(getattr(self, "fit_notes_", ()))
        return table

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({inner})"
        return f"{type(self).__name__}({self._repr_params()})"


class RFTModel(LikelihoodModel):
    """A continuous-time model of (frequency, recency, T): BG/NBD, MBG/NBD, Pareto/NBD."""

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> Self:
        """Fit by maximum likelihood; ``weights`` count identical customers."""
        x, tx, big_t = validate_rft(frequency, recency, T)
        return self._fit({"x": x, "tx": tx, "T": big_t}, check_weights(weights, len(x)))

    def log_likelihood(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> float:
        """Log-likelihood of these customers at the model's parameters (fitted or given)."""
        params = self._check_is_fitted()
        x, tx, big_t = validate_rft(frequency, recency, T)
        w = check_weights(weights, len(x))
        nll, _ = self._negative_log_likelihood(params, {"x": x, "tx": tx, "T": big_t})
        return -float(w @ nll)

    @staticmethod
    def _repeat_rate(data: Data, weights: FloatArray) -> float:
        """Repeat transactions per unit of time across customers (for start values)."""
        rate = float(weights @ data["x"]) / max(float(weights @ data["T"]), 1e-9)
        return max(rate, 1e-3)

    @staticmethod
    def _counts_at(n: Any, t: Any) -> tuple[FloatArray, FloatArray]:
        """``n`` transactions and times ``t`` for ``p_transactions``, checked and broadcast."""
        counts = as_1d("n", n)
        check_counts("n", counts)
        counts, times = np.broadcast_arrays(counts, nonnegative("t", t))
        return counts, times


def _merge_identical_rows(data: Data, weights: FloatArray) -> tuple[Data, FloatArray]:
    """Fit identical customers once, with their weights summed.

    Summaries computed at day granularity repeat a lot (every one-time buyer of a given
    day has the same row), so this often shrinks a million rows to a fraction. The
    likelihood is unchanged: it is a weighted sum over rows. Rows are grouped by hashing
    (pandas.factorize), in linear time.
    """
    keys = list(data)
    if len(weights) < 2:
        return data, weights
    combined = np.zeros(len(weights), dtype=np.int64)
    span = 1
    for key in keys:
        codes, uniques = pd.factorize(np.asarray(data[key]), sort=False)
        span *= max(len(uniques), 1)
        if span >= 2**62:  # too many distinct combinations to pack: nothing to gain
            return data, weights
        combined = combined * len(uniques) + codes
    groups, _ = pd.factorize(combined, sort=False)
    n_groups = int(groups.max()) + 1
    if n_groups > 0.8 * len(weights):
        return data, weights
    first = np.full(n_groups, -1, dtype=np.int64)
    first[groups[::-1]] = np.arange(len(groups) - 1, -1, -1)  # first row of each group
    merged = {k: np.asarray(data[k])[first] for k in keys}
    return merged, np.bincount(groups, weights=weights, minlength=n_groups).astype(np.float64)
