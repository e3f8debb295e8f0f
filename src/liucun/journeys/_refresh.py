"""Freshness: re-derive a few customers' figures after their new events, in seconds.

:func:`refresh_customers` is what the service's loader calls for the user ids of each
micro-batch it moved into the warehouse. For those customers only, as of now:

- **churn risk, P(alive), expected orders, CLV and reasons**, by the saved model
  (``liucun train``, :data:`liucun.models.MODEL_NAME`): the churn features
  (:func:`liucun.models.churn.churn_features`) are computed over the events of these
  customers (and of the other buyers of their B2B accounts, for the account cadence)
  — every feature is an aggregate of the customer's own events, so that is the same
  number the full scoring computes; the BG/NBD features (``p_alive``,
  ``expected_orders``) use a BG/NBD fitted on *every* buyer, as the full scoring's
  :func:`~liucun.models.churn.btyd_features` does;
- **lifecycle stage** (the population's median cadence for one-order customers) and
  **RFM segment** (ranked against every buyer's recency, frequency and monetary value);
- **loyalty accrual** of their events of the last ``accrual_lookback`` (30 days), by the
  accrual's own planner and ledger writer (:func:`liucun.loyalty.plan_accrual`, keys
  ``accrue:<event>:<rule>``), when a program is applied — the next full ``accrue`` run
  replays those keys and adds nothing twice. It is not recorded as an accrual run (the
  next full run must still see the other customers' events).

The scores are appended to the warehouse's ``scores`` table, one row per customer with
``as_of`` = now (the table's key is user × as_of × model version; the full scoring's
rows stay), where :func:`customer_view`, the journeys' profiles and the decider read the
latest row.

The population parts (the BG/NBD fit, the median cadence, the RFM distribution) need
every customer; pass a :class:`RefreshCache` kept between calls and they are computed
once per ``max_age`` (they move slowly: one micro-batch changes them by a hair).
Without one they are computed on each call, and the risk is exactly the full scoring's
for the same ``as_of`` (the tests check it).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from liucun.core import LiucunError, as_utc
from liucun.segments import SEGMENT_GRID, lifecycle_stages
from liucun.segments._stages import StageRules

#: How long the population parts of a :class:`RefreshCache` are reused by default.
POPULATION_MAX_AGE = timedelta(hours=1)
#: How far back the refresh's accrual looks for the customers' events (older ones are
#: the full ``liucun loyalty accrue`` run's).
ACCRUAL_LOOKBACK = timedelta(days=30)
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass
class _Population:
    """Every buyer's figures the per-customer refresh ranks against."""

    as_of: datetime
    btyd: Any | None
    fallback_cadence: float
    last_s: np.ndarray  # sorted epoch seconds of each buyer's last order
    frequency: np.ndarray  # sorted
    monetary: np.ndarray  # sorted
    mean_last_s: float
    mean_frequency: float
    mean_monetary: float


@dataclass
class RefreshCache:
    """What :func:`refresh_customers` may reuse between calls: the loaded model and the
    population parts, recomputed when older than ``max_age`` (of the workspace clock)
    or when the saved model's version changes."""

    max_age: timedelta = POPULATION_MAX_AGE
    model: tuple[Any, Any] | None = field(default=None, repr=False)
    model_checked_at: float = 0.0
    population: _Population | None = field(default=None, repr=False)
    engine: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class RefreshResult:
    """What one :func:`refresh_customers` call did: customers asked for, scored (buyers:
    a customer without an order gets no score, as in the full scoring), the stage of
    each, the accrual ledger writes, and the time it took."""

    as_of: datetime
    users: int
    scored: int
    model_version: str | None
    stages: dict[str, str]
    risks: dict[str, float]
    accrued: int
    points: int
    seconds: float
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "as_of": self.as_of.isoformat(),
            "users": self.users,
            "scored": self.scored,
            "model_version": self.model_version,
            "stages": dict(self.stages),
            "risks": dict(self.risks),
            "accrued": self.accrued,
            "points": self.points,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "timings": dict(self.timings),
        }


