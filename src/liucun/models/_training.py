"""``train_models`` and ``score_customers``: the churn and value models, end to end.

Training backtests, then refits:

1. **Backtest.** The test cut-off is ``T = data end − H``, so its labels are complete. A
   churn model is trained only on data before ``T`` (its own rolling cut-offs and
   validation cut-off all end their label windows by ``T``), then scored at ``T`` next to
   the baselines (recency rule, RFM score, BG/NBD 1 − P(alive)); the value model fitted at
   ``T`` is checked against what customers actually bought in ``[T, T + H)``.
2. **Refit.** The same procedure on all the data gives the models that are saved and
   used for scoring. The card carries the backtest's numbers: they describe how this
   procedure does on time it has not seen.

``score_customers`` loads a saved version and writes one row per buyer to ``scores``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone

from liucun.core import ConfigError, InvalidInput, as_utc, midnight
from liucun.metrics import in_reporting_currency
from liucun.models._registry import (
    CardWarning,
    ModelCard,
    ModelDraft,
    json_ready,
    load_model,
    save_model,
)
from liucun.models._value import CustomerValueModel, value_summary
from liucun.models.btyd import FitWarning
from liucun.models.churn import (
    ChurnModel,
    build_features,
    build_training_set,
    churn_reasons,
    data_range,
)
from liucun.models.drivers import churn_drivers
from liucun.models.evaluation import (
    baseline_scores,
    calibration_curve,
    compare,
    decile_table,
    holdout_outcomes,
    ranking_warnings,
    value_accuracy,
)
from liucun.schema import arrow_schema, column_names
from liucun.segments import customer_profiles
from liucun.workspace import Workspace

MODEL_NAME = "retention"
Step = Callable[[str], None]


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train_models` saved, and the backtest behind its card."""

    card: ModelCard
    comparison: pd.DataFrame
    value_deciles: pd.DataFrame


@dataclass(frozen=True)
class _Backtest:
    """The procedure run one horizon before the end: what the card reports."""

    model: ChurnModel
    comparison: pd.DataFrame
    curve: pd.DataFrame
    customers: int
    value_accuracy: dict[str, Any]
    value_deciles: pd.DataFrame
    warnings: list[CardWarning]


