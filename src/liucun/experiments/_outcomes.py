"""Retention outcomes of every exposed unit, and their per-variant sufficient statistics.

Both are Ibis expressions, so they run where the events live (DuckDB or Spark); the
statistics engine receives only the aggregated sums (gbstats' split of labour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from liucun.core import ConfigError, Hint, InvalidInput
from liucun.experiments._assignment import UNIT_TYPES, UnitType
from liucun.experiments.stats import AnyStat, CupedStat, MeanStat, ProportionStat, RatioStat
from liucun.metrics import days_between, property_number


def _campaign_pattern(campaign: str) -> str:
    escaped = "".join(f"\\{c}" if not c.isalnum() else c for c in campaign)
    return rf'"campaign_id"\s*:\s*"{escaped}"'


def unit_outcomes(
    events: ir.Table,
    units: ir.Table,
    *,
    window_days: int = 30,
    horizon_days: int = 90,
    pre_days: int = 90,
    unit_type: UnitType = "user",
    coupon_campaign: str | None = None,
    order_event: str = "order",
) -> ir.Table:
    """One row per exposed unit with its outcomes after exposure and before it.

    Parameters
    ----------
    events
        Canonical events, best resolved (``Workspace.events()``).
    units
        One row per unit: ``unit_id``, ``variant``, ``exposed_at`` (e.g.
        :func:`first_exposures`); other columns (``holdout``) are kept.
    window_days
        The outcome window ``[exposed_at, exposed_at + window_days)``.
    horizon_days
        The churn horizon: churned = no order within ``horizon_days`` of exposure.
    pre_days
        The pre-period ``[exposed_at − pre_days, exposed_at)`` for CUPED covariates.
    unit_type
        ``"user"`` joins events on ``user_id``, ``"account"`` on ``account_id``.
    coupon_campaign
        Count only coupons of this ``campaign_id`` as the cost (default: every coupon).

    Returns
    -------
    ibis.Table
        The units' columns plus ``orders``, ``revenue`` (order revenue), ``coupon_cost``
        (``discount`` of ``coupon_redeemed`` events, else their ``revenue``),
        ``net_revenue`` (revenue − coupon cost), ``buyer`` / ``repeat_buyer`` (≥ 1 / ≥ 2
        orders, 0/1), ``retained_d7`` / ``retained_d30`` (an order within 7 / 30 days,
        0/1), ``churned`` (no order within the horizon, 0/1), ``days_to_next_order``
        (NULL when none within the horizon) with ``has_next_order``, and the pre-period
        ``pre_orders``, ``pre_revenue``, ``pre_coupon_cost``, ``pre_net_revenue`` and
        ``active_before`` (an order in the pre-period, 0/1). All counts and amounts are
        0 when the unit has no events. Amounts are summed as given: pass events through
        :func:`liucun.metrics.convert_money` (``experiment_outcomes`` does, with the
        reporting currency) to add several currencies; a ``discount`` is then converted
        at its row's ``fx_rate``.
    """
    _check_outcome_options(units, window_days, horizon_days, pre_days, unit_type)
    key = "user_id" if unit_type == "user" else "account_id"
    priced = _priced_events(events, key, coupon_campaign=coupon_campaign, order_event=order_event)
    sums = _unit_sums(units, priced, window_days, horizon_days, pre_days)
    return _outcome_columns(units, sums)


def _check_outcome_options(
    units: ir.Table, window_days: int, horizon_days: int, pre_days: int, unit_type: str
) -> None:
    for name, days in (("window_days", window_days), ("horizon_days", horizon_days)):
        if days < 1:
            raise ConfigError(f"{name} must be at least 1, got {days}", hint=Hint(name, "30"))
    if pre_days < 0:
        raise ConfigError(f"pre_days must be ≥ 0, got {pre_days}", hint=Hint("pre_days", "90"))
    if unit_type not in UNIT_TYPES:
        raise ConfigError(
            f"unit_type must be 'user' or 'account', got {unit_type!r}",
            hint=Hint("unit_type", "user"),
        )
    missing = {"unit_id", "variant", "exposed_at"} - set(units.columns)
    if missing:
        raise InvalidInput(
            f"units lacks {', '.join(sorted(missing))}; pass first_exposures(...) or a table "
            "with unit_id, variant and exposed_at"
        )


def _priced_events(
    events: ir.Table, key: str, *, coupon_campaign: str | None, order_event: str
) -> ir.Table:
    """Orders and redeemed coupons of identified units: ``_unit``, ``_ts``, ``_order``
    (an order?), ``_revenue`` (order revenue, 0 otherwise) and ``_cost`` (a coupon's
    ``discount``, else its ``revenue``; 0 for orders and other campaigns' coupons)."""
    e = events.filter(
        events.event_type.isin([order_event, "coupon_redeemed"]) & events[key].notnull()
    )
    props = e.properties.fill_null("")
    discount = property_number(props, "discount")
    if "fx_rate" in e.columns:  # converted events: the discount is in the row's currency
        discount = discount * e.fx_rate.fill_null(1.0)
    is_coupon = e.event_type == "coupon_redeemed"
    if coupon_campaign is not None:
        is_coupon &= props.re_search(_campaign_pattern(coupon_campaign))
    return e.select(
        _unit=e[key],
        _ts=e.ts,
        _order=(e.event_type == order_event),
        _revenue=ibis.ifelse(e.event_type == order_event, e.revenue.fill_null(0.0), 0.0),
        _cost=ibis.ifelse(is_coupon, ibis.coalesce(discount, e.revenue, 0.0), 0.0),
    )


def _unit_sums(
    units: ir.Table, priced: ir.Table, window_days: int, horizon_days: int, pre_days: int
) -> ir.Table:
    """Per exposed unit (with any priced event): orders, revenue and cost in the window,
    orders within 7 / 30 days and the horizon, the first order's day within the horizon,
    and the pre-period's orders, revenue and cost; days count from the exposure."""
    u = units.select("unit_id", "exposed_at")
    j = u.join(priced, u.unit_id == priced._unit)
    d = days_between(j._ts, j.exposed_at)
    after, pre = d >= 0, (d < 0) & (d >= -pre_days)

    def within(days: float) -> ir.BooleanValue:
        return j._order & after & (d < days)

    def count(cond: ir.BooleanValue) -> ir.IntegerValue:
        return cond.cast("int64").sum()

    def total(cond: ir.BooleanValue, value: ir.FloatingValue) -> ir.FloatingValue:
        return ibis.ifelse(cond, value, 0.0).sum()

    in_window = after & (d < window_days)
    return j.group_by("unit_id").aggregate(
        _orders=count(within(window_days)),
        _revenue=total(in_window, j._revenue),
        _cost=total(in_window, j._cost),
        _d7=count(within(7)),
        _d30=count(within(30)),
        _horizon=count(within(horizon_days)),
        _next=ibis.ifelse(within(horizon_days), d, ibis.null("float64")).min(),
        _pre_orders=count(j._order & pre),
        _pre_revenue=total(pre, j._revenue),
        _pre_cost=total(pre, j._cost),
    )


def _outcome_columns(units: ir.Table, sums: ir.Table) -> ir.Table:
    """Every unit with its named outcome columns (0 where it had no events)."""
    joined = units.left_join(sums, units.unit_id == sums.unit_id)
    z = {c: joined[c].fill_null(0) for c in sums.columns if c not in ("unit_id", "_next")}
    f = {c: v.cast("float64") for c, v in z.items()}
    flag = {c: (v > 0).cast("int64") for c, v in z.items()}
    return joined.select(
        *units.columns,
        orders=f["_orders"],
        revenue=f["_revenue"],
        coupon_cost=f["_cost"],
        net_revenue=f["_revenue"] - f["_cost"],
        buyer=flag["_orders"],
        repeat_buyer=(z["_orders"] >= 2).cast("int64"),
        retained_d7=flag["_d7"],
        retained_d30=flag["_d30"],
        churned=1 - flag["_horizon"],
        days_to_next_order=joined._next,
        has_next_order=joined._next.notnull().cast("int64"),
        pre_orders=f["_pre_orders"],
        pre_revenue=f["_pre_revenue"],
        pre_coupon_cost=f["_pre_cost"],
        pre_net_revenue=f["_pre_revenue"] - f["_pre_cost"],
        active_before=flag["_pre_orders"],
    )


MetricKind = Literal["mean", "proportion", "ratio"]


@dataclass(frozen=True)
class Metric:
    """How to reduce an outcome column to the statistics of one metric.

    ``kind="mean"`` gives a :class:`MeanStat` (a :class:`CupedStat` when ``covariate``
    names a pre-period column), ``"proportion"`` a :class:`ProportionStat` of a 0/1
    column, ``"ratio"`` a :class:`RatioStat` of ``column`` over ``denominator``. NULLs
    count as 0.
    """

    name: str
    column: str
    kind: MetricKind = "mean"
    denominator: str | None = None
    covariate: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("mean", "proportion", "ratio"):
            raise ConfigError(f"metric kind must be mean, proportion or ratio, got {self.kind!r}")
        if (self.kind == "ratio") != (self.denominator is not None):
            raise ConfigError(
                f"metric {self.name!r}: a ratio needs a denominator, and only a ratio"
            )
        if self.covariate is not None and self.kind != "mean":
            raise ConfigError(f"metric {self.name!r}: CUPED covariates apply to mean metrics")


#: The retention metrics of :func:`unit_outcomes`, with CUPED covariates for the amounts.
RETENTION_METRICS: Final[tuple[Metric, ...]] = (
    Metric("orders", "orders", covariate="pre_orders"),
    Metric("revenue", "revenue", covariate="pre_revenue"),
    Metric("net_revenue", "net_revenue", covariate="pre_net_revenue"),
    Metric("coupon_cost", "coupon_cost"),
    Metric("retained_d7", "retained_d7", "proportion"),
    Metric("retained_d30", "retained_d30", "proportion"),
    Metric("churned", "churned", "proportion"),
    Metric("repurchase_rate", "repeat_buyer", "ratio", denominator="buyer"),
    Metric("days_to_next_order", "days_to_next_order", "ratio", denominator="has_next_order"),
)

_N = "n"


def variant_statistics(
    outcomes: ir.Table,
    metrics: Sequence[Metric] = RETENTION_METRICS,
    *,
    by: Sequence[str] = ("variant",),
) -> ir.Table:
    """Per-variant sufficient statistics of ``metrics``, aggregated in the backend.

    One row per value of ``by`` with ``n`` and, per metric ``m``: ``m__sum``,
    ``m__sum_sq``; for a ratio ``m__den_sum``, ``m__den_sum_sq``, ``m__cross``; for a
    covariate ``m__pre_sum``, ``m__pre_sum_sq``, ``m__cross``.
    """
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ConfigError(f"metric names must be distinct, got {names}")
    aggs: dict[str, ir.Value] = {_N: outcomes.count().cast("float64")}
    for m in metrics:
        y = outcomes[m.column].cast("float64").fill_null(0.0)
        aggs[f"{m.name}__sum"] = y.sum()
        aggs[f"{m.name}__sum_sq"] = (y * y).sum()
        other = m.denominator or m.covariate
        if other is not None:
            x = outcomes[other].cast("float64").fill_null(0.0)
            prefix = "den" if m.kind == "ratio" else "pre"
            aggs[f"{m.name}__{prefix}_sum"] = x.sum()
            aggs[f"{m.name}__{prefix}_sum_sq"] = (x * x).sum()
            aggs[f"{m.name}__cross"] = (x * y).sum()
    out = outcomes.group_by(list(by)).aggregate(**aggs)
    return out.mutate(**{c: out[c].fill_null(0.0) for c in aggs}).order_by(list(by))


def stats_from_table(
    table: pa.Table, metrics: Sequence[Metric] = RETENTION_METRICS, *, by: str = "variant"
) -> dict[str, dict[str, AnyStat]]:
    """``{variant: {metric: statistic}}`` from the executed :func:`variant_statistics`."""
    return {
        str(row[by]): {m.name: metric_stat(m, row) for m in metrics} for row in table.to_pylist()
    }


def metric_stat(metric: Metric, sums: Mapping[str, Any]) -> AnyStat:
    """The statistic of ``metric`` from the sums :func:`variant_statistics` names
    (numbers, or arrays of them for many groups at once)."""
    name, n = metric.name, sums[_N]
    s, s2 = sums[f"{name}__sum"], sums[f"{name}__sum_sq"]
    if metric.kind == "proportion":
        return ProportionStat(n=n, successes=s)
    if metric.kind == "ratio":
        return RatioStat(
            n=n,
            num_total=s,
            num_total_sq=s2,
            den_total=sums[f"{name}__den_sum"],
            den_total_sq=sums[f"{name}__den_sum_sq"],
            cross_total=sums[f"{name}__cross"],
        )
    if metric.covariate is not None:
        return CupedStat(
            n=n,
            total=s,
            total_sq=s2,
            pre_total=sums[f"{name}__pre_sum"],
            pre_total_sq=sums[f"{name}__pre_sum_sq"],
            cross_total=sums[f"{name}__cross"],
        )
    return MeanStat(n=n, total=s, total_sq=s2)


#: Columns of an outcomes file that identify a unit rather than measure it.
ID_COLUMNS: Final[frozenset[str]] = frozenset({"unit_id", "user_id", "account_id", "variant"})


def metrics_for_columns(frame: pd.DataFrame) -> tuple[Metric, ...]:
    """Metrics for a per-unit outcomes table read from a file: each boolean column is a
    proportion, each other numeric column a mean, with ``pre_<column>`` (when present)
    as its CUPED covariate; id columns, ``pre_*`` columns and text are not metrics."""
    out = []
    for name in frame.columns:
        col = str(name)
        if col in ID_COLUMNS or col.startswith("pre_"):
            continue
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out.append(Metric(col, col, "proportion"))
        elif pd.api.types.is_numeric_dtype(dtype):
            pre = f"pre_{col}"
            out.append(Metric(col, col, covariate=pre if pre in frame.columns else None))
    if not out:
        raise InvalidInput(
            "the outcomes have no numeric column to analyze; add one per metric (e.g. "
            "orders, revenue) next to `variant`"
        )
    return tuple(out)
