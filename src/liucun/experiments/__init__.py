"""Experiments: assignment and holdouts, the statistics engine, outcomes and ROI.

The statistics engine lives in :mod:`liucun.experiments.stats` (pure functions over
sufficient statistics); this package adds what touches units and the warehouse.
:func:`analyze_experiment` (a workspace's exposure log) and :func:`analyze_outcome_file`
(a file of per-unit outcomes) take one :class:`AnalysisSettings` with every option.
"""

from liucun.experiments import stats
from liucun.experiments._analysis import (
    RESULT_SCHEMA,
    ExperimentAnalysis,
    LoggedOutcomes,
    analyze_experiment,
    analyze_outcomes,
    arm_statistics,
    compare,
    effects_table,
    experiment_outcomes,
    unit_counts,
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
from liucun.experiments._exposures import (
    ExposureLog,
    experiment_summary,
    first_exposures,
    log_exposures,
)
from liucun.experiments._files import (
    PARQUET_SUFFIXES,
    analyze_outcome_file,
    analyze_outcome_frame,
    read_outcomes,
)
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
from liucun.experiments._settings import CORRECTIONS, DEFAULT_SETTINGS, AnalysisSettings

__all__ = [
    "ASSIGNMENT_SCHEMA",
    "BUCKETS",
    "CORRECTIONS",
    "DEFAULT_SETTINGS",
    "HOLDOUT",
    "PARQUET_SUFFIXES",
    "RESULT_SCHEMA",
    "RETENTION_METRICS",
    "ROI_THRESHOLD",
    "UNIT_TYPES",
    "AnalysisSettings",
    "Experiment",
    "ExperimentAnalysis",
    "ExposureLog",
    "GlobalHoldout",
    "Layer",
    "LoggedOutcomes",
    "Metric",
    "MetricKind",
    "RoiMethod",
    "RoiResult",
    "UnitType",
    "analyze_experiment",
    "analyze_outcome_file",
    "analyze_outcome_frame",
    "analyze_outcomes",
    "arm_statistics",
    "assign",
    "campaign_roi",
    "compare",
    "effects_table",
    "experiment_outcomes",
    "experiment_summary",
    "first_exposures",
    "log_exposures",
    "metric_stat",
    "metrics_for_columns",
    "monitoring_path",
    "peeking_path",
    "read_outcomes",
    "stats",
    "stats_from_table",
    "unit_counts",
    "unit_outcomes",
    "variant_statistics",
]