def train_models(
    workspace: Workspace,
    *,
    as_of: date | datetime | None = None,
    horizon_days: int = 90,
    n_cutoffs: int = 6,
    step_days: int = 30,
    random_state: int = 0,
    num_threads: int = 0,
    refit: bool = True,
    on_step: Step | None = None,
) -> TrainingResult:
    """Backtest and train the churn and value models; save them as the next version.

    ``as_of`` is the exclusive end of the data used (a date means its midnight UTC;
    default, and at the latest: midnight starting the last stored event's day, which
    may be incomplete). Every step reads only the events before its own cut-off. The
    card's ``created_at`` comes from ``workspace.clock``. Returns the saved card with the
    backtest's comparison table.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        return _train(
            workspace,
            as_of,
            horizon_days,
            {"horizon_days": horizon_days, "n_cutoffs": n_cutoffs, "step_days": step_days},
            ChurnModel(
                horizon_days=horizon_days, random_state=random_state, num_threads=num_threads
            ),
            refit,
            on_step or (lambda _name: None),
            caught,
        )


def _train(
    workspace: Workspace,
    as_of: date | datetime | None,
    horizon_days: int,
    options: dict[str, Any],
    churn: ChurnModel,
    refit: bool,
    step: Step,
    caught: list[warnings.WarningMessage],
) -> TrainingResult:
    """Backtest, refit, drivers, value model, card, save: the module docstring's steps.

    ``churn`` is an unfitted template: every fit uses a clone of it.
    """
    events, users = _money(workspace), workspace.customers()
    end = _training_end(events, as_of)
    test_at = end - timedelta(days=horizon_days)
    backtest = _run_backtest(events, users, clone(churn), test_at, options, step)
    model = backtest.model
    if refit:
        step("Refit: churn training set on all the data")
        data = build_training_set(events, users, data_end=end, **options)
        step("Refit: fit the churn model")
        model = clone(churn).fit(data)
    step("Retention drivers (Cox model)")
    # churn for the drivers = 2H without an order: a single horizon's silence is mostly a
    # slow buyer, not a lost one (docs/decisions/0003)
    drivers, driver_notes = _drivers(events, users, end, 2 * horizon_days)
    step("Fit the value model (BG/NBD + Gamma-Gamma)")
    summary = value_summary(events, as_of=end).to_pandas()
    value = CustomerValueModel().fit(summary)
    first = events.filter(events.ts < end).ts.min().to_pyarrow().as_py()
    draft = ModelDraft(
        name=MODEL_NAME,
        as_of=end,
        data_start=first,
        data_end=end,
        horizon_days=horizon_days,
        customers=len(summary),
        features=list(model.feature_names_),
        metrics=_card_metrics(backtest, test_at, model, drivers),
        notes=_notes(backtest.comparison, refit)
        + [w.text for w in backtest.warnings]
        + driver_notes
        + fit_warnings(caught),
        warnings=backtest.warnings,
        params={
            "churn": {
                "best_iteration": int(model.best_iteration_),
                "random_state": churn.random_state,
            },
            "value": value.params(),
            "currency": workspace.settings.reporting.currency,
            "value_penalizers": value.penalizers_,
        },
    )
    step("Save the models")
    bundle = {"churn": model, "value": value}
    saved = save_model(workspace.models_dir, bundle, draft, now=workspace.clock.now())
    return TrainingResult(
        card=saved, comparison=backtest.comparison, value_deciles=backtest.value_deciles
    )


def _money(workspace: Workspace) -> ir.Table:
    """The resolved events with money in the reporting currency (``[reporting] currency``;
    as recorded when it is unset): CLV and every monetary feature add like with like."""
    return in_reporting_currency(
        workspace.events(), workspace.table("fx_rates"), workspace.settings
    )


def _check_currency(workspace: Workspace, card: ModelCard) -> None:
    """A model's order values are in the currency it was trained in; scoring in another
    would mix units."""
    trained = (card.params or {}).get("currency")
    now = workspace.settings.reporting.currency
    if trained != now:
        raise ConfigError(
            f"model {card.version} was trained with amounts in "
            f"{trained or 'their recorded currencies'}, but [reporting] currency is "
            f"{now or 'unset'}; retrain with `liucun train` (or set the currency back)"
        )


def _training_end(events: ir.Table, as_of: date | datetime | None) -> datetime:
    """The exclusive end of the training data (aware UTC): midnight of the latest event's
    day (which may be incomplete, so label windows end before it), or ``as_of``'s
    midnight when that is earlier."""
    _, latest = data_range(events)
    end = as_utc(latest)
    return end if as_of is None else min(midnight(as_of), end)


def _run_backtest(
    events: ir.Table,
    users: ir.Table,
    model: ChurnModel,
    test_at: datetime,
    options: dict[str, Any],
    step: Step,
) -> _Backtest:
    """Train ``model`` on the data before ``test_at``; score it and the value model on
    the next H days."""
    horizon_days = int(options["horizon_days"])
    step(f"Backtest: churn training set before {test_at:%Y-%m-%d}")
    data = build_training_set(events, users, data_end=test_at, **options)
    step("Backtest: fit the churn model")
    model.fit(data)
    step(f"Backtest: score {test_at:%Y-%m-%d} against the baselines")
    outcome = holdout_outcomes(
        events,
        cutoff=(test_at - timedelta(days=1)).date(),
        horizon_days=horizon_days,
        data_end=(test_at + timedelta(days=horizon_days - 1)).date(),
    )
    comparison, curve, customers, warned = _backtest(
        events, users, model, test_at, horizon_days, outcome
    )
    step("Backtest: value model against the holdout")
    accuracy, deciles = _value_backtest(events, test_at, horizon_days, outcome)
    return _Backtest(model, comparison, curve, customers, accuracy, deciles, warned)


def _card_metrics(
    backtest: _Backtest, test_at: datetime, model: ChurnModel, drivers: list[dict[str, Any]]
) -> dict[str, Any]:
    """The card's ``metrics``: the backtest's numbers and the saved model's validation."""
    return {
        "backtest_cutoff": test_at.isoformat(),
        "backtest_customers": backtest.customers,
        "comparison": json_ready(
            backtest.comparison.reset_index(names="scorer").to_dict("records")
        ),
        "calibration_curve": json_ready(backtest.curve.to_dict("records")),
        "calibration": model.calibration_,
        "validation": model.validation_metrics_,
        "value_accuracy": backtest.value_accuracy,
        "value_deciles": json_ready(backtest.value_deciles.to_dict("records")),
        "drivers": drivers,
    }


