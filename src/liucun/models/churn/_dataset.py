"""Labels, rolling cut-offs and the stacked training set of the churn classifier.

The label of a customer at cut-off ``c`` is *churned* = no order in ``[c, c + H)``.
Training stacks several cut-offs ``step_days`` apart; the latest cut-off(s) are held out
for validation. The split rule (docs/churn.md):

- every label window ends by the data end: ``c + H <= data_end``;
- the latest cut-off is ``data_end - H``; the validation cut-offs are it and the
  ``n_validation_cutoffs - 1`` before it, ``step_days`` apart;
- a training cut-off's label window ends by the first validation cut-off:
  ``c_train + H <= min(validation)``. Training labels therefore never look at the
  period the validation labels are about, and validation features (data before the
  validation cut-off) may use everything training used. With ``H = 90`` and 30-day steps
  the training cut-offs are 90, 120, 150, … days before the validation one;
- a cut-off needs ``min_history_days`` of order history after the first order in the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from liucun.core import ConfigError, InvalidInput, last_full_day, midnight
from liucun.metrics import orders
from liucun.models._base import as_cutoff
from liucun.models.churn._features import (
    BTYD_FEATURES,
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    build_features,
)
from liucun.models.evaluation import holdout_outcomes


def churn_labels(
    events: ir.Table,
    *,
    as_of: date | datetime,
    horizon_days: int = 90,
    data_end: date | datetime | None = None,
) -> pd.DataFrame:
    """``user_id, churned`` for every customer with an order before ``as_of``.

    ``churned`` is true when the customer places no order in ``[as_of, as_of +
    horizon_days)``. Computed by :func:`liucun.models.evaluation.holdout_outcomes` (one
    definition of the outcome for training and evaluation), so ``as_of`` must be a
    midnight UTC (a date). A label window that runs past ``data_end`` (exclusive; default
    the day of the latest event) is refused.
    """
    cutoff = as_cutoff(as_of)
    check_horizon(horizon_days)
    if cutoff != as_cutoff(midnight(cutoff)):
        raise ConfigError(f"labels need a cut-off at midnight UTC (a date), got {cutoff}")
    last_day = None if data_end is None else last_full_day(data_end)
    out = holdout_outcomes(
        events,
        cutoff=(cutoff - timedelta(days=1)).date(),
        horizon_days=int(horizon_days),
        data_end=last_day,
    )
    return pd.DataFrame(
        {"user_id": out["user_id"].astype(str), "churned": out["churned"].astype(bool)}
    )


def check_horizon(horizon_days: int) -> None:
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ConfigError(f"horizon_days must be a whole number of days >= 1, got {horizon_days}")


@dataclass(frozen=True)
class CutoffPlan:
    """Training and validation cut-offs (naive UTC midnights, ascending)."""

    train: tuple[datetime, ...]
    validation: tuple[datetime, ...]


def rolling_cutoffs(
    data_start: date | datetime,
    data_end: date | datetime,
    *,
    horizon_days: int = 90,
    step_days: int = 30,
    n_cutoffs: int = 6,
    n_validation_cutoffs: int = 1,
    min_history_days: int = 90,
) -> CutoffPlan:
    """Cut-offs for training and validation under the module's split rule.

    ``data_start`` is the first order's time and ``data_end`` the (exclusive) end of the
    data; both are taken at midnight UTC (``data_end`` rounded down). Up to
    ``n_cutoffs`` training cut-offs are returned: those with less than
    ``min_history_days`` of history are dropped, and none left is an error.
    """
    check_horizon(horizon_days)
    for name, value, least in (
        ("step_days", step_days, 1),
        ("n_cutoffs", n_cutoffs, 1),
        ("n_validation_cutoffs", n_validation_cutoffs, 1),
        ("min_history_days", min_history_days, 0),
    ):
        if int(value) != value or value < least:
            raise ConfigError(f"{name} must be a whole number >= {least}, got {value}")
    start = as_cutoff(midnight(data_start))
    end = as_cutoff(midnight(data_end))
    latest = end - timedelta(days=horizon_days)
    validation = [latest - timedelta(days=step_days * i) for i in range(n_validation_cutoffs)]
    first_val = min(validation)
    earliest = start + timedelta(days=min_history_days)
    if first_val < earliest:
        raise ConfigError(
            f"the data run from {start:%Y-%m-%d} to {end:%Y-%m-%d}: too short for a "
            f"{horizon_days}-day horizon with {min_history_days} days of history; use a "
            "shorter horizon_days or min_history_days, or load more history"
        )
    train = [first_val - timedelta(days=horizon_days + step_days * j) for j in range(n_cutoffs)]
    train = [c for c in train if c >= earliest]
    if not train:
        last_train = first_val - timedelta(days=horizon_days)
        raise ConfigError(
            f"no training cut-off fits between {earliest:%Y-%m-%d} (first order + "
            f"{min_history_days} days of history) and {last_train:%Y-%m-%d} "
            f"(a {horizon_days}-day label window before the validation cut-off "
            f"{first_val:%Y-%m-%d}); use a shorter horizon_days or min_history_days, fewer "
            "validation cut-offs, or load more history"
        )
    return CutoffPlan(train=tuple(sorted(train)), validation=tuple(sorted(validation)))


@dataclass(frozen=True)
class ChurnDataset:
    """Stacked point-in-time rows: ``user_id, cutoff``, the features and ``churned``.

    Build it with :func:`build_training_set`; :class:`ChurnModel` fits on it.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    train_cutoffs: tuple[datetime, ...]
    validation_cutoffs: tuple[datetime, ...]
    horizon_days: int
    data_start: datetime
    data_end: datetime

    @property
    def train(self) -> pd.DataFrame:
        """Rows of the training cut-offs."""
        return self.frame[self.frame["cutoff"].isin(list(self.train_cutoffs))]

    @property
    def validation(self) -> pd.DataFrame:
        """Rows of the validation (held-out) cut-offs."""
        return self.frame[self.frame["cutoff"].isin(list(self.validation_cutoffs))]


