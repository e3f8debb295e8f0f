"""Retention drivers: which factors move the churn hazard across the customer base.

:func:`survival_dataset` builds time to churn and candidate drivers from the warehouse
(Ibis); :func:`cox_drivers` fits a Cox proportional-hazards model (statsmodels'
``PHReg``) and reports hazard ratios with intervals, a short label and one sentence
each; :func:`churn_drivers` does both. :func:`cox_drivers` also runs on any table with
a duration and an event flag, its sentences naming that event's hazard
(docs/drivers-and-funnels.md).
"""

from liucun.models.drivers._cox import (
    DEFAULT_COVARIATES,
    HIGH_CORRELATION,
    Covariate,
    DriverAnalysis,
    churn_drivers,
    cox_drivers,
    hazard_of,
    sentence,
)
from liucun.models.drivers._dataset import (
    DEFAULT_GAP_DAYS,
    NPS_DETRACTOR,
    NPS_PROMOTER,
    SLOW_TICKET_HOURS,
    survival_dataset,
)

__all__ = [
    "DEFAULT_COVARIATES",
    "DEFAULT_GAP_DAYS",
    "HIGH_CORRELATION",
    "NPS_DETRACTOR",
    "NPS_PROMOTER",
    "SLOW_TICKET_HOURS",
    "Covariate",
    "DriverAnalysis",
    "churn_drivers",
    "cox_drivers",
    "hazard_of",
    "sentence",
    "survival_dataset",
]