def _backtest(
    events: ir.Table,
    users: ir.Table,
    model: ChurnModel,
    test_at: datetime,
    horizon_days: int,
    outcome: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, int, list[CardWarning]]:
    """The model and the baselines scored at ``test_at`` on the next H days' ``outcome``
    (:func:`holdout_outcomes`), and a warning for each that ranks no better than random."""
    base = baseline_scores(events, cutoff=(test_at - timedelta(days=1)).date())
    feats = build_features(events, users, as_of=test_at, horizon_days=horizon_days)
    risk = pd.DataFrame({"user_id": feats.user_id, "churn_model": model.predict_risk(feats)})
    rows = base.merge(outcome, on="user_id").merge(risk, on="user_id")
    scores = {
        "churn_model": rows.churn_model.to_numpy(),
        "recency_rule": rows.recency_days.to_numpy(),
        "rfm_score": rows.rfm_score.to_numpy(dtype=float),
        "btyd_p_dead": rows.btyd_p_dead.to_numpy(),
    }
    y = rows.churned.to_numpy(dtype=float)
    table = compare(y, scores, models="churn_model")
    curve = calibration_curve(y, rows.churn_model.to_numpy())
    warned = ranking_warnings(
        table, frequency=rows.frequency.to_numpy(), churned=y, horizon_days=horizon_days
    )
    return table, pd.DataFrame(curve), len(rows), [CardWarning(**asdict(w)) for w in warned]