def data_range(events: ir.Table) -> tuple[datetime, datetime]:
    """First order time and the data end: midnight UTC of the latest event's day.

    The latest day counts as possibly incomplete, so label windows stop before it.
    """
    first = orders(events).ts.min().to_pyarrow().as_py()
    last = events.ts.max().to_pyarrow().as_py()
    if first is None or last is None:
        raise InvalidInput("the events hold no orders; load orders before training a churn model")
    return as_cutoff(first), as_cutoff(midnight(last))


def build_training_set(
    events: ir.Table,
    users: ir.Table | None = None,
    *,
    horizon_days: int = 90,
    step_days: int = 30,
    n_cutoffs: int = 6,
    n_validation_cutoffs: int = 1,
    min_history_days: int = 90,
    data_end: date | datetime | None = None,
    lookback_days: int | None = None,
    btyd: bool = True,
) -> ChurnDataset:
    """Features and labels at rolling cut-offs, stacked, with the validation cut-offs marked.

    Parameters
    ----------
    events, users
        Resolved events and the users table, as for :func:`build_features`.
    horizon_days
        Churn horizon H: the label is "no order in the H days from the cut-off".
    step_days, n_cutoffs, n_validation_cutoffs, min_history_days
        The cut-off schedule (:func:`rolling_cutoffs`).
    data_end
        Exclusive end of the data used; default: midnight of the latest event's day. Pass
        an earlier date to keep a later period out of training entirely.
    lookback_days, btyd
        As in :func:`build_features`.
    """
    start, latest = data_range(events)
    end = latest if data_end is None else as_cutoff(midnight(data_end))
    if end > latest:
        raise ConfigError(
            f"data_end {end:%Y-%m-%d} is after the data ({latest:%Y-%m-%d} is the last "
            "complete day); labels there would be wrong, so pass an earlier data_end"
        )
    plan = rolling_cutoffs(
        start,
        end,
        horizon_days=horizon_days,
        step_days=step_days,
        n_cutoffs=n_cutoffs,
        n_validation_cutoffs=n_validation_cutoffs,
        min_history_days=min_history_days,
    )
    events = events.filter(events.ts < ibis.literal(end))
    parts = []
    for cutoff in (*plan.train, *plan.validation):
        feats = build_features(
            events,
            users,
            as_of=cutoff,
            horizon_days=horizon_days,
            btyd=btyd,
            lookback_days=lookback_days,
        )
        labels = churn_labels(events, as_of=cutoff, horizon_days=horizon_days, data_end=end)
        rows = feats.merge(labels, on="user_id", how="inner", validate="one_to_one")
        rows.insert(1, "cutoff", pd.Timestamp(cutoff))
        parts.append(rows)
    frame = pd.concat(parts, ignore_index=True)
    frame["churned"] = frame["churned"].astype(bool)
    features = (*NUMERIC_FEATURES, *(BTYD_FEATURES if btyd else ()), *CATEGORICAL_FEATURES)
    return ChurnDataset(
        frame=frame[["user_id", "cutoff", *features, "churned"]],
        features=features,
        categorical=CATEGORICAL_FEATURES,
        train_cutoffs=plan.train,
        validation_cutoffs=plan.validation,
        horizon_days=horizon_days,
        data_start=start,
        data_end=end,
    )
