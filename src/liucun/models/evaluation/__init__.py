"""Model evaluation on held-out time: metrics, baselines, value accuracy, ground truth.

Classification metrics (:func:`roc_auc`, :func:`pr_auc`, :func:`brier_score`,
:func:`log_loss`, :func:`expected_calibration_error`, :func:`calibration_curve`, lift
and capture) are pure functions of numpy arrays that agree with scikit-learn;
:func:`compare` puts models and the :data:`BASELINES` side by side and says whether each
model beats them; :func:`ranking_warnings` says in a sentence which rank worse than
random; :func:`value_accuracy` and :func:`decile_table` judge CLV forecasts;
:func:`against_truth` compares predictions with a simulated shop's ground truth.
"""

from liucun.models.evaluation._baselines import (
    BASELINES,
    AliveModel,
    baseline_scores,
    btyd_p_dead,
    holdout_outcomes,
    recency_days,
    rfm_churn_score,
)
from liucun.models.evaluation._checks import DEFAULT_FRACTIONS
from liucun.models.evaluation._classification import (
    DEFAULT_BINS,
    DEFAULT_STRATEGY,
    LOG_LOSS_EPS,
    brier_score,
    calibration_curve,
    expected_calibration_error,
    log_loss,
    pr_auc,
    roc_auc,
    wilson_interval,
)
from liucun.models.evaluation._compare import HIGHER_IS_BETTER, compare
from liucun.models.evaluation._honesty import (
    NO_BETTER_THAN_RANDOM,
    RANDOM_AUC,
    WORSE_THAN_RANDOM,
    RankingWarning,
    random_auc_band,
    ranking_warnings,
)
from liucun.models.evaluation._ranking import capture, gains_table, lift
from liucun.models.evaluation._truth import (
    TRUTH_HORIZONS,
    TruthComparison,
    against_truth,
    simulated_truth,
)
from liucun.models.evaluation._value import (
    CONSTANT_ACTUAL,
    CONSTANT_PREDICTION,
    ZERO_ACTUAL_TOTAL,
    ValueAccuracy,
    decile_table,
    value_accuracy,
)

__all__ = [
    "BASELINES",
    "CONSTANT_ACTUAL",
    "CONSTANT_PREDICTION",
    "DEFAULT_BINS",
    "DEFAULT_FRACTIONS",
    "DEFAULT_STRATEGY",
    "HIGHER_IS_BETTER",
    "LOG_LOSS_EPS",
    "NO_BETTER_THAN_RANDOM",
    "RANDOM_AUC",
    "TRUTH_HORIZONS",
    "WORSE_THAN_RANDOM",
    "ZERO_ACTUAL_TOTAL",
    "AliveModel",
    "RankingWarning",
    "TruthComparison",
    "ValueAccuracy",
    "against_truth",
    "baseline_scores",
    "brier_score",
    "btyd_p_dead",
    "calibration_curve",
    "capture",
    "compare",
    "decile_table",
    "expected_calibration_error",
    "gains_table",
    "holdout_outcomes",
    "lift",
    "log_loss",
    "pr_auc",
    "random_auc_band",
    "ranking_warnings",
    "recency_days",
    "rfm_churn_score",
    "roc_auc",
    "simulated_truth",
    "value_accuracy",
    "wilson_interval",
]