def _value_backtest(
    events: ir.Table, test_at: datetime, horizon_days: int, outcome: pd.DataFrame
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Expected orders and spend over the holdout (``outcome``) from the value model
    fitted at ``test_at``."""
    summary = value_summary(events, as_of=test_at).to_pandas()
    model = CustomerValueModel(horizons=(horizon_days,)).fit(summary)
    rows = model.predict(summary).merge(outcome, on="user_id")
    orders = value_accuracy(rows[f"expected_orders_{horizon_days}d"], rows.holdout_orders)
    spend = value_accuracy(rows[f"clv_{horizon_days}d"], rows.holdout_spend)
    deciles = decile_table(rows[f"clv_{horizon_days}d"], rows.holdout_spend)
    return json_ready({"orders": orders.as_dict(), "spend": spend.as_dict()}), deciles


def _drivers(
    events: ir.Table, users: ir.Table, end: datetime, gap_days: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Hazard ratios of the retention drivers (churn = no order for ``gap_days``)."""
    try:
        analysis = churn_drivers(events, users, gap_days=gap_days, end=end)
    except InvalidInput as exc:
        return [], [f"drivers: not estimated ({exc})"]
    table = analysis.hazard_ratios.drop(columns=["coef", "se"], errors="ignore")
    notes = [f"drivers: {n}" for n in analysis.notes]
    return json_ready(table.to_dict("records")), notes


def _notes(comparison: pd.DataFrame, refit: bool) -> list[str]:
    verdict = str(comparison.loc["churn_model", "verdict"])
    notes = [f"churn model on held-out time: {verdict}"]
    notes.append(
        "saved models were refit on all the data with the same settings; the metrics are "
        "from the same procedure one horizon earlier"
        if refit
        else "saved churn model is the backtest's own (no refit)"
    )
    return notes


def fit_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The distinct :class:`FitWarning` messages met on the way, as card notes."""
    seen = dict.fromkeys(
        f"fit warning: {w.message}" for w in caught if issubclass(w.category, FitWarning)
    )
    return list(seen)


# ---- scoring --------------------------------------------------------------------------


def score_customers(
    workspace: Workspace,
    *,
    as_of: date | datetime | None = None,
    version: str | None = None,
    top_reasons: int = 3,
    reasons_min_risk: float = 0.0,
    on_step: Step | None = None,
) -> tuple[ModelCard, pd.DataFrame]:
    """Score every buyer as of ``as_of`` with a saved version; write them to ``scores``.

    ``as_of`` defaults to the workspace's data end (:meth:`Workspace.data_end`); naive
    means UTC. ``scored_at`` comes from ``workspace.clock``.

    Reasons (SHAP contributions, the costly part at scale) are computed for customers
    whose churn risk is at least ``reasons_min_risk``; the others get an empty list.

    Re-scoring the same ``as_of`` with the same version replaces those rows (idempotent).
    Returns the card and the scores written; ``rows.attrs["warnings"]`` lists the fit
    warnings met (e.g. of the BG/NBD fit behind the P(alive) feature).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        card, rows = _score(workspace, as_of, version, top_reasons, reasons_min_risk, on_step)
    rows.attrs["warnings"] = fit_warnings(caught)
    return card, rows


def _score(
    workspace: Workspace,
    as_of: date | datetime | None,
    version: str | None,
    top_reasons: int,
    reasons_min_risk: float,
    on_step: Step | None,
) -> tuple[ModelCard, pd.DataFrame]:
    if not 0.0 <= reasons_min_risk <= 1.0:
        raise ConfigError(f"reasons_min_risk must be in [0, 1], got {reasons_min_risk}")
    step = on_step or (lambda _name: None)
    step("Load the saved models")
    bundle, card = load_model(workspace.models_dir, MODEL_NAME, version)
    churn: ChurnModel = bundle["churn"]
    value: CustomerValueModel = bundle["value"]
    _check_currency(workspace, card)
    events, users = _money(workspace), workspace.customers()
    end = as_utc(as_of) if as_of is not None else workspace.data_end()
    if end is None:
        raise ConfigError("the warehouse has no events yet; ingest orders before scoring")
    events = events.filter(events.ts < end)
    step(f"Features as of {end:%Y-%m-%d}")
    feats = build_features(events, users, as_of=end, horizon_days=churn.horizon_days)
    step("Churn risk and its reasons")
    risk = churn.predict_risk(feats)
    explained = risk >= reasons_min_risk
    reasons = _reasons_for(churn, feats, explained, top_reasons)
    step("Value: P(alive), expected orders, CLV")
    predicted = value.predict(value_summary(events, as_of=end).to_pandas())
    step("Stage and segment")
    profiles = (
        customer_profiles(events, users, as_of=end)
        .select("user_id", "stage", "rfm_segment")
        .to_pandas()
    )
    rows = pd.DataFrame({"user_id": feats.user_id.astype(str), "churn_risk": risk})
    rows = rows.merge(predicted, on="user_id", how="left").merge(
        profiles.rename(columns={"rfm_segment": "segment"}), on="user_id", how="left"
    )
    rows["as_of"] = pd.Timestamp(end)
    rows["model"] = card.name
    rows["model_version"] = card.version
    rows["scored_at"] = pd.Timestamp(as_utc(workspace.clock.now()))
    # a left merge keeps the features' row order, which the reasons follow
    table = _scores_table(rows, reasons)
    step(f"Write {len(rows):,} scores")
    _write_scores(workspace, table)
    rows["reasons"] = table.column("reasons").to_pylist()
    return card, rows


def _reasons_for(
    churn: ChurnModel, feats: pd.DataFrame, explained: np.ndarray, top_k: int
) -> pa.Array:
    """Reasons for the rows where ``explained`` is true, an empty list for the rest, in the
    rows' order."""
    n = len(feats)
    if explained.all():
        return pa.array(churn_reasons(churn, feats, top_k=top_k)["reasons"].array)
    chosen = np.flatnonzero(explained)
    sub = churn_reasons(churn, feats.iloc[chosen], top_k=top_k)
    lists: list[list[str]] = [[] for _ in range(n)]
    for i, r in zip(chosen, pa.array(sub["reasons"].array).to_pylist(), strict=True):
        lists[int(i)] = r
    return pa.array(lists, type=pa.list_(pa.string()))


def _scores_table(rows: pd.DataFrame, reasons: pa.Array) -> pa.Table:
    """The ``scores`` rows as Arrow, in the canonical schema."""
    schema = arrow_schema("scores")
    columns = {}
    for field in schema:
        if field.name == "reasons":
            columns["reasons"] = reasons.cast(field.type)
        elif field.name in rows.columns:
            columns[field.name] = pa.array(rows[field.name], type=field.type, from_pandas=True)
        else:  # a horizon the saved value model was not asked for
            columns[field.name] = pa.nulls(len(rows), field.type)
    return pa.table(columns, schema=schema)


def _write_scores(workspace: Workspace, table: pa.Table) -> None:
    wh = workspace.warehouse
    names = column_names("scores")
    staged = wh.read_arrow(table, name="_scores_new")
    try:
        with wh.transaction() as tx:
            tx.upsert("scores", staged.select(*names), key=["user_id", "as_of", "model_version"])
    finally:
        wh.forget("_scores_new")
