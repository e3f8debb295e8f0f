"""Experiments: assignment and holdouts, the statistics engine, outcomes and ROI.

The statistics engine lives in :mod:`liucun.experiments.stats` (pure functions over
sufficient statistics); this package adds what touches units and the warehouse.
"""

from liucun.experiments import stats
from liucun.experiments._analysis import (
    RESULT_SCHEMA,
    ExperimentAnalysis,
    analyze_experiment,
    analyze_outcomes,
    compare,
    experiment_outcomes,
)
from liucun.experiments._assignment import (
    ASSIGNMENT_SCHEMA,
    HOLDOUT,
    UNIT_TYPES,
    Experiment,
    GlobalHoldout,
    Layer,
    UnitType,
    assign,
)
from liucun.experiments._exposures import ExposureLog, first_exposures, log_exposures
from liucun.experiments._hashing import BUCKETS
from liucun.experiments._monitoring import monitoring_path, peeking_path
from liucun.experiments._outcomes import (
    RETENTION_METRICS,
    Metric,
    MetricKind,
    metric_stat,
    metrics_for_columns,
    stats_from_table,
    unit_outcomes,
    variant_statistics,
)
from liucun.experiments._roi import ROI_THRESHOLD, RoiMethod, RoiResult, campaign_roi

__all__ = [
    "ASSIGNMENT_SCHEMA",
    "BUCKETS",
    "HOLDOUT",
    "RESULT_SCHEMA",
    "RETENTION_METRICS",
    "ROI_THRESHOLD",
    "UNIT_TYPES",
    "Experiment",
    "ExperimentAnalysis",
    "ExposureLog",
    "GlobalHoldout",
    "Layer",
    "Metric",
    "MetricKind",
    "RoiMethod",
    "RoiResult",
    "UnitType",
    "analyze_experiment",
    "analyze_outcomes",
    "assign",
    "campaign_roi",
    "compare",
    "experiment_outcomes",
    "first_exposures",
    "log_exposures",
    "metric_stat",
    "metrics_for_columns",
    "monitoring_path",
    "peeking_path",
    "stats",
    "stats_from_table",
    "unit_outcomes",
    "variant_statistics",
]