def refresh_customers(
    ws: Any,
    user_ids: Iterable[str],
    *,
    as_of: datetime | None = None,
    cache: RefreshCache | None = None,
    accrue: bool = True,
    accrual_lookback: timedelta = ACCRUAL_LOOKBACK,
    top_reasons: int = 3,
) -> RefreshResult:
    """Recompute recency, stage, segment, churn risk (with reasons) and value of
    ``user_ids`` as of ``as_of`` (default now), append their scores, and accrue their
    loyalty points (see the module docstring)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    mark = [started]

    def lap(name: str) -> None:
        t = time.perf_counter()
        timings[name] = round(t - mark[0], 4)
        mark[0] = t

    now = as_utc(as_of if as_of is not None else ws.clock.now())
    users = _canonical(ws, user_ids)
    lap("resolve")
    notes: list[str] = []
    if not users:
        return RefreshResult(now, 0, 0, None, {}, {}, 0, 0, 0.0)
    import ibis

    from liucun.models._training import _money

    loaded = _model(ws, cache)  # first: a new model version resets the population
    money = _money(ws)
    pop = _population(ws, money, now, cache, btyd=loaded is not None)
    lap("population")
    # the customers' rows, materialized once: every expression below runs on them in a
    # private DuckDB (compiling over a small in-memory table is several times faster
    # than over the warehouse's resolved views, and the numbers are the same)
    events_t = _events_of(money, users, now)
    customers_t = ws.customers()
    customers_t = customers_t.filter(customers_t.user_id.isin(users)).to_pyarrow()
    events, customers = ibis.memtable(events_t), ibis.memtable(customers_t)
    lap("read")
    con = _engine(cache)
    rules = StageRules(default_cadence_days=pop.fallback_cadence)
    stages_t = con.to_pandas(lifecycle_stages(events, as_of=now, users=customers, rules=rules))
    stages_t = stages_t[stages_t.user_id.isin(users)]
    stages = {str(u): str(s) for u, s in zip(stages_t.user_id, stages_t.stage, strict=True)}
    lap("stages")
    scored = 0
    version = None
    risks: dict[str, float] = {}
    if loaded is None:
        notes.append("no saved model (liucun train makes one): churn risk not re-scored")
    else:
        bundle, card = loaded
        version = card.version
        rows = _score(
            ws, con, bundle, card, events, customers, users, now, pop, stages, top_reasons
        )
        scored = len(rows)
        risks = {str(u): float(r) for u, r in zip(rows.user_id, rows.churn_risk, strict=True)}
        lap("score")
    accrued = points = 0
    if accrue:
        accrued, points, note = _accrue(ws, users, now, accrual_lookback)
        if note:
            notes.append(note)
        lap("accrue")
    return RefreshResult(
        as_of=now,
        users=len(users),
        scored=scored,
        model_version=version,
        stages=stages,
        risks=risks,
        accrued=accrued,
        points=points,
        seconds=round(time.perf_counter() - started, 4),
        notes=tuple(notes),
        timings=timings,
    )


# -- inputs ------------------------------------------------------------------------------


def _canonical(ws: Any, user_ids: Iterable[str]) -> list[str]:
    """The canonical customers of ``user_ids`` (an alias of type user_id merged into
    another customer counts as that customer)."""
    raw = sorted({str(u) for u in user_ids if u is not None and str(u).strip()})
    if not raw:
        return []
    ids = ws.table("identities")
    merged = (
        ids.filter((ids.alias_type == "user_id") & ids.valid_to.isnull() & ids["alias"].isin(raw))
        .select("alias", "user_id")
        .to_pyarrow()
    )
    mapping = dict(
        zip(merged.column("alias").to_pylist(), merged.column("user_id").to_pylist(), strict=True)
    )
    return sorted({str(mapping.get(u, u)) for u in raw})


def _events_of(money: Any, users: list[str], now: datetime) -> Any:
    """The events before ``now`` of ``users`` and of every buyer of their B2B accounts
    (the account cadence feature counts the whole account's orders), as Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mine = money.filter(money.user_id.isin(users) & (money.ts < now)).to_pyarrow()
    accounts = pc.unique(pc.drop_null(mine.column("account_id"))).to_pylist()
    if not accounts:
        return mine
    others = money.filter(
        money.account_id.isin(accounts) & ~money.user_id.isin(users) & (money.ts < now)
    ).to_pyarrow()
    return pa.concat_tables([mine, others.cast(mine.schema)])


def _engine(cache: RefreshCache | None) -> Any:
    """A private in-memory DuckDB with liucun's functions (kept on the cache)."""
    from liucun.warehouse import new_engine

    if cache is None:
        return new_engine()
    if cache.engine is None:
        cache.engine = new_engine()
    return cache.engine


def _model(ws: Any, cache: RefreshCache | None) -> tuple[Any, Any] | None:
    """The latest saved retention model (bundle, card), or None; a cache re-reads the
    registry at most every 60 s (a newly trained version is picked up then)."""
    from liucun.models import MODEL_NAME, list_models, load_model

    fresh = cache is not None and time.monotonic() - cache.model_checked_at < 60.0
    if cache is not None and cache.model is not None and fresh:
        return cache.model
    cards = list_models(ws.models_dir, MODEL_NAME)
    if not cards:
        return None
    latest = cards[-1].version
    if cache is not None and cache.model is not None and cache.model[1].version == latest:
        cache.model_checked_at = time.monotonic()
        return cache.model
    loaded = load_model(ws.models_dir, MODEL_NAME, latest)
    if cache is not None:
        cache.model = loaded
        cache.model_checked_at = time.monotonic()
        cache.population = None  # the fit may depend on the model's horizon
    return loaded


# -- the population parts ----------------------------------------------------------------


def _population(
    ws: Any, money: Any, now: datetime, cache: RefreshCache | None, *, btyd: bool
) -> _Population:
    if cache is not None and cache.population is not None:
        age = now - cache.population.as_of
        if timedelta(0) <= age < cache.max_age and (cache.population.btyd is not None or not btyd):
            return cache.population
    pop = _fit_population(money, now, btyd=btyd)
    if cache is not None:
        cache.population = pop
    return pop


def _fit_population(money: Any, now: datetime, *, btyd: bool = True) -> _Population:
    """The BG/NBD of :func:`~liucun.models.churn.btyd_features`, the fallback cadence of
    :func:`~liucun.segments.lifecycle_stages` and the RFM distribution of
    :func:`~liucun.segments.rfm`, over every buyer before ``now``."""
    from liucun.journeys._customer import _fallback_cadence
    from liucun.metrics import orders
    from liucun.models._summary import customer_summary
    from liucun.models.btyd import BetaGeoModel, ConvergenceError, fit_with_penalizers
    from liucun.models.churn._features import BTYD_PENALIZERS

    model = None
    if btyd:
        before = money.filter(money.ts < now)
        last_day = (now - timedelta(microseconds=1)).date()
        summary = customer_summary(before, calibration_end=last_day, time_unit_days=7.0)
        rft = summary.select("frequency", "recency", "T").to_pandas()
        if not rft.empty:
            x, tx, big_t = (
                rft[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T")
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # as btyd_features: a failed fit is NaN
                try:
                    model, _ = fit_with_penalizers(
                        BetaGeoModel, x, tx, big_t, penalizers=BTYD_PENALIZERS, warn=False
                    )
                except ConvergenceError:
                    model = None
    bought = orders(money, end=now)
    per = (
        bought.group_by("user_id")
        .aggregate(
            _last=bought.ts.max(),
            frequency=bought.count(),
            monetary=bought.revenue.fill_null(0).sum(),
        )
        .to_pandas()
    )
    last_s = _seconds(per["_last"])
    freq = per["frequency"].to_numpy(dtype=np.float64)
    mon = per["monetary"].to_numpy(dtype=np.float64)
    return _Population(
        as_of=now,
        btyd=model,
        fallback_cadence=_fallback_cadence(money, now),
        last_s=np.sort(last_s),
        frequency=np.sort(freq),
        monetary=np.sort(mon),
        mean_last_s=float(last_s.mean()) if len(last_s) else 0.0,
        mean_frequency=float(freq.mean()) if len(freq) else 0.0,
        mean_monetary=float(mon.mean()) if len(mon) else 0.0,
    )


def _seconds(ts: pd.Series) -> np.ndarray:
    """Epoch seconds, truncated to the second (as :func:`liucun.metrics.days_between`)."""
    values = pd.to_datetime(ts, utc=True)
    return np.floor((values - _EPOCH).dt.total_seconds().to_numpy(dtype=np.float64))


def _quintile(sorted_values: np.ndarray, value: float) -> int:
    """:func:`liucun.segments._rfm._quintile`: 1 + (customers strictly below) × 5 // n."""
    n = len(sorted_values)
    if n == 0:
        return 1
    below = int(np.searchsorted(sorted_values, value, side="left"))
    # a cached population may not hold this customer's new value: at most 5
    return min(below * 5 // n + 1, 5)


def _segments(feats: pd.DataFrame, pop: _Population, now: datetime) -> dict[str, str]:
    """The RFM segment (:data:`liucun.segments.SEGMENT_GRID`, by the R and F quintiles)
    of each customer of ``feats`` (the churn features: ``recency_days`` and ``frequency``
    are RFM's), ranked among the population: a later last order is a better R."""
    at = float(np.floor((pd.Timestamp(now) - _EPOCH).total_seconds()))
    last = at - np.round(feats.recency_days.to_numpy(dtype=np.float64) * 86400.0)
    out: dict[str, str] = {}
    for u, ls, f in zip(feats.user_id, last, feats.frequency.astype(float), strict=True):
        r = _quintile(pop.last_s, float(ls))
        fs = _quintile(pop.frequency, float(f))
        out[str(u)] = SEGMENT_GRID[r - 1][fs - 1]
    return out


# -- scoring -----------------------------------------------------------------------------


def _score(
    ws: Any,
    con: Any,
    bundle: Any,
    card: Any,
    events: Any,
    customers: Any,
    users: list[str],
    now: datetime,
    pop: _Population,
    stages: dict[str, str],
    top_reasons: int,
) -> pd.DataFrame:
    """Score ``users`` (the buyers among them) as the full scoring does and append the
    rows to ``scores``; returns the rows."""
    from liucun.models._summary import customer_summary
    from liucun.models._training import (
        _check_currency,
        _reasons_for,
        _scores_table,
        _write_scores,
    )
    from liucun.models.btyd import FitWarning
    from liucun.models.churn import churn_features
    from liucun.models.churn._features import tidy_features

    churn, value = bundle["churn"], bundle["value"]
    _check_currency(ws, card)
    wanted = set(users)
    feats = tidy_features(con.to_pandas(churn_features(events, customers, as_of=now)))
    feats = feats[feats.user_id.isin(wanted)].reset_index(drop=True)
    if feats.empty:
        return pd.DataFrame({"user_id": [], "churn_risk": []})
    mine = events.filter(events.user_id.isin(list(feats.user_id)))
    last_day = (now - timedelta(microseconds=1)).date()
    summary = con.to_pandas(customer_summary(mine, calibration_end=last_day, time_unit_days=7.0))
    summary = summary.assign(user_id=summary.user_id.astype(str))
    btyd = pd.DataFrame({"user_id": summary.user_id})
    if pop.btyd is not None:
        x, tx, big_t = (
            summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T")
        )
        btyd["p_alive"] = pop.btyd.p_alive(x, tx, big_t)
        btyd["expected_orders"] = pop.btyd.conditional_expected_transactions(
            churn.horizon_days / 7.0, x, tx, big_t
        )
    else:
        btyd = btyd.assign(p_alive=np.nan, expected_orders=np.nan)
    feats = feats.merge(btyd, on="user_id", how="left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        risk = churn.predict_risk(feats)
        reasons = _reasons_for(churn, feats, np.ones(len(feats), dtype=bool), top_reasons)
        # the value model's summary (value_summary) is the same as the BG/NBD's
        predicted = value.predict(summary)
    segments = _segments(feats, pop, now)
    rows = pd.DataFrame({"user_id": feats.user_id.astype(str), "churn_risk": risk})
    rows = rows.merge(predicted, on="user_id", how="left")
    rows["stage"] = [stages.get(u) for u in rows.user_id]
    rows["segment"] = [segments.get(u) for u in rows.user_id]
    rows["as_of"] = pd.Timestamp(now)
    rows["model"] = card.name
    rows["model_version"] = card.version
    rows["scored_at"] = pd.Timestamp(as_utc(ws.clock.now()))
    _write_scores(ws, _scores_table(rows, reasons))
    return rows


# -- loyalty -----------------------------------------------------------------------------


def _accrue(
    ws: Any, users: list[str], now: datetime, lookback: timedelta
) -> tuple[int, int, str | None]:
    """Accrue ``users``' events of the last ``lookback`` (nothing without a program):
    ``(ledger writes, points, note)``."""
    from liucun.loyalty import DEFAULT_PROGRAM, active_program, plan_accrual
    from liucun.loyalty._accrue import accrual_ops, pending_keys, released_keys
    from liucun.loyalty._batch import apply_batch
    from liucun.loyalty._tier_store import current_tiers

    try:
        prog = active_program(ws, DEFAULT_PROGRAM)
    except LiucunError:
        return 0, 0, None
    since = now - lookback
    events = ws.events()
    events = events.filter(events.user_id.isin(users) & (events.ts < now))
    plan = plan_accrual(
        events,
        prog,
        tiers_by_user=current_tiers(ws, DEFAULT_PROGRAM),
        fx_rates=ws.table("fx_rates"),
    )
    pending = {k for k in pending_keys(ws, DEFAULT_PROGRAM) if k in set(plan.key)}
    ops = accrual_ops(
        plan,
        since=since,
        policy=prog.points.return_policy,
        pending=pending,
        released=released_keys(ws, DEFAULT_PROGRAM),
    )
    if not ops:
        return 0, 0, None
    outcomes = apply_batch(ws, ops, program=DEFAULT_PROGRAM)
    written = [o for o in outcomes if getattr(o, "status", None) == "written"]
    points = sum(int(getattr(o, "points", 0) or 0) for o in written)
    return len(written), points, None
