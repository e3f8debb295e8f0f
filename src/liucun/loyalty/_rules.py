"""Earning: what a program's rules award for warehouse events, as a plan (no writes).

:func:`plan_accrual` turns resolved events (``ws.events()``) into one row per (source
event, rule) that earns something; the ledger applies the rows, keyed by ``key`` so that
planning and applying again changes nothing.

- **Order rules** earn ``floor(amount × per_unit × multipliers)`` points and growth,
  ``amount`` being the order's revenue in the program currency (converted at the rate of
  its day in the program's time zone when the order is in another currency; an order
  without a currency is taken to be in the program's). Multipliers match on the member's
  tier (``tiers_by_user``), the order's category and channel (columns, else the
  ``category`` / ``channel`` keys of ``properties``) and its local date; matching
  multipliers multiply. An order below the rule's ``min_amount`` earns nothing.
- **First order**: a customer's first order worth more than ``first_order.min_amount``
  over the whole ``events`` given earns the bonus (rule ``first_order``); pass the whole
  history and select new rows with ``since``.
- **Behaviour rules** earn their points and growth for each event of their type, at most
  ``cap.events`` actions and ``cap.points`` points per calendar period of the program's
  time zone (weeks start on Monday); the points cap trims points only.
- **Refunds** (``refund`` events with the ``order_id`` of an order) become ``reversal``
  rows with negative points and growth, keyed to the refund and pointing at the order's
  row (``reverses_key``): after refunds a member holds what the order's remaining amount
  would have earned; the first-order bonus goes when the remaining amount no longer
  qualifies. ``return_policy`` carries the program's policy for the ledger to apply
  (``only_pending``, ``within_balance``, ``unlimited``); the plan itself does not know
  balances.
- **Pending and validity**: an order's points are ``available_at`` its time, some days
  later, or the first later event of ``points.pending.event_type`` with the same
  ``order_id`` (NaT while that has not happened); they expire ``points.validity`` after
  they become available, rounded to the end of the day or month. Behaviour points are
  available at once. Growth counts from the event's time (``ts``) and does not expire:
  tiers read it over their own window.

Rows that would earn nothing (a zero-value order, a capped action) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import ConfigError, as_utc
from liucun.loyalty._program import BehaviourRule, OrderRule, Program
from liucun.metrics import convert_money, property_text
from liucun.schema import ibis_schema

#: Columns of :func:`plan_accrual`'s result, in order.
ACCRUAL_COLUMNS: tuple[str, ...] = (
    "user_id",
    "source_event_id",
    "rule",
    "kind",
    "ts",
    "order_id",
    "points",
    "growth",
    "available_at",
    "expires_at",
    "key",
    "reverses_key",
    "return_policy",
)
FIRST_ORDER = "first_order"
_EPS = 1e-9
_NEEDED = ("event_id", "user_id", "event_type", "ts", "revenue", "currency", "order_id")


def accrual_key(event_id: str, rule: str) -> str:
    """The idempotency key of what ``rule`` earned for event ``event_id``."""
    return f"accrue:{event_id}:{rule}"


def plan_accrual(
    events: ir.Table | pd.DataFrame,
    program: Program,
    *,
    tiers_by_user: Mapping[str, str] | pd.DataFrame | None = None,
    since: datetime | None = None,
    fx_rates: ir.Table | None = None,
) -> pd.DataFrame:
    """What ``program`` awards for ``events`` (see the module docstring).

    Parameters
    ----------
    events
        Resolved events (``ws.events()``) or a DataFrame with the events' columns.
    tiers_by_user
        Each member's tier for tier multipliers (a mapping or a ``user_id, tier``
        frame); members not in it match no tier multiplier.
    since
        Return only rows whose source event is at or after this instant (caps and the
        first order are still counted over all ``events``).
    fx_rates
        The ``fx_rates`` table, needed when an order's currency is not the program's.

    Returns
    -------
    pandas.DataFrame
        :data:`ACCRUAL_COLUMNS`, sorted by ``ts``, ``source_event_id`` and ``rule``.
    """
    table = _as_table(events) if isinstance(events, pd.DataFrame) else events
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ConfigError(
            f"the events lack {', '.join(missing)}; pass resolved warehouse events "
            "(ws.events()) or a frame with the events table's columns"
        )
    frame = _read(table, program, fx_rates)
    tiers = _tier_map(tiers_by_user)
    parts = [
        _order_rows(frame, program, tiers),
        *(_behaviour_rows(frame, rule, program) for rule in program.earning.behaviours),
    ]
    out = pd.concat([p for p in parts if not p.empty] or [_empty()], ignore_index=True)
    out = out[(out.points != 0) | (out.growth != 0)]
    if since is not None:
        out = out[out.ts >= pd.Timestamp(as_utc(since))]
    out = out.sort_values(["ts", "source_event_id", "rule"], kind="stable")
    out = out.reset_index(drop=True)
    return out.astype({"points": "int64", "growth": "int64"})[list(ACCRUAL_COLUMNS)]


def pending_releases(plan: pd.DataFrame, *, since: datetime) -> pd.DataFrame:
    """Rows of an unfiltered :func:`plan_accrual` result earned before ``since`` whose
    points became available at or after it — an order delivered after the last accrual
    run (``pending: on_event``): the ledger marks the pending entry with that ``key``
    available at ``available_at``. Sorted by ``available_at`` and ``key``."""
    at = pd.Timestamp(as_utc(since))
    late = plan[(plan.kind == "earn") & (plan.ts < at) & (plan.available_at >= at)]
    cols = ["user_id", "key", "points", "available_at", "expires_at"]
    return late.sort_values(["available_at", "key"], kind="stable")[cols].reset_index(drop=True)


# -- reading ----------------------------------------------------------------------------


def _read(table: ir.Table, program: Program, fx_rates: ir.Table | None) -> pd.DataFrame:
    types = {"order", "refund"} | {r.event_type for r in program.earning.behaviours}
    pending = program.points.pending
    if pending.mode == "on_event" and pending.event_type:
        types.add(pending.event_type)
    t = table.filter(table.user_id.notnull() & table.event_type.isin(sorted(types)))
    props = t.properties if "properties" in t.columns else ibis.null("string")
    extra = {
        "category": _column_or_property(t, props, "category"),
        "channel": _column_or_property(t, props, "channel"),
    }
    t = t.select(*_NEEDED, **extra)
    money = t.filter(t.event_type.isin(["order", "refund"]))
    rest = t.filter(~t.event_type.isin(["order", "refund"]))
    foreign = money.filter(money.currency.notnull() & (money.currency != program.currency))
    if foreign.count().to_pyarrow().as_py():
        converted = convert_money(
            money, fx_rates, currency=program.currency, timezone=program.timezone
        )
    else:  # nothing to convert (and no rates needed)
        converted = money
    if "fx_rate" in converted.columns:
        amount = ibis.ifelse(
            converted.original_currency.isnull(), converted.original_revenue, converted.revenue
        )
        converted = converted.mutate(amount=amount, original=converted.original_revenue)
    else:
        converted = converted.mutate(
            amount=converted.revenue,
            original=converted.revenue,
            original_currency=converted.currency,
        )
    cols = [*_NEEDED, "category", "channel"]
    money_df = converted.select(*cols, "amount", "original", "original_currency").to_pandas()
    rest_df = rest.select(*cols).to_pandas()
    frame = pd.concat(
        [d for d in (money_df, rest_df) if not d.empty] or [money_df], ignore_index=True
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for col in ("amount", "original", "original_currency"):
        if col not in frame.columns:  # no order or refund among the events
            frame[col] = None
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").fillna(0.0)
    frame["original"] = pd.to_numeric(frame["original"], errors="coerce").fillna(0.0)
    return frame.sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)


def _as_table(frame: pd.DataFrame) -> ir.Table:
    """A frame as an Ibis table typed like the events table (an all-NULL column of a
    small hand-made frame would otherwise have no type)."""
    canonical = ibis_schema("events")
    types = {c: canonical[c] for c in frame.columns if c in canonical}
    frame = frame.copy()
    if "ts" in frame.columns:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for col, dtype in types.items():
        if dtype.is_string():
            frame[col] = frame[col].astype("object").where(frame[col].notna(), None)
    return ibis.memtable(frame).cast(types)


def _column_or_property(t: ir.Table, props: ir.Value, key: str) -> ir.StringValue:
    from_props = property_text(props, key) if "properties" in t.columns else ibis.null("string")
    if key in t.columns:
        return t[key].nullif("").coalesce(from_props)
    return from_props


def _tier_map(tiers: Mapping[str, str] | pd.DataFrame | None) -> dict[str, str]:
    if tiers is None:
        return {}
    if isinstance(tiers, pd.DataFrame):
        if not {"user_id", "tier"} <= set(tiers.columns):
            raise ConfigError("tiers_by_user needs user_id and tier columns")
        return dict(zip(tiers.user_id.astype(str), tiers.tier.astype(str), strict=True))
    return dict(tiers)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in ACCRUAL_COLUMNS}).astype(
        {"points": "int64", "growth": "int64", "ts": "datetime64[us, UTC]"}
    )


# -- orders and refunds -----------------------------------------------------------------


def _order_rows(frame: pd.DataFrame, program: Program, tiers: dict[str, str]) -> pd.DataFrame:
    orders = frame[frame.event_type == "order"].drop_duplicates("event_id").copy()
    if orders.empty:
        return _empty()
    orders["local_date"] = orders.ts.dt.tz_convert(program.timezone).dt.date
    orders["tier"] = orders.user_id.map(tiers)
    orders["available_at"] = _available_at(orders, frame, program)
    orders["expires_at"] = _expires_at(orders.available_at, program)
    refunds = _refunds(frame, orders)
    rows: list[pd.DataFrame] = []
    for rule in program.earning.orders:
        fp, fg = _factors(orders, rule)
        rows.append(_earn_frame(orders, rule.name, *_earned(orders.amount, rule, fp, fg), program))
        if not refunds.empty:

            def again(
                amount: np.ndarray, at: np.ndarray, rule: OrderRule = rule, fp=fp, fg=fg
            ) -> tuple[np.ndarray, np.ndarray]:
                return _earned(amount, rule, fp[at], fg[at])

            rows.append(_reversals(orders, refunds, rule.name, program, again))
    first = program.earning.first_order
    if first is not None and (first.growth or first.points):
        firsts = orders[orders.amount > first.min_amount + _EPS].drop_duplicates("user_id")
        n = len(firsts)
        bonus_p, bonus_g = np.full(n, first.points), np.full(n, first.growth)
        rows.append(_earn_frame(firsts, FIRST_ORDER, bonus_p, bonus_g, program))
        if not refunds.empty:

            def bonus(amount: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                ok = amount > first.min_amount + _EPS
                return ok * first.points, ok * first.growth

            rows.append(_reversals(firsts, refunds, FIRST_ORDER, program, bonus))
    return pd.concat(rows, ignore_index=True) if rows else _empty()


def _factors(orders: pd.DataFrame, rule: OrderRule) -> tuple[np.ndarray, np.ndarray]:
    fp = np.ones(len(orders))
    fg = np.ones(len(orders))
    for m in rule.multipliers:
        hit = np.ones(len(orders), dtype=bool)
        if m.tiers is not None:
            hit &= orders.tier.isin(m.tiers).to_numpy()
        if m.categories is not None:
            hit &= orders.category.isin(m.categories).to_numpy()
        if m.channels is not None:
            hit &= orders.channel.isin(m.channels).to_numpy()
        if m.start is not None:
            hit &= (orders.local_date >= m.start).to_numpy()
        if m.end is not None:
            hit &= (orders.local_date <= m.end).to_numpy()
        factor = np.where(hit, m.factor, 1.0)
        if m.applies_to in ("points", "both"):
            fp *= factor
        if m.applies_to in ("growth", "both"):
            fg *= factor
    return fp, fg


def _earned(
    amount: pd.Series | np.ndarray, rule: OrderRule, fp: np.ndarray, fg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(amount, dtype="float64")
    ok = a >= rule.min_amount - _EPS
    points = np.floor(a * rule.points_per_unit * fp + _EPS) * ok
    growth = np.floor(a * rule.growth_per_unit * fg + _EPS) * ok
    return points.astype("int64"), growth.astype("int64")


def _earn_frame(
    src: pd.DataFrame, rule: str, points: np.ndarray, growth: np.ndarray, program: Program
) -> pd.DataFrame:
    ids = src.event_id.astype(str)
    return pd.DataFrame(
        {
            "user_id": src.user_id.astype(str).to_numpy(),
            "source_event_id": ids.to_numpy(),
            "rule": rule,
            "kind": "earn",
            "ts": _utc(src.ts),
            "order_id": src.order_id.to_numpy() if "order_id" in src else None,
            "points": np.asarray(points, dtype="int64"),
            "growth": np.asarray(growth, dtype="int64"),
            "available_at": _utc(src.available_at if "available_at" in src else src.ts),
            "expires_at": _utc(src.expires_at if "expires_at" in src else None, len(src)),
            "key": [accrual_key(i, rule) for i in ids],
            "reverses_key": None,
            "return_policy": None,
        }
    )


def _utc(values: pd.Series | None, n: int = 0) -> np.ndarray:
    """UTC instants as a tz-aware array (``n`` NaT when ``values`` is None)."""
    if values is None:
        return pd.array([pd.NaT] * n, dtype="datetime64[us, UTC]")
    return pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]").array


def _refunds(frame: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Each refund matched to its order's first event, with the share of the order it
    takes back cumulated per order (in the recorded currency when both share it)."""
    refunds = frame[(frame.event_type == "refund") & frame.order_id.notna()]
    firsts = orders.drop_duplicates("order_id")[
        ["order_id", "event_id", "user_id", "amount", "original", "original_currency"]
    ]
    matched = refunds.merge(firsts, on="order_id", suffixes=("", "_order"))
    if matched.empty:
        return matched
    same = matched.original_currency.eq(matched.original_currency_order).to_numpy()
    num = np.where(same, matched.original, matched.amount)
    den = np.where(same, matched.original_order, matched.amount_order)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    matched["share"] = share
    matched = matched.sort_values(["ts", "event_id"], kind="stable")
    matched["cum_share"] = matched.groupby("order_id").share.cumsum().clip(upper=1.0)
    return matched


