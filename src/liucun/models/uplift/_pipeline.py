"""One call from a past campaign in the warehouse to a fitted, held-out-evaluated model.

:func:`fit_campaign_uplift` is what ``liucun uplift train`` / ``evaluate`` run: build the
training frame, split the units at random (seeded) into a training part and a held-out
part, fit a learner on the first, predict and evaluate on the second (against the true
effects too when the assignments carry them, as the simulator's do). ``plan_policy`` and
``compare_policies`` then run on :attr:`CampaignUplift.held_out`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from liucun.core import ConfigError
from liucun.models.uplift._evaluation import UpliftEvaluation, evaluate_uplift
from liucun.models.uplift._features import FEATURES, campaign_training_frame
from liucun.models.uplift._learners import UpliftLearner, make_learner

CampaignOutcome = Literal["orders", "revenue"]


@dataclass(frozen=True)
class CampaignUplift:
    """A learner fitted on part of a campaign and evaluated on the rest.

    ``frame`` is the whole training frame with a boolean ``held_out`` column and the
    ``uplift`` predicted for every unit (held-out units by the model that did not see
    them; training units in-sample). ``evaluation`` scores the held-out units.
    """

    model: UpliftLearner
    outcome: str
    frame: pd.DataFrame
    evaluation: UpliftEvaluation

    @property
    def held_out(self) -> pd.DataFrame:
        """The held-out units (``user_id``, treatment, outcome, ``uplift``, …)."""
        return self.frame[self.frame.held_out]


def fit_campaign_uplift(
    events: ir.Table,
    assignments: ir.Table,
    *,
    users: ir.Table | None = None,
    outcome: CampaignOutcome = "revenue",
    learner: str = "x",
    learner_params: Mapping[str, Any] | None = None,
    window_days: int = 30,
    held_out_share: float = 0.5,
    random_state: int = 0,
) -> CampaignUplift:
    """Fit an uplift learner on a past randomized campaign and evaluate it held out.

    Parameters
    ----------
    events, assignments, users, window_days
        As :func:`campaign_training_frame`.
    outcome
        ``"revenue"`` or ``"orders"`` in the window.
    learner, learner_params
        ``"t"``, ``"x"`` or ``"dr"`` and its keyword arguments (:func:`make_learner`).
    held_out_share
        Share of units kept out of training for evaluation and policy valuation.
    random_state
        Seed of the split (and the learner's ``random_state`` unless given).
    """
    if outcome not in ("orders", "revenue"):
        raise ConfigError(f"outcome must be 'orders' or 'revenue', got {outcome!r}")
    if not 0.0 < held_out_share < 1.0:
        raise ConfigError(f"held_out_share must be between 0 and 1, got {held_out_share!r}")
    frame = campaign_training_frame(
        events, assignments, users=users, window_days=window_days
    ).to_pandas()
    frame["held_out"] = np.random.default_rng(random_state).random(len(frame)) < held_out_share
    params = {"random_state": random_state, **(learner_params or {})}
    model = make_learner(learner, **params)
    train = frame[~frame.held_out]
    y_col = f"outcome_{outcome}"
    model.fit(train[list(FEATURES)], train.treated, train[y_col], propensity=train.propensity)
    frame["uplift"] = model.predict(frame[list(FEATURES)])
    test = frame[frame.held_out]
    truth = f"true_effect_{outcome}"
    evaluation = evaluate_uplift(
        test[y_col],
        test.treated,
        test.uplift,
        propensity=test.propensity,
        true_effect=test[truth] if truth in test.columns else None,
    )
    return CampaignUplift(model=model, outcome=outcome, frame=frame, evaluation=evaluation)
