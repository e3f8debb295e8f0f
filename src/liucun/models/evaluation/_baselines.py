"""Simple churn scores a model must beat, and the held-out outcomes to judge them on.

Every baseline scores the customers who bought on or before a cut-off day, from what
was known then; a higher score means more likely to churn:

- ``recency_days``: days since the last purchase (the rule "no order for N days");
- ``rfm_score``: ``15 − (R + F + M)`` from :func:`liucun.segments.rfm`'s quintile scores
  (0 for the best customers, 12 for the worst);
- ``btyd_p_dead``: ``1 − P(alive)`` from a BG/NBD model fitted on the customer summary.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import InvalidInput
from liucun.models._summary import customer_summary
from liucun.models.btyd import BetaGeoModel
from liucun.models.btyd._base import FloatArray
from liucun.segments import rfm

#: The baselines :func:`baseline_scores` computes; only ``btyd_p_dead`` is a probability.
BASELINES: tuple[str, ...] = ("recency_days", "rfm_score", "btyd_p_dead")


class AliveModel(Protocol):
    """A fitted BTYD model with ``P(alive)`` (BG/NBD, MBG/NBD, Pareto/NBD)."""

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> FloatArray: ...


def _columns(summary: pd.DataFrame, *names: str) -> list[np.ndarray]:
    missing = [n for n in names if n not in summary.columns]
    if missing:
        raise InvalidInput(
            f"the customer summary lacks column(s) {missing}; build it with "
            "liucun.models.customer_summary"
        )
    return [summary[n].to_numpy(dtype=np.float64) for n in names]


def recency_days(summary: pd.DataFrame, *, time_unit_days: float = 7.0) -> FloatArray:
    """Days from each customer's last purchase to the end of the calibration period.

    ``(T − recency) × time_unit_days`` from a :func:`~liucun.models.customer_summary`.
    """
    big_t, rec = _columns(summary, "T", "recency")
    return (big_t - rec) * time_unit_days


def btyd_p_dead(summary: pd.DataFrame, model: AliveModel | None = None) -> FloatArray:
    """``1 − P(alive)`` per customer; fits a :class:`BetaGeoModel` when ``model`` is None.

    BG/NBD gives every customer without a repeat purchase ``P(alive) = 1``, so they all
    score 0 here: a known weakness of this baseline, kept on purpose (it is what a team
    using the textbook model would rank by).
    """
    x, tx, big_t = _columns(summary, "frequency", "recency", "T")
    fitted = BetaGeoModel().fit(x, tx, big_t) if model is None else model
    return 1.0 - np.asarray(fitted.p_alive(x, tx, big_t), dtype=np.float64)


def _as_of(cutoff: date) -> datetime:
    """The instant after the cut-off day (orders on the cut-off day count as known)."""
    return datetime.combine(cutoff + timedelta(days=1), time())


def rfm_churn_score(events: ir.Table, *, cutoff: date) -> ir.Table:
    """``user_id, rfm_score``: ``15 − (R + F + M)`` of :func:`liucun.segments.rfm` as of the
    end of ``cutoff`` (quintile scores, so ties share a score)."""
    scored = rfm(events, as_of=_as_of(cutoff))
    return scored.select(
        "user_id", rfm_score=(15 - scored.r_score - scored.f_score - scored.m_score).cast("int64")
    )


def baseline_scores(
    events: ir.Table,
    *,
    cutoff: date,
    time_unit_days: float = 7.0,
    model: AliveModel | None = None,
) -> pd.DataFrame:
    """Every baseline for each customer who bought on or before ``cutoff``.

    Parameters
    ----------
    events
        Canonical events, through ``liucun.warehouse.resolved_events``.
    cutoff
        Last day (inclusive, UTC) of what is known.
    time_unit_days
        Time unit of the BTYD summary (7 = weeks).
    model
        A fitted BTYD model for ``btyd_p_dead``; by default a BG/NBD is fitted on the
        summary.

    Returns
    -------
    pandas.DataFrame
        ``user_id, frequency, recency, T, monetary_value`` (the calibration summary) and
        the :data:`BASELINES` columns, sorted by ``user_id``.
    """
    summary = customer_summary(events, calibration_end=cutoff, time_unit_days=time_unit_days)
    rfm_scores = rfm_churn_score(events, cutoff=cutoff)
    joined = summary.left_join(rfm_scores, "user_id")
    frame = (
        joined.select(*summary.columns, "rfm_score")
        .order_by("user_id")
        .to_pandas()
        .reset_index(drop=True)
    )
    if frame.empty:
        raise InvalidInput(f"no customer bought on or before {cutoff}; choose a later cut-off")
    frame["recency_days"] = recency_days(frame, time_unit_days=time_unit_days)
    frame["btyd_p_dead"] = btyd_p_dead(frame, model)
    frame["rfm_score"] = frame["rfm_score"].astype("int64")
    return frame.drop(columns=["first_purchase"])


def holdout_outcomes(
    events: ir.Table, *, cutoff: date, horizon_days: int = 90, data_end: date | None = None
) -> pd.DataFrame:
    """What each customer who bought by ``cutoff`` did in the ``horizon_days`` after it.

    Parameters
    ----------
    events
        Canonical events, through ``liucun.warehouse.resolved_events``.
    cutoff
        Last day of the calibration period; the holdout is the next ``horizon_days``
        days.
    horizon_days
        Length of the holdout (the churn horizon H).
    data_end
        Last day covered by the data; by default the day of the latest event. A holdout
        that runs past it is refused (churn would be overstated).

    Returns
    -------
    pandas.DataFrame
        ``user_id, holdout_orders`` (days with an order, as the BTYD models count them),
        ``holdout_spend`` and ``churned`` (no order in the holdout), sorted by ``user_id``.
    """
    if isinstance(horizon_days, bool) or int(horizon_days) != horizon_days or horizon_days < 1:
        raise InvalidInput(f"horizon_days must be a positive whole number, got {horizon_days!r}")
    end = cutoff + timedelta(days=int(horizon_days))
    if data_end is None:
        latest = events.ts.max().to_pandas()
        if latest is None or pd.isna(latest):
            raise InvalidInput("events is empty; there is no holdout to evaluate on")
        data_end = pd.Timestamp(latest).date()
    if data_end < end:
        raise InvalidInput(
            f"the holdout {cutoff + timedelta(days=1)} … {end} runs past the end of the data "
            f"({data_end}); choose a cut-off at least {horizon_days} days before it"
        )
    summary = customer_summary(events, calibration_end=cutoff, holdout_end=end)
    frame = (
        summary.select("user_id", holdout_orders="holdout_frequency", holdout_spend="holdout_value")
        .order_by("user_id")
        .to_pandas()
        .reset_index(drop=True)
    )
    frame["churned"] = frame["holdout_orders"] == 0
    return frame
