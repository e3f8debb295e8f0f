"""Predictive models: customer summaries, buy-till-you-die models (``liucun.models.btyd``),
customer value (P(alive), expected orders, CLV) and saved models with their cards.

Every model follows one estimator contract (:class:`Estimator`: keyword-only
parameters, ``get_params``/``set_params``, so ``sklearn.base.clone`` works)."""

from liucun.models._base import Estimator, check_is_fitted
from liucun.models._registry import (
    CardWarning,
    ModelCard,
    ModelDraft,
    list_models,
    load_model,
    save_model,
)
from liucun.models._summary import customer_summary
from liucun.models._training import MODEL_NAME, TrainingResult, score_customers, train_models
from liucun.models._value import VALUE_HORIZONS, CustomerValueModel, value_summary

__all__ = [
    "MODEL_NAME",
    "VALUE_HORIZONS",
    "CardWarning",
    "CustomerValueModel",
    "Estimator",
    "ModelCard",
    "ModelDraft",
    "TrainingResult",
    "check_is_fitted",
    "customer_summary",
    "list_models",
    "load_model",
    "save_model",
    "score_customers",
    "train_models",
    "value_summary",
]