def _reversals(
    earned: pd.DataFrame,
    refunds: pd.DataFrame,
    rule: str,
    program: Program,
    earn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """Negative rows: what ``rule`` held for the order before each refund minus what the
    order's remaining amount earns after it. ``earn(amounts, positions)`` is the rule's
    award for ``amounts`` of the orders at ``positions`` of ``earned``."""
    pos = pd.Series(np.arange(len(earned)), index=earned.event_id.to_numpy())
    r = refunds[refunds.event_id_order.isin(pos.index)]
    if r.empty:
        return _empty()
    at = pos.loc[r.event_id_order.to_numpy()].to_numpy()
    amounts = earned.amount.to_numpy(dtype="float64")[at]
    before = r.groupby("order_id").cum_share.shift(1, fill_value=0.0).to_numpy()
    after = r.cum_share.to_numpy()
    p0, g0 = earn(np.maximum(amounts * (1.0 - before), 0.0), at)
    p1, g1 = earn(np.maximum(amounts * (1.0 - after), 0.0), at)
    ids = r.event_id.astype(str).to_numpy()
    return pd.DataFrame(
        {
            # the account that earned: the order's customer
            "user_id": r.user_id_order.astype(str).to_numpy(),
            "source_event_id": ids,
            "rule": rule,
            "kind": "reversal",
            "ts": _utc(r.ts),
            "order_id": r.order_id.to_numpy(),
            "points": np.asarray(p1, dtype="int64") - np.asarray(p0, dtype="int64"),
            "growth": np.asarray(g1, dtype="int64") - np.asarray(g0, dtype="int64"),
            "available_at": _utc(r.ts),
            "expires_at": _utc(None, len(r)),
            "key": [accrual_key(i, rule) for i in ids],
            "reverses_key": [accrual_key(str(i), rule) for i in r.event_id_order],
            "return_policy": program.points.return_policy,
        }
    )


# -- pending and validity ---------------------------------------------------------------


def _available_at(orders: pd.DataFrame, frame: pd.DataFrame, program: Program) -> pd.Series:
    pending = program.points.pending
    if pending.mode == "immediate":
        return orders.ts
    if pending.mode == "after":
        return orders.ts + pd.Timedelta(days=pending.days or 0)
    actions = frame[(frame.event_type == pending.event_type) & frame.order_id.notna()]
    pairs = orders[["event_id", "order_id", "ts"]].merge(
        actions[["order_id", "ts"]].rename(columns={"ts": "action_ts"}), on="order_id"
    )
    pairs = pairs[pairs.action_ts >= pairs.ts]
    first = pairs.groupby("event_id").action_ts.min()
    at = pd.to_datetime(first.reindex(orders.event_id.to_numpy()).to_numpy(), utc=True)
    return pd.Series(at, index=orders.index).astype("datetime64[us, UTC]")


def _expires_at(available: pd.Series, program: Program) -> pd.Series:
    validity = program.points.validity
    if validity is None:
        return pd.Series(pd.NaT, index=available.index, dtype="datetime64[us, UTC]")
    local = pd.to_datetime(available, utc=True).dt.tz_convert(program.timezone)
    if validity.unit == "days":
        end = local + pd.DateOffset(days=validity.amount)
    else:
        end = local + pd.DateOffset(months=validity.amount)
    if validity.rounding == "day":
        end = end.dt.normalize() + pd.DateOffset(days=1)
    elif validity.rounding == "month":
        end = (
            end.dt.normalize() - pd.to_timedelta(end.dt.day - 1, unit="D") + pd.DateOffset(months=1)
        )
    return end.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


# -- behaviour --------------------------------------------------------------------------


def _period_start(ts: pd.Series, per: str, timezone: str) -> pd.Series:
    local = ts.dt.tz_convert(timezone).dt.tz_localize(None)
    if per == "day":
        return local.dt.floor("D")
    if per == "week":
        day = local.dt.floor("D")
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    freq = {"month": "M", "quarter": "Q", "year": "Y"}[per]
    return local.dt.to_period(freq).dt.start_time


def _behaviour_rows(frame: pd.DataFrame, rule: BehaviourRule, program: Program) -> pd.DataFrame:
    acts = frame[frame.event_type == rule.event_type].drop_duplicates("event_id").copy()
    if acts.empty or not (rule.points or rule.growth):
        return _empty()
    points = np.full(len(acts), rule.points, dtype="int64")
    growth = np.full(len(acts), rule.growth, dtype="int64")
    if (cap := rule.cap) is not None:
        acts["_period"] = _period_start(acts.ts, cap.per, program.timezone)
        group = acts.groupby(["user_id", "_period"], sort=False)
        if cap.events is not None:
            within = (group.cumcount() < cap.events).to_numpy()
            points, growth = points * within, growth * within
        if cap.points is not None:
            acts["_p"] = points
            before = acts.groupby(["user_id", "_period"], sort=False)._p.cumsum() - acts._p
            room = np.maximum(cap.points - before.to_numpy(), 0)
            points = np.minimum(points, room)
    acts["available_at"] = acts.ts
    acts["expires_at"] = _expires_at(acts.ts, program)
    return _earn_frame(acts, rule.name, points, growth, program)
