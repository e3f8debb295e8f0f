"""The estimator contract every liucun model follows (scikit-learn's).

- ``__init__`` takes keyword-only parameters and stores each one as given, under its own
  name; validation happens in ``fit``.
- :meth:`Estimator.get_params` / :meth:`Estimator.set_params` read and change those
  parameters, so :func:`sklearn.base.clone` gives an unfitted copy with equal parameters.
- Fitted state ends in ``_``; :func:`check_is_fitted` raises
  :class:`~liucun.core.NotFittedError` when it is missing.

Time: the models' public surface takes dates, naive (read as UTC) or aware datetimes and
returns and stores aware UTC. The point-in-time feature expressions compare against
naive UTC cut-offs; :func:`as_cutoff` is the one conversion to that form.

Parameter names follow one scheme across the models: ``random_state`` (never ``seed``),
``n_estimators`` (boosting rounds), ``max_iter`` (optimiser iterations),
``num_threads`` (LightGBM threads).

>>> class Scaled(Estimator):
...     def __init__(self, *, factor: float = 2.0) -> None:
...         self.factor = factor
>>> Scaled(factor=3.0).set_params(factor=4.0).get_params()
{'factor': 4.0}
"""

from __future__ import annotations

import inspect
from datetime import date, datetime
from typing import Any, Self

from liucun.core import ConfigError, NotFittedError, naive_utc


class Estimator:
    """Base of liucun's models: parameter introspection as in ``sklearn.base.BaseEstimator``.

    The parameters are the keyword-only arguments of ``__init__`` along the class
    hierarchy (a subclass that adds its own and passes ``**kwargs`` up keeps its
    parents').
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the ``__init__`` parameters, the class's own first."""
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self":
                    raise TypeError(
                        f"{klass.__name__}.__init__ takes {p.name!r} positionally; an "
                        "estimator's parameters are keyword-only"
                    )
                if p.kind is p.KEYWORD_ONLY and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` parameters and their values.

        Parameters
        ----------
        deep
            Also list the parameters of parameters that are estimators themselves, as
            ``name__param`` (scikit-learn's convention).
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set parameters (``name`` or ``name__param`` of a nested estimator); returns self.

        An unknown name raises :class:`~liucun.core.ConfigError` listing the valid ones.
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters are "
                    f"{', '.join(sorted(valid))}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def _repr_params(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())


def check_is_fitted(model: object, attribute: str, *, how: str = "fit()") -> None:
    """Raise :class:`~liucun.core.NotFittedError` unless ``model`` has ``attribute``.

    ``attribute`` is the fitted attribute the model's ``fit`` sets (last), e.g.
    ``"params_"`` or ``"booster_"``; ``how`` says what makes the model fitted.
    """
    if not hasattr(model, attribute):
        raise NotFittedError(f"this {type(model).__name__} is not fitted; call {how} first")


def as_cutoff(value: date | datetime) -> datetime:
    """``value`` as the naive UTC datetime the feature expressions compare ``ts`` with.

    The one place where the models leave aware time: a date means its midnight UTC, a
    naive datetime is UTC already, an aware one is converted.
    """
    if not isinstance(value, date):
        raise ConfigError(f"as_of must be a date or datetime, e.g. date(2026, 7, 1); got {value!r}")
    return naive_utc(value)
