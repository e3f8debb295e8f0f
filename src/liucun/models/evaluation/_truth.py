"""Predictions against the simulator's ground truth (``truth.parquet``).

The truth is as of the end of the simulated window: whether each customer is still
alive and their true expected orders and spend over the next 30/90/180/365 days. So a
model is compared with it when fitted on all the data (calibration ending on the last
simulated day).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from liucun.core import InvalidInput
from liucun.models.evaluation._checks import check_probabilities, check_scores
from liucun.models.evaluation._compare import compare
from liucun.models.evaluation._value import ValueAccuracy, value_accuracy
from liucun.warehouse import current_identities

#: Horizons (days) of the simulator's true expectations.
TRUTH_HORIZONS: tuple[int, ...] = (30, 90, 180, 365)


def simulated_truth(
    truth: pa.Table | pd.DataFrame, identities: ir.Table | None = None
) -> pd.DataFrame:
    """The truth per customer as the warehouse sees them (duplicate registrations merged).

    Rows of one person are summed, which is how ``liucun.warehouse.resolved_events``
    merges their orders. With the workspace's ``identities`` table each row is keyed by
    the warehouse's canonical id of its ``user_id`` (identity resolution may keep the
    duplicate registration's id for the person); without it, by the simulator's
    ``canonical_user_id``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (canonical): ``alive_at_end`` and
        ``expected_orders_{h}d, expected_spend_{h}d`` for h in :data:`TRUTH_HORIZONS`.
    """
    frame = truth.to_pandas() if isinstance(truth, pa.Table) else truth
    value_cols = [f"expected_{k}_{h}d" for k in ("orders", "spend") for h in TRUTH_HORIZONS]
    needed = ["user_id", "canonical_user_id", "alive_at_end", *value_cols]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InvalidInput(f"truth lacks {missing}; pass the simulator's truth.parquet table")
    key = frame["canonical_user_id"].astype(str)
    if identities is not None:
        ids = current_identities(identities)
        pairs = ids.filter(ids.alias_type == "user_id").select("alias", "canonical").to_pandas()
        mapping = pd.Series(pairs["canonical"].to_numpy(), index=pairs["alias"].to_numpy())
        user = frame["user_id"].astype(str)
        key = user.map(mapping).fillna(user)
    agg: dict[str, Any] = {c: "sum" for c in value_cols}
    agg["alive_at_end"] = "max"
    out = frame.assign(_key=key.to_numpy()).groupby("_key", sort=True).agg(agg)
    out.index.name = "user_id"
    return out[["alive_at_end", *value_cols]]


@dataclass(frozen=True)
class TruthComparison:
    """Predictions vs the simulated truth.

    ``alive`` is the :func:`compare` table of ``P(alive)`` against the true alive state
    (AUC, Brier, log loss, ECE; the event is "alive"); ``orders`` and ``spend`` compare
    expected orders and spend over ``horizon_days`` with the true expectations;
    ``mean_p_alive`` vs ``share_alive`` checks the level.
    """

    horizon_days: int
    customers: int
    mean_p_alive: float
    share_alive: float
    alive: pd.DataFrame
    orders: ValueAccuracy
    spend: ValueAccuracy | None


def against_truth(
    user_id: Any,
    truth: pd.DataFrame,
    *,
    p_alive: Any,
    expected_orders: Any,
    horizon_days: int,
    expected_spend: Any = None,
) -> TruthComparison:
    """Compare per-customer predictions with :func:`simulated_truth`.

    Parameters
    ----------
    user_id
        Customer ids (canonical), aligned with the predictions.
    truth
        :func:`simulated_truth` of the shop.
    p_alive
        Predicted probability that each customer is alive at the end of the data.
    expected_orders, expected_spend
        Predicted orders (and spend) over the ``horizon_days`` after the end.
    horizon_days
        One of :data:`TRUTH_HORIZONS`.
    """
    if horizon_days not in TRUTH_HORIZONS:
        raise InvalidInput(
            f"horizon_days must be one of {TRUTH_HORIZONS} (the simulator's horizons), "
            f"got {horizon_days!r}"
        )
    ids = pd.Index(np.asarray(user_id, dtype=object).astype(str), name="user_id")
    unknown = ids.difference(truth.index)
    if len(unknown):
        raise InvalidInput(
            f"{len(unknown)} customer(s) are not in the truth, e.g. {unknown[0]!r}; pass "
            "canonical ids (through resolved_events) of the same simulated shop"
        )
    rows = truth.loc[ids]
    p = check_probabilities(p_alive, len(ids), name="p_alive")
    alive = rows["alive_at_end"].to_numpy(dtype=np.float64)
    orders = check_scores(expected_orders, len(ids), name="expected_orders")
    spend = None
    if expected_spend is not None:
        spend_pred = check_scores(expected_spend, len(ids), name="expected_spend")
        spend = value_accuracy(spend_pred, rows[f"expected_spend_{horizon_days}d"])
    return TruthComparison(
        horizon_days=horizon_days,
        customers=len(ids),
        mean_p_alive=float(p.mean()),
        share_alive=float(alive.mean()),
        alive=compare(alive, {"p_alive": p}, probabilities=["p_alive"]),
        orders=value_accuracy(orders, rows[f"expected_orders_{horizon_days}d"]),
        spend=spend,
    )
