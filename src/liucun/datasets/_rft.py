"""The CDNOW calibration/holdout summary (frequency, recency, T) used by the BTYD papers.

Convention (Fader, Hardie & Lee 2005, and the BTYD R package's ``cdnowSummary``): time is
counted in whole days between calendar dates, then divided by the unit (7 for weeks).
``T`` runs from the first purchase day to the calibration end day, so a customer who
first bought on 1997-01-01 has ``T = 272 / 7 = 38.86`` weeks with the calibration ending
1997-09-30; ``t_x`` runs from the first purchase day to the last repeat purchase day in
calibration. A purchase on the calibration end day itself belongs to the calibration.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import pandas as pd

from liucun.core import ConfigError
from liucun.datasets._cdnow import CdnowData

DateLike: TypeAlias = str | dt.date | pd.Timestamp


def cdnow_rft(
    data: CdnowData,
    calibration_end: DateLike = "1997-09-30",
    unit_days: int = 7,
    holdout_end: DateLike = "1998-06-30",
) -> pd.DataFrame:
    """Per-customer frequency, recency and age for the calibration period, plus holdout.

    One customer-day is one transaction; the first is the trial purchase, the rest are
    repeat transactions.

    Parameters
    ----------
    data
        The loaded CDNOW sample (:func:`load_cdnow`).
    calibration_end
        Last day of the calibration period (inclusive).
    unit_days
        Days per time unit: 7 gives weeks, the papers' unit.
    holdout_end
        Last day of the holdout period (inclusive); it starts the day after
        ``calibration_end``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers whose first purchase is on or before
        ``calibration_end``, sorted), with columns ``frequency`` (repeat transactions in
        calibration), ``recency`` (``t_x``: first purchase to last repeat purchase, 0 when
        ``frequency`` is 0), ``T`` (first purchase to ``calibration_end``),
        ``monetary_value`` (mean value of the calibration repeat transactions, 0 when
        ``frequency`` is 0) and ``holdout_frequency`` (transactions in the holdout).

    Raises
    ------
    ConfigError
        If ``unit_days`` is not positive or ``holdout_end`` is before ``calibration_end``.

    Examples
    --------
    >>> from liucun.datasets import load_cdnow
    >>> rft = cdnow_rft(load_cdnow())
    >>> rft.loc["00004", ["frequency", "recency", "T"]].round(2).tolist()
    [2.0, 30.43, 38.86]
    """
    if unit_days <= 0:
        raise ConfigError(f"unit_days must be a positive number of days, got {unit_days}")
    cal_end = pd.Timestamp(calibration_end)
    hold_end = pd.Timestamp(holdout_end)
    if hold_end < cal_end:
        raise ConfigError(
            f"holdout_end {hold_end.date()} is before calibration_end {cal_end.date()}; "
            "the holdout starts the day after the calibration ends"
        )
    tx = data.transactions[["customer_id", "date", "value"]]
    first = tx.groupby("customer_id", sort=True)["date"].min().rename("first")
    first = first[first <= cal_end]
    tx = tx.merge(first, left_on="customer_id", right_index=True, how="inner")

    repeat = tx[(tx["date"] > tx["first"]) & (tx["date"] <= cal_end)]
    holdout = tx[(tx["date"] > cal_end) & (tx["date"] <= hold_end)]
    per_repeat = repeat.groupby("customer_id").agg(
        frequency=("date", "size"), last=("date", "max"), monetary_value=("value", "mean")
    )

    out = pd.DataFrame(index=first.index)
    out["frequency"] = per_repeat["frequency"].reindex(out.index, fill_value=0).astype("int64")
    last = per_repeat["last"].reindex(out.index).fillna(first)
    out["recency"] = (last - first).dt.days.astype("float64") / unit_days
    out["T"] = (cal_end - first).dt.days.astype("float64") / unit_days
    out["monetary_value"] = (
        per_repeat["monetary_value"].reindex(out.index, fill_value=0.0).astype("float64")
    )
    out["holdout_frequency"] = (
        holdout.groupby("customer_id").size().reindex(out.index, fill_value=0).astype("int64")
    )
    return out
