"""Experiments analysed from a file of per-unit outcomes instead of the exposure log.

A CSV or Parquet file with one row per unit: a ``variant`` column, one numeric column
per metric (booleans are proportions), and ``pre_<metric>`` as a metric's CUPED
covariate. With ``revenue`` and ``coupon_cost`` columns the campaign ROI is valued too.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd

from liucun.core import InvalidInput
from liucun.experiments._analysis import ExperimentAnalysis, analyze_outcomes
from liucun.experiments._outcomes import metrics_for_columns
from liucun.experiments._settings import DEFAULT_SETTINGS, AnalysisSettings

#: Suffixes read as Parquet; every other file is read as CSV.
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_outcomes(path: Path | str) -> pd.DataFrame:
    """The per-unit outcomes in ``path`` (Parquet by suffix, else CSV), checked for a
    ``variant`` column.

    Raises
    ------
    InvalidInput
        The file does not exist, cannot be parsed, or has no ``variant`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except Exception as exc:  # a parser's own message says what is wrong
        raise InvalidInput(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    if "variant" not in frame.columns:
        raise InvalidInput(
            f"{path} has no `variant` column; it needs one row per unit with its variant "
            f"and outcome columns (it has: {', '.join(map(str, frame.columns))})"
        )
    return frame


def analyze_outcome_frame(
    frame: pd.DataFrame, settings: AnalysisSettings = DEFAULT_SETTINGS, *, experiment: str
) -> ExperimentAnalysis:
    """:func:`analyze_outcomes` on per-unit outcomes in memory, with the metrics its
    columns imply (:func:`metrics_for_columns`) and an equal split for the SRM check
    unless ``settings.weights`` gives one."""
    if "variant" not in frame.columns:
        raise InvalidInput(
            f"the outcomes of {experiment!r} have no `variant` column "
            f"(they have: {', '.join(map(str, frame.columns))})"
        )
    return analyze_outcomes(
        ibis.memtable(frame),
        settings,
        experiment=experiment,
        metrics=metrics_for_columns(frame),
    )


def analyze_outcome_file(
    path: Path | str, settings: AnalysisSettings = DEFAULT_SETTINGS
) -> ExperimentAnalysis:
    """Analyse the per-unit outcomes in ``path`` (see the module doc); the experiment is
    named after the file (``outcomes.csv`` → ``outcomes``)."""
    path = Path(path)
    return analyze_outcome_frame(read_outcomes(path), settings, experiment=path.stem)
