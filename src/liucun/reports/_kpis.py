"""Headline KPIs: the numbers `liucun metrics` prints and the report's header shows."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis.expr.types as ir
import pandas as pd

from liucun.metrics import churn_rate, day_n_retention, ltv_cac, order_value, repurchase_rate

#: How a KPI's value reads: a count, a rate (0–1), an amount of money, or a ratio.
KPI_KINDS = ("count", "rate", "money", "ratio")


def headline_kpis(
    events: ir.Table,
    users: ir.Table,
    *,
    as_of: datetime,
    timezone: str = "UTC",
    lookback_days: int = 90,
    horizon_days: int = 90,
) -> pd.DataFrame:
    """The headline KPIs up to ``as_of``: one row per ``metric, by, value, kind``.

    - active customers: ordered in the last ``lookback_days``;
    - D1/D7/D30 order retention (daily first-order cohorts in ``timezone``, complete
      cohorts only);
    - repurchase rate over the last 365 days;
    - churn rate: customers active in the ``lookback_days`` before ``as_of -
      horizon_days`` with no order in the ``horizon_days`` since;
    - AOV over the last 365 days, one row per currency, the most ordered currency first;
    - LTV/CAC per acquisition channel and over all channels (``by = "all channels"``).

    ``events`` should be the resolved events (merged identities count once).
    """
    events = events.filter(events.ts < as_of)
    year_ago = as_of - timedelta(days=365)
    rows: list[tuple[str, str, float | None, str]] = []
    active = repurchase_rate(events, start=as_of - timedelta(days=lookback_days)).to_pandas()
    rows.append(
        (
            f"active customers (ordered in the last {lookback_days} days)",
            "",
            _num(active.buyers.iloc[0]),
            "count",
        )
    )
    d = day_n_retention(events, as_of=as_of, timezone=timezone).to_pandas()
    for r in d.itertuples():
        rows.append((f"D{r.period} order retention", "", _num(r.rate), "rate"))
    rep = repurchase_rate(events, start=year_ago).to_pandas().iloc[0]
    rows.append(("repurchase rate (last 365 days)", "", _num(rep.rate), "rate"))
    churn = churn_rate(
        events,
        cutoff=as_of - timedelta(days=horizon_days),
        lookback_days=lookback_days,
        horizon_days=horizon_days,
    ).to_pandas()
    rows.append(
        (
            f"churn rate (active {horizon_days} days ago, no order since)",
            "",
            _num(churn.rate.iloc[0]),
            "rate",
        )
    )
    aov = order_value(events, start=year_ago).to_pandas()
    for r in aov.sort_values(["orders", "currency"], ascending=[False, True]).itertuples():
        rows.append(("AOV (last 365 days)", str(r.currency), _num(r.aov), "money"))
    channels = ltv_cac(events, users, as_of=as_of).to_pandas()
    for r in channels.itertuples():
        rows.append(("LTV/CAC", str(r.channel), _num(r.ltv_cac), "ratio"))
    rows.append(("LTV/CAC", "all channels", overall_ltv_cac(channels), "ratio"))
    return pd.DataFrame(rows, columns=["metric", "by", "value", "kind"])


def overall_ltv_cac(channels: pd.DataFrame) -> float | None:
    """LTV/CAC over all channels from :func:`liucun.metrics.ltv_cac`'s rows: total revenue
    ÷ total acquisition cost (channels without a known cost are left out)."""
    known = channels[channels.cac.notna()]
    cost = float((known.cac * known.customers).sum())
    return float(known.revenue.sum()) / cost if cost > 0 else None


def _num(value: object) -> float | None:
    """A float, or None for a missing value (NA, NaN, None)."""
    return None if pd.isna(value) else float(value)  # type: ignore[arg-type]
