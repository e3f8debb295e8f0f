"""Checking what uplift code is given: features, treatment flags, outcomes, propensities.

Every check raises :class:`~liucun.core.InvalidInput` (a ``LiucunError`` and a
``ValueError``) with a sentence naming the argument, the offending value and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from liucun.core import InvalidInput

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: A feature matrix: a pandas DataFrame (string columns become categories) or a 2-D array.
Features: TypeAlias = pd.DataFrame | npt.NDArray[Any]


def as_float(name: str, values: Any, n: int | None = None) -> FloatArray:
    """A finite 1-D float array (of length ``n`` when given)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise InvalidInput(
            f"{name} has {arr.size} rows but the features have {n}; pass one value per unit"
        )
    if arr.size and not np.all(np.isfinite(arr)):
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise InvalidInput(f"{name} holds {arr[i]} at row {i}; drop or fill missing values")
    return arr


def as_treatment(values: Any, n: int | None = None) -> BoolArray:
    """Treatment flags as booleans; only 0/1 or False/True are accepted."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"treatment must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise InvalidInput(
            f"treatment has {arr.size} rows but the features have {n}; pass one flag per unit"
        )
    if arr.dtype == np.bool_:
        return arr
    try:
        num = arr.astype(np.float64)
    except (TypeError, ValueError):
        num = np.full(arr.size, np.nan)
    bad = ~np.isin(num, (0.0, 1.0))
    if bad.any():
        found = ", ".join(repr(v) for v in pd.unique(arr[bad])[:3].tolist())
        raise InvalidInput(
            f"treatment must hold only 0/1 (or False/True); found {found}. Encode the treated "
            "arm as 1 and the control arm as 0 (split multi-arm tests into pairs first)"
        )
    return num == 1.0


def require_both_arms(treatment: BoolArray, *, minimum: int = 2) -> None:
    """Refuse data in which one arm has fewer than ``minimum`` units."""
    n_t = int(treatment.sum())
    n_c = int(treatment.size - n_t)
    if min(n_t, n_c) < minimum:
        raise InvalidInput(
            f"uplift needs both arms: got {n_t} treated and {n_c} control units (at least "
            f"{minimum} of each); train on a randomized campaign or experiment with a control "
            "group"
        )


def as_propensity(propensity: Any, treatment: BoolArray) -> FloatArray:
    """Per-unit probability of treatment; default: the observed treated share.

    A scalar is broadcast; every value must lie strictly between 0 and 1.
    """
    n = treatment.size
    if propensity is None:
        share = float(treatment.mean()) if n else 0.5
        return np.full(n, share)
    if np.ndim(propensity) == 0:
        arr = np.full(n, as_float("propensity", [propensity])[0])
    else:
        arr = as_float("propensity", propensity, n)
    outside = (arr <= 0.0) | (arr >= 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidInput(
            f"propensity must be strictly between 0 and 1; row {i} has {arr[i]:g}. A unit "
            "treated (or held out) with certainty carries no information about the other arm: "
            "drop it, or pass the assignment probability the experiment used"
        )
    return arr


@dataclass
class FeatureEncoder:
    """Remembers a DataFrame's columns and category levels so prediction sees the same."""

    columns: list[str] | None = None
    categories: dict[str, list[Any]] | None = None
    n_features: int = 0

    def fit_transform(self, X: Features) -> Features:
        if isinstance(X, pd.DataFrame):
            self.columns = [str(c) for c in X.columns]
            self.categories = {}
            out = X.copy()
            out.columns = self.columns
            for col in self.columns:
                s = out[col]
                if isinstance(s.dtype, pd.CategoricalDtype):
                    self.categories[col] = list(s.cat.categories)
                elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                    levels = sorted(pd.unique(s.dropna().astype(str)))
                    self.categories[col] = levels
                    out[col] = _categorical(s, levels)
            self.n_features = len(self.columns)
            return out
        arr = self._array(X)
        self.columns, self.categories, self.n_features = None, None, arr.shape[1]
        return arr

    def transform(self, X: Features) -> Features:
        if self.columns is not None:
            if not isinstance(X, pd.DataFrame):
                raise InvalidInput(
                    "the model was fitted on a DataFrame; pass a DataFrame with columns "
                    f"{self.columns}"
                )
            missing = [c for c in self.columns if c not in {str(k) for k in X.columns}]
            if missing:
                raise InvalidInput(f"features are missing column(s) {missing} seen in fit")
            out = X.rename(columns=str)[self.columns].copy()
            for col, levels in (self.categories or {}).items():
                out[col] = _categorical(out[col], levels)
            return out
        arr = self._array(X)
        if arr.shape[1] != self.n_features:
            raise InvalidInput(
                f"features have {arr.shape[1]} columns but the model was fitted on "
                f"{self.n_features}"
            )
        return arr

    @staticmethod
    def _array(X: Any) -> npt.NDArray[np.float64]:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"features must be numeric (or a DataFrame with categorical columns): {exc}"
            ) from None
        if arr.ndim != 2:
            raise InvalidInput(f"features must be 2-D (units × features), got shape {arr.shape}")
        return arr


def _categorical(values: pd.Series, levels: list[Any]) -> pd.Categorical:
    """``values`` as a categorical over ``levels``; missing and unseen values become NaN."""
    text = values.astype(object).astype("string").to_numpy(dtype=object, na_value=None)
    codes = pd.Index([str(v) for v in levels]).get_indexer(text)
    return pd.Categorical.from_codes(codes, categories=levels)


def n_rows(X: Features) -> int:
    """Number of units in a feature matrix."""
    return int(X.shape[0])
