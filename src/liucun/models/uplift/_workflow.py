"""Uplift end to end on a workspace: train on a logged campaign, compare targeting rules,
plan the next campaign. What ``liucun uplift train|evaluate|policy`` run.

The saved bundle (model name ``uplift``) keeps the learner and the held-out units of the
campaign with their predicted effect, so targeting rules can be compared later on the
same randomized data: by uplift, by churn risk (liucun's saved churn model, scored at
the campaign's start), everyone and no one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from liucun.core import ConfigError, as_utc
from liucun.models._registry import (
    ModelCard,
    ModelDraft,
    json_ready,
    list_models,
    load_model,
    save_model,
)
from liucun.models.uplift._evaluation import UpliftEvaluation, evaluate_uplift
from liucun.models.uplift._features import (
    FEATURES,
    assignments_from_exposures,
    pre_campaign_features,
)
from liucun.models.uplift._pipeline import fit_campaign_uplift
from liucun.models.uplift._policy import CampaignEconomics, Policy, compare_policies, plan_policy
from liucun.workspace import Workspace

UPLIFT_MODEL = "uplift"
Step = Callable[[str], None]
#: Held-out columns kept in the saved bundle.
_KEPT = (
    "user_id",
    "treated",
    "propensity",
    "campaign_start_ts",
    "outcome_orders",
    "outcome_revenue",
    "uplift",
)


def train_uplift(
    workspace: Workspace,
    experiment: str,
    *,
    outcome: str = "revenue",
    learner: str = "x",
    window_days: int = 30,
    random_state: int = 0,
    num_threads: int = 0,
    on_step: Step | None = None,
) -> tuple[ModelCard, UpliftEvaluation]:
    """Fit an uplift learner on the logged randomized ``experiment``; save it with its
    held-out evaluation (Qini, AUUC, uplift at k). ``random_state`` seeds the held-out
    split and the learner; the card's ``created_at`` comes from ``workspace.clock``."""
    step = on_step or (lambda _name: None)
    workspace.sync()
    events = workspace.events()
    step(f"Training frame of {experiment}")
    assignments = assignments_from_exposures(workspace.table("exposures"), experiment)
    if int(assignments.count().to_pyarrow().as_py()) == 0:
        raise ConfigError(
            f"no user exposures are logged for {experiment!r}; log a randomized campaign "
            "first (liucun.experiments.log_exposures, or `liucun ingest simulated`)"
        )
    step(f"Fit the {learner.upper()}-learner and evaluate it on the held-out half")
    run = fit_campaign_uplift(
        events,
        assignments,
        users=workspace.customers(),
        outcome=outcome,  # type: ignore[arg-type]
        learner=learner,
        learner_params={"num_threads": num_threads},
        window_days=window_days,
        random_state=random_state,
    )
    ev = run.evaluation
    held = run.held_out[[c for c in _KEPT if c in run.held_out.columns]].reset_index(drop=True)
    starts = pd.to_datetime(held.campaign_start_ts, utc=True)
    draft = ModelDraft(
        name=UPLIFT_MODEL,
        as_of=starts.min().to_pydatetime(),
        data_start=None,
        data_end=starts.max().to_pydatetime(),
        horizon_days=window_days,
        customers=len(run.frame),
        features=list(FEATURES),
        metrics={
            "experiment": experiment,
            "outcome": outcome,
            "learner": learner,
            "held_out": int(ev.n),
            "ate": ev.ate,
            "ate_se": ev.ate_se,
            "auuc": ev.auuc,
            "qini_fraction": ev.qini.fraction.tolist(),
            "qini_gain": ev.qini.gain.tolist(),
            "uplift_at": json_ready([asdict(u) for u in ev.uplift_at]),
        },
        notes=[
            f"{learner.upper()}-learner on {outcome} over {window_days} days after exposure; "
            f"evaluated on {ev.n:,} held-out units of {experiment}; AUUC {ev.auuc:.4g} "
            "(0 = a random ranking)"
        ],
    )
    bundle = {"model": run.model, "held_out": held, "experiment": experiment}
    return save_model(workspace.models_dir, bundle, draft, now=workspace.clock.now()), ev


@dataclass(frozen=True)
class TargetingComparison:
    """Targeting rules valued on the campaign's held-out randomized units."""

    card: ModelCard
    policies: pd.DataFrame  # one row per policy (uplift, everyone, no_one, churn_risk)
    evaluations: dict[str, UpliftEvaluation]  # the rankings scored as uplift rankings
    plan: Policy
    budget: int


