"""The six monitors: each reads its numbers and says, per scope it could judge, whether
the condition fires, holds (an open alert stays open) or is clear. Nothing here writes;
:func:`liucun.journeys.run_monitors` turns the findings into alerts (docs/alerts.md).

=====================  =====  ======================================================
monitor                level  fires when
=====================  =====  ======================================================
``retention``          1      the overall or a region's daily retention of the last
                              ``window_days`` days is at least ``retention_drop``
                              below its seasonal baseline, significantly
``conversion``         2      a product line's or category's same-day conversion is
                              ``conversion_drop`` below its baseline, significantly
``customer_risk``      3      a customer with CLV ≥ ``vip_clv`` has a latest churn risk
                              ≥ ``vip_risk`` (a one-to-one service task is opened)
``retention_forecast`` 1      weekly retention forecast ``forecast_weeks`` ahead is
                              below ``[targets] weekly_retention``
``coupon_cost``        1      a currency's daily coupon cost is ``coupon_rise`` above
                              its baseline, significantly
``sla_breach``         3      a service task is past its SLA without a response
=====================  =====  ======================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import ibis
import pandas as pd

from liucun.core import ALERT_MONITORS, ConfigError, Hint, as_utc
from liucun.journeys._alert_series import (
    OVERALL,
    conversion_series,
    coupon_cost_series,
    end_day,
    retention_series,
)
from liucun.journeys._alert_stats import (
    OK,
    CheckConfig,
    DailySeries,
    Forecast,
    SeasonalCheck,
    forecast_series,
    seasonal_check,
)

State = Literal["firing", "holding", "clear"]
LEVELS: dict[str, int] = {
    "retention": 1,
    "conversion": 2,
    "customer_risk": 3,
    "retention_forecast": 1,
    "coupon_cost": 1,
    "sla_breach": 3,
}


@dataclass(frozen=True)
class Finding:
    """One scope of one monitor: ``key`` (``monitor:scope`` or ``monitor:subject``) is
    what de-duplicates alerts; ``value`` and ``baseline`` are the numbers compared;
    ``details`` is JSON-ready; ``task`` asks for a one-to-one service task (level 3)."""

    monitor: str
    level: int
    key: str
    state: State
    message: str
    scope: str | None = None
    subject: str | None = None
    value: float | None = None
    baseline: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] | None = None


@dataclass(frozen=True)
class MonitorResult:
    """What one monitor found. ``covers_all``: it judged every possible key, so an open
    alert of this monitor missing from ``findings`` is clear; otherwise (a scope it could
    not judge, e.g. too little history) such an alert is left as it is. ``skipped`` says
    why the monitor did not run (not configured), else None."""

    monitor: str
    findings: list[Finding] = field(default_factory=list)
    covers_all: bool = False
    skipped: str | None = None
    as_of: date | None = None


@dataclass(frozen=True)
class Context:
    """What every monitor needs: the workspace, the instant, the last complete day."""

    ws: Any
    now: datetime
    end: date
    timezone: str

    @property
    def cfg(self) -> Any:
        return self.ws.settings.alerts


def context(ws: Any, now: datetime) -> Context:
    """The monitors' context at ``now``: days up to the earlier of ``now`` and the data
    end count (a late load does not look like a drop)."""
    tz = ws.settings.reporting_timezone
    as_of = as_utc(now)
    data_end = ws.data_end()
    if data_end is not None and data_end < as_of:
        as_of = data_end
    return Context(ws, as_utc(now), end_day(as_of, tz), tz)


def check_config(
    ctx: Context, *, tests: int, direction: str, min_change: float, unit: float = 1.0
) -> CheckConfig:
    c = ctx.cfg
    return CheckConfig(
        window_days=c.window_days,
        baseline_weeks=c.baseline_weeks,
        backtest_weeks=c.backtest_weeks,
        direction=direction,  # type: ignore[arg-type]
        min_change=min_change,
        alpha=c.alpha,
        tests=max(1, tests),
        unit=unit,
    )


def _state(check: SeasonalCheck) -> State:
    return "firing" if check.firing else "holding" if check.holding else "clear"


def _pct(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.1%}"


def _num(value: float, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _details(check: SeasonalCheck) -> dict[str, Any]:
    return {
        "first_day": check.first_day.isoformat() if check.first_day else None,
        "last_day": check.last_day.isoformat() if check.last_day else None,
        "observed": check.observed,
        "expected": round(check.expected, 4),
        "observed_rate": check.observed_rate,
        "baseline_rate": check.baseline_rate,
        "change": round(check.change, 4),
        "dispersion": round(check.dispersion, 4),
        "p_value": check.p_value,
        "threshold": check.threshold,
    }


def _window(check: SeasonalCheck) -> str:
    return f"{check.first_day} – {check.last_day}"


# -- retention ---------------------------------------------------------------------------


def retention_monitor(ctx: Context) -> MonitorResult:
    """Daily retention, overall and per ``retention_by`` (level 1)."""
    c = ctx.cfg
    config = check_config(ctx, tests=1, direction="drop", min_change=c.retention_drop)
    frame = retention_series(
        ctx.ws.events(),
        ctx.ws.customers(),
        end=ctx.end,
        buckets=config.history_days,
        lookback=c.retention_lookback_days,
        by=c.retention_by,
        timezone=ctx.timezone,
    )
    scopes = sorted(frame["scope"].unique())
    config = check_config(ctx, tests=len(scopes), direction="drop", min_change=c.retention_drop)
    out = []
    for scope in scopes:
        rows = frame[frame["scope"] == scope]
        series = DailySeries(
            rows["start"].iloc[0],
            tuple(rows["returning"].astype(float)),
            tuple(rows["active"].astype(float)),
        )
        check = seasonal_check(series, config)
        if check.code != OK:
            continue
        label = "overall" if scope == OVERALL else f"{c.retention_by} {scope}"
        key_scope = OVERALL if scope == OVERALL else f"{c.retention_by}={scope}"
        out.append(
            Finding(
                monitor="retention",
                level=LEVELS["retention"],
                key=f"retention:{key_scope}",
                state=_state(check),
                scope=key_scope,
                value=check.observed_rate,
                baseline=check.baseline_rate,
                details=_details(check),
                message=(
                    f"Daily retention {label} is {-check.change:.0%} below its seasonal "
                    f"baseline over {_window(check)}: {check.observed:,.0f} customers came "
                    f"back ({_pct(check.observed_rate)} of the active) where "
                    f"{_num(check.expected)} were expected ({_pct(check.baseline_rate)}); "
                    f"p = {check.p_value:.2g}."
                    if check.change < 0
                    else f"Daily retention {label} is {_pct(check.observed_rate)} over "
                    f"{_window(check)}, baseline {_pct(check.baseline_rate)}."
                ),
            )
        )
    return MonitorResult("retention", out, as_of=ctx.end)


# -- conversion --------------------------------------------------------------------------


def conversion_monitor(ctx: Context) -> MonitorResult:
    """Same-day conversion per ``conversion_by`` value (level 2, to its owner)."""
    c = ctx.cfg
    config = check_config(ctx, tests=1, direction="drop", min_change=c.conversion_drop)
    frame = conversion_series(
        ctx.ws.events(),
        end=ctx.end,
        days=config.history_days,
        by=c.conversion_by,
        from_event=c.conversion_from,
        to_event=c.conversion_to,
        timezone=ctx.timezone,
    )
    scopes = sorted(frame["scope"].unique())
    config = check_config(ctx, tests=len(scopes), direction="drop", min_change=c.conversion_drop)
    out = []
    for scope in scopes:
        rows = frame[frame["scope"] == scope]
        series = DailySeries(
            rows["day"].iloc[0],
            tuple(rows["converted"].astype(float)),
            tuple(rows["viewers"].astype(float)),
        )
        check = seasonal_check(series, config)
        if check.code != OK:
            continue
        key_scope = f"{c.conversion_by}={scope}"
        step = f"{c.conversion_from} → {c.conversion_to}"
        out.append(
            Finding(
                monitor="conversion",
                level=LEVELS["conversion"],
                key=f"conversion:{key_scope}",
                state=_state(check),
                scope=key_scope,
                value=check.observed_rate,
                baseline=check.baseline_rate,
                details={**_details(check), "owner_of": scope},
                message=(
                    f"Conversion ({step}) in {c.conversion_by} {scope} is "
                    f"{-check.change:.0%} below its seasonal baseline over {_window(check)}: "
                    f"{check.observed:,.0f} of the viewers converted "
                    f"({_pct(check.observed_rate)}) where {_num(check.expected)} were "
                    f"expected ({_pct(check.baseline_rate)}); p = {check.p_value:.2g}."
                    if check.change < 0
                    else f"Conversion ({step}) in {c.conversion_by} {scope} is "
                    f"{_pct(check.observed_rate)} over {_window(check)}, baseline "
                    f"{_pct(check.baseline_rate)}."
                ),
            )
        )
    return MonitorResult("conversion", out, as_of=ctx.end)


# -- coupon cost -------------------------------------------------------------------------


def coupon_cost_monitor(ctx: Context) -> MonitorResult:
    """Daily coupon cost per currency against its baseline (level 1; rises only)."""
    c = ctx.cfg
    config = check_config(ctx, tests=1, direction="rise", min_change=c.coupon_rise)
    frame, raw = coupon_cost_series(
        ctx.ws, end=ctx.end, days=config.history_days, timezone=ctx.timezone
    )
    scopes = sorted(frame["scope"].unique())
    out = []
    window_start = ctx.end - timedelta(days=c.window_days)
    for scope in scopes:
        rows = frame[frame["scope"] == scope]
        before = raw[(raw["scope"] == scope) & (raw["day"] < window_start)]["discount"]
        # compound Poisson: a sum of amounts X has variance E[X²]/E[X] times its mean
        unit = float((before**2).sum() / before.sum()) if before.sum() > 0 else 1.0
        config = check_config(
            ctx, tests=len(scopes), direction="rise", min_change=c.coupon_rise, unit=unit
        )
        check = seasonal_check(
            DailySeries(rows["day"].iloc[0], tuple(rows["cost"].astype(float))), config
        )
        if check.code != OK:
            continue
        currency = scope.partition("=")[2]
        out.append(
            Finding(
                monitor="coupon_cost",
                level=LEVELS["coupon_cost"],
                key=f"coupon_cost:{scope}",
                state=_state(check),
                scope=scope,
                value=check.observed,
                baseline=check.expected,
                details={**_details(check), "currency": currency, "unit": unit},
                message=(
                    f"Coupon cost in {currency} is {check.change:.0%} above its seasonal "
                    f"baseline over {_window(check)}: {check.observed:,.2f} {currency} of "
                    f"discounts where {check.expected:,.2f} were expected; "
                    f"p = {check.p_value:.2g}."
                    if check.change > 0
                    else f"Coupon cost in {currency} is {check.observed:,.2f} over "
                    f"{_window(check)}, baseline {check.expected:,.2f}."
                ),
            )
        )
    return MonitorResult("coupon_cost", out, as_of=ctx.end)


# -- valuable customers at risk ----------------------------------------------------------


def customer_risk_monitor(ctx: Context) -> MonitorResult:
    """Customers whose latest score (any model) has CLV ≥ ``vip_clv`` and churn risk ≥
    ``vip_risk`` (level 3, each with a one-to-one service task)."""
    c = ctx.cfg
    if c.vip_clv is None:
        return MonitorResult("customer_risk", skipped="[alerts] vip_clv is not set", as_of=ctx.end)
    sc = ctx.ws.table("scores")
    sc = sc.filter((sc.as_of <= ctx.now) & sc.churn_risk.notnull())
    ranked = sc.mutate(
        _n=ibis.row_number().over(
            group_by="user_id", order_by=[ibis.desc("as_of"), ibis.desc("scored_at")]
        )
    )
    latest = ranked.filter(ranked._n == 0)
    before = ranked.filter(ranked._n == 1).select(_u="user_id", _prev="churn_risk")
    j = latest.left_join(before, latest.user_id == before._u)
    clv = j[c.clv_column]
    hits = j.filter((j.churn_risk >= c.vip_risk) & clv.notnull() & (clv >= c.vip_clv))
    hits = hits.select(
        "user_id",
        "churn_risk",
        "as_of",
        "model",
        "reasons",
        prev=hits._prev,
        clv=hits[c.clv_column],
    )
    customers = ctx.ws.customers()
    keep = [n for n in ("user_id", "customer_type", "account_id") if n in customers.columns]
    people = customers.select(*keep)
    found = hits.left_join(people, hits.user_id == people.user_id)
    frame = found.to_pandas()
    out = []
    for r in frame.sort_values("user_id").itertuples():
        reasons = [str(x) for x in (r.reasons if r.reasons is not None else [])][:3]
        was = "" if pd.isna(r.prev) else f" (was {r.prev:.2f})"
        summary = (
            f"Customer {r.user_id}, {c.clv_column.replace('_', ' ')} {r.clv:,.2f}, has a "
            f"churn risk of {r.churn_risk:.2f}{was} (scored {pd.Timestamp(r.as_of).date()})"
            + (": " + "; ".join(reasons) if reasons else "")
            + ". Reach out one to one."
        )
        customer_type = getattr(r, "customer_type", None)
        account_id = getattr(r, "account_id", None)
        out.append(
            Finding(
                monitor="customer_risk",
                level=LEVELS["customer_risk"],
                key=f"customer_risk:{r.user_id}",
                state="firing",
                scope="customer",
                subject=str(r.user_id),
                value=float(r.churn_risk),
                baseline=float(c.vip_risk),
                message=summary,
                details={
                    "clv": float(r.clv),
                    "clv_column": c.clv_column,
                    "churn_risk": float(r.churn_risk),
                    "previous_risk": None if pd.isna(r.prev) else float(r.prev),
                    "model": str(r.model),
                    "reasons": reasons,
                },
                task={
                    "user_id": str(r.user_id),
                    "summary": summary,
                    "customer_type": None if pd.isna(customer_type) else customer_type,
                    "account_id": None if pd.isna(account_id) else account_id,
                },
            )
        )
    return MonitorResult("customer_risk", out, covers_all=True, as_of=ctx.end)


# -- SLA breaches -------------------------------------------------------------------------


def sla_breach_monitor(ctx: Context) -> MonitorResult:
    """Service tasks past their SLA without a response (level 3); marks due breaches
    first (:func:`liucun.journeys.breach_due_tasks`)."""
    from liucun.journeys._tasks import breach_due_tasks, list_tasks

    breach_due_tasks(ctx.ws, ctx.now)
    out = []
    for t in list_tasks(ctx.ws, status="breached"):
        late = (ctx.now - t.sla_due_at).total_seconds() / 3600
        out.append(
            Finding(
                monitor="sla_breach",
                level=LEVELS["sla_breach"],
                key=f"sla_breach:task={t.id}",
                state="firing",
                scope=f"queue={t.queue}",
                subject=t.user_id,
                value=round(late, 2),
                baseline=0.0,
                message=(
                    f"Service task {t.id} ({t.queue}) for customer {t.user_id} is "
                    f"{late:,.1f} h past its SLA ({t.sla_due_at:%Y-%m-%d %H:%M} UTC) without "
                    f"a response: {t.summary}"
                ),
                details={"task_id": t.id, "queue": t.queue, "sla_due_at": t.sla_due_at.isoformat()},
            )
        )
    return MonitorResult("sla_breach", out, covers_all=True, as_of=ctx.end)


# -- retention forecast -------------------------------------------------------------------


def weekly_retention(ctx: Context, weeks: int) -> pd.DataFrame:
    """Overall weekly retention (``start, active, returning, rate``) for the ``weeks``
    complete weeks (7-day buckets) ending with the last complete day."""
    frame = retention_series(
        ctx.ws.events(),
        None,
        end=ctx.end,
        buckets=weeks,
        bucket_days=7,
        lookback=ctx.cfg.retention_lookback_days,
        timezone=ctx.timezone,
    )
    frame = frame[frame["active"] > 0].copy()
    frame["rate"] = frame["returning"] / frame["active"]
    return frame[["start", "active", "returning", "rate"]].reset_index(drop=True)


def retention_forecast_monitor(ctx: Context) -> MonitorResult:
    """Weekly retention ``forecast_weeks`` ahead vs ``[targets] weekly_retention``."""
    c = ctx.cfg
    target = ctx.ws.settings.targets.weekly_retention
    if target is None:
        return MonitorResult(
            "retention_forecast", skipped="[targets] weekly_retention is not set", as_of=ctx.end
        )
    weekly = weekly_retention(ctx, c.forecast_history_weeks)
    fc = forecast_series(weekly["rate"].to_numpy(dtype=float), c.forecast_weeks)
    if fc.code != OK:
        return MonitorResult("retention_forecast", as_of=ctx.end)
    week_of = ctx.end + timedelta(days=7 * (c.forecast_weeks - 1))
    below = fc.last < target
    last = float(weekly["rate"].iloc[-1])
    finding = Finding(
        monitor="retention_forecast",
        level=LEVELS["retention_forecast"],
        key="retention_forecast:overall",
        state="firing" if below else "clear",
        scope=OVERALL,
        value=fc.last,
        baseline=float(target),
        details=_forecast_details(fc, week_of, last, len(weekly)),
        message=(
            f"Weekly retention is forecast at {_pct(fc.last)} for the week of {week_of} "
            f"({c.forecast_weeks} weeks ahead; {fc.level:.0%} interval {_pct(fc.lower[-1])} – "
            f"{_pct(fc.upper[-1])}), below the target of {_pct(target)}; the last week had "
            f"{_pct(last)}."
            if below
            else f"Weekly retention is forecast at {_pct(fc.last)} for the week of {week_of}, "
            f"at or above the target of {_pct(target)}."
        ),
    )
    return MonitorResult("retention_forecast", [finding], covers_all=True, as_of=ctx.end)


def _forecast_details(fc: Forecast, week_of: date, last: float, weeks: int) -> dict[str, Any]:
    return {
        "model": fc.model,
        "week_of": week_of.isoformat(),
        "forecast": [round(v, 6) for v in fc.mean],
        "lower": round(fc.lower[-1], 6),
        "upper": round(fc.upper[-1], 6),
        "level": fc.level,
        "last_week": last,
        "weeks_fitted": weeks,
        "converged": fc.converged,
    }


MONITORS: dict[str, Callable[[Context], MonitorResult]] = {
    "retention": retention_monitor,
    "conversion": conversion_monitor,
    "customer_risk": customer_risk_monitor,
    "retention_forecast": retention_forecast_monitor,
    "coupon_cost": coupon_cost_monitor,
    "sla_breach": sla_breach_monitor,
}


def check_monitors(
    ws: Any, now: datetime | None = None, *, monitors: Sequence[str] | None = None
) -> list[MonitorResult]:
    """Run the monitors (default ``[alerts] monitors``) at ``now`` (default the clock)
    and return what they found, writing nothing (except SLA breaches, which
    :func:`liucun.journeys.breach_due_tasks` marks)."""
    names = list(monitors) if monitors is not None else list(ws.settings.alerts.monitors)
    unknown = [m for m in names if m not in MONITORS]
    if unknown:
        raise ConfigError(
            f"{', '.join(map(repr, unknown))} is not a monitor; use some of "
            f"{', '.join(ALERT_MONITORS)}",
            hint=Hint(option="monitors", example="retention", setting="alerts.monitors"),
        )
    ctx = context(ws, now if now is not None else ws.clock.now())
    return [MONITORS[name](ctx) for name in names]
