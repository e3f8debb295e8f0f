"""Experiments: assignment and holdouts, the statistics engine, outcomes and ROI.

The statistics engine lives in :mod:`liucun.experiments.stats` (pure functions over
sufficient statistics); this package adds what touches the warehouse.
"""

from liucun.experiments import stats

__all__ = [
    "stats",
]