def compare_targeting(
    workspace: Workspace,
    economics: CampaignEconomics,
    *,
    version: str | None = None,
    budget_share: float = 0.2,
    truth: pa.Table | None = None,
) -> TargetingComparison:
    """Target ``budget_share`` of the held-out units by uplift and by churn risk (the
    saved churn model, scored at the campaign's start), and value both, everyone and no
    one on the held-out randomized data; with ``truth`` (a simulated shop's
    ``truth.parquet``) also on the true individual effects."""
    if not 0 < budget_share <= 1:
        raise ConfigError(f"budget_share must be in (0, 1], got {budget_share}")
    bundle, card = load_model(workspace.models_dir, UPLIFT_MODEL, version)
    held: pd.DataFrame = bundle["held_out"].copy()
    outcome = str(card.metrics["outcome"])
    start = pd.to_datetime(held.campaign_start_ts).min().to_pydatetime()
    rankings = {"uplift": held.uplift.to_numpy(dtype=float)}
    risk = _churn_risk_at(workspace, held.user_id, start)
    if risk is not None:
        rankings["churn_risk"] = risk
    tau = None
    if truth is not None:
        effects = truth.select(["user_id", f"true_effect_{outcome}"]).to_pandas()
        tau = (
            held[["user_id"]]
            .merge(effects, on="user_id", how="left")[f"true_effect_{outcome}"]
            .to_numpy(dtype=float)
        )
        if np.isnan(tau).any():
            raise ConfigError("the truth file does not cover the campaign's units; wrong shop?")
    y = held[f"outcome_{outcome}"].to_numpy(dtype=float)
    k = max(1, round(budget_share * len(held)))
    plan = plan_policy(held.uplift.to_numpy(dtype=float), economics, max_customers=k)
    policies = compare_policies(
        plan,
        y,
        held.treated,
        economics,
        rankings={k_: v for k_, v in rankings.items() if k_ != "uplift"},
        propensity=held.propensity,
        true_effect=tau,
    )
    evaluations = {
        name: evaluate_uplift(y, held.treated, score, propensity=held.propensity, true_effect=tau)
        for name, score in rankings.items()
    }
    return TargetingComparison(card, policies, evaluations, plan, k)


def _churn_risk_at(workspace: Workspace, user_ids: pd.Series, at: datetime) -> np.ndarray | None:
    """Churn risk of ``user_ids`` at ``at`` from the latest saved churn model (None when
    there is none); customers without an order before ``at`` get the mean risk."""
    from liucun.models._training import MODEL_NAME
    from liucun.models.churn import build_features

    if not list_models(workspace.models_dir, MODEL_NAME):
        return None
    bundle, _ = load_model(workspace.models_dir, MODEL_NAME)
    churn = bundle["churn"]
    events = workspace.events()
    feats = build_features(events, workspace.customers(), as_of=at, horizon_days=churn.horizon_days)
    risk = pd.Series(churn.predict_risk(feats), index=feats.user_id.astype(str))
    out = risk.reindex(user_ids.astype(str)).to_numpy(dtype=float)
    return np.where(np.isnan(out), np.nanmean(out), out)


def plan_next_campaign(
    workspace: Workspace,
    economics: CampaignEconomics,
    *,
    version: str | None = None,
    as_of: date | datetime | None = None,
    max_customers: int | None = None,
    max_spend: float | None = None,
) -> tuple[Policy, pd.DataFrame]:
    """Whom to treat now: every customer's predicted effect from the saved uplift model
    (features as of ``as_of``, default the end of the data) and the most profitable set
    within the budget. Returns the plan and one row per customer, best first."""
    bundle, _ = load_model(workspace.models_dir, UPLIFT_MODEL, version)
    end = as_utc(as_of) if as_of is not None else workspace.data_end()
    if end is None:
        raise ConfigError("the warehouse has no events yet")
    events = workspace.events()
    buyers = events.filter(events.event_type == "order").select("user_id").distinct()
    feats = pre_campaign_features(events, buyers, as_of=end, users=workspace.customers())
    frame = feats.to_pandas()
    frame["uplift"] = bundle["model"].predict(frame[list(FEATURES)])
    plan = plan_policy(
        frame.uplift.to_numpy(dtype=float),
        economics,
        max_customers=max_customers,
        max_spend=max_spend,
    )
    out = pd.DataFrame(
        {
            "user_id": frame.user_id,
            "uplift": frame.uplift,
            "expected_profit": plan.expected_profit,
            "treat": plan.treat,
        }
    ).sort_values(["treat", "expected_profit"], ascending=False, ignore_index=True)
    return plan, out
