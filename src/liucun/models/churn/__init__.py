"""Churn risk: point-in-time features, a calibrated LightGBM classifier and its reasons.

``build_training_set`` stacks features and labels at rolling cut-offs (latest held out),
``ChurnModel`` fits and calibrates, ``build_features`` gives the rows to score as of a
date and ``churn_reasons`` turns SHAP contributions into sentences. docs/churn.md has the
feature definitions and the split rule.
"""

from liucun.models.churn._calibration import (
    CALIBRATION_METHODS,
    CalibrationChoice,
    Calibrator,
    choose_calibration,
    fit_calibrator,
)
from liucun.models.churn._dataset import (
    ChurnDataset,
    CutoffPlan,
    build_training_set,
    churn_labels,
    data_range,
    rolling_cutoffs,
)
from liucun.models.churn._features import (
    BTYD_FEATURES,
    CATEGORICAL_FEATURES,
    LAST_MESSAGES,
    NUMERIC_FEATURES,
    btyd_features,
    build_features,
    churn_features,
)
from liucun.models.churn._model import DEFAULT_PARAMS, ChurnModel
from liucun.models.churn._reasons import BASE_RATE, SMALL_EFFECTS, TOPICS, Topic, churn_reasons

__all__ = [
    "BASE_RATE",
    "BTYD_FEATURES",
    "CALIBRATION_METHODS",
    "CATEGORICAL_FEATURES",
    "DEFAULT_PARAMS",
    "LAST_MESSAGES",
    "NUMERIC_FEATURES",
    "SMALL_EFFECTS",
    "TOPICS",
    "CalibrationChoice",
    "Calibrator",
    "ChurnDataset",
    "ChurnModel",
    "CutoffPlan",
    "Topic",
    "btyd_features",
    "build_features",
    "build_training_set",
    "choose_calibration",
    "churn_features",
    "churn_labels",
    "churn_reasons",
    "data_range",
    "fit_calibrator",
    "rolling_cutoffs",
]
