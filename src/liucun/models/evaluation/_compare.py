"""Models and baselines side by side on the same held-out outcomes.

A model that beats no baseline is reported as such: :func:`compare` marks, for every
model, each baseline it beats on the primary metric and writes a one-line verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liucun.core import InvalidInput
from liucun.models.evaluation._checks import (
    DEFAULT_FRACTIONS,
    FloatArray,
    check_fractions,
    check_labels,
    check_scores,
    percent_label,
)
from liucun.models.evaluation._classification import (
    DEFAULT_BINS,
    DEFAULT_STRATEGY,
    BinStrategy,
    brier_score,
    expected_calibration_error,
    log_loss,
    pr_auc,
    roc_auc,
)
from liucun.models.evaluation._ranking import gains_table

#: Every metric :func:`compare` can rank on, and whether higher is better.
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "auc": True,
    "pr_auc": True,
    "brier": False,
    "log_loss": False,
    "ece": False,
}
_PROBABILITY_METRICS = ("brier", "log_loss", "ece")
_LABELS = {"auc": "AUC", "pr_auc": "PR-AUC", "brier": "Brier", "log_loss": "log loss", "ece": "ECE"}


def _metric_names(shares: Sequence[float]) -> list[str]:
    out = list(HIGHER_IS_BETTER)
    for f in shares:
        out += [f"lift_{percent_label(f)}", f"capture_{percent_label(f)}"]
    return out


def _row(
    y: FloatArray,
    s: FloatArray,
    *,
    probability: bool,
    shares: Sequence[float],
    n_bins: int,
    strategy: BinStrategy,
) -> tuple[dict[str, float], list[str]]:
    """Every metric of one scorer; an undefined one is NaN with its reason in the notes."""
    row: dict[str, float] = dict.fromkeys(_metric_names(shares), np.nan)
    notes: list[str] = []

    def attempt(fn: Callable[[], None]) -> None:
        try:
            fn()
        except InvalidInput as exc:
            if str(exc) not in notes:
                notes.append(str(exc))

    def ranking() -> None:
        row["auc"] = roc_auc(y, s)
        row["pr_auc"] = pr_auc(y, s)

    def gains() -> None:
        table = gains_table(y, s, shares)
        for f, lift_f, capture_f in zip(shares, table["lift"], table["capture"], strict=True):
            row[f"lift_{percent_label(f)}"] = float(lift_f)
            row[f"capture_{percent_label(f)}"] = float(capture_f)

    def calibration() -> None:
        row["brier"] = brier_score(y, s)
        row["log_loss"] = log_loss(y, s)
        row["ece"] = expected_calibration_error(y, s, n_bins=n_bins, strategy=strategy)

    attempt(ranking)
    attempt(gains)
    if probability:
        attempt(calibration)
    else:
        notes.append("not a probability: ranking metrics only (no Brier, log loss or ECE)")
    return row, notes


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _verdict(
    name: str, table: pd.DataFrame, baselines: Sequence[str], primary: str
) -> tuple[dict[str, Any], str]:
    """``beats_<baseline>`` flags, the margin over the best baseline, and a sentence."""
    higher = HIGHER_IS_BETTER[primary]
    label = _LABELS[primary]
    mine = float(table.at[name, primary])
    flags: dict[str, Any] = {}
    known = [b for b in baselines if np.isfinite(table.at[b, primary])]
    for b in baselines:
        theirs = float(table.at[b, primary])
        defined = np.isfinite(mine) and np.isfinite(theirs)
        flags[f"beats_{b}"] = _better(mine, theirs, higher) if defined else pd.NA
    if not baselines:
        return flags, f"no baseline to compare with; {label} {mine:.3f}"
    if not np.isfinite(mine) or not known:
        flags["margin"] = np.nan
        return flags, f"{label} is undefined here, so it cannot be compared with the baselines"
    values = {b: float(table.at[b, primary]) for b in known}
    best = max(values, key=values.__getitem__) if higher else min(values, key=values.__getitem__)
    flags["margin"] = (mine - values[best]) * (1 if higher else -1)
    beaten = [b for b in known if flags[f"beats_{b}"]]
    against = f"best baseline {best}: {values[best]:.3f} vs {mine:.3f}"
    if len(beaten) == len(baselines):
        return flags, f"beats every baseline on {label} ({against})"
    if not beaten:
        return flags, f"beats no baseline on {label} ({against})"
    return flags, (
        f"beats {len(beaten)} of {len(baselines)} baselines on {label} "
        f"({', '.join(beaten)}); {against}"
    )


def compare(
    y_true: Any,
    scores: Mapping[str, Any],
    *,
    models: str | Sequence[str] | None = None,
    probabilities: Collection[str] | None = None,
    primary: str = "auc",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_bins: int = DEFAULT_BINS,
    strategy: BinStrategy = DEFAULT_STRATEGY,
) -> pd.DataFrame:
    """Evaluate several scorers on the same outcomes, one row each, models vs baselines.

    Parameters
    ----------
    y_true
        0/1 outcomes on held-out data (1 = churned).
    scores
        Scorer name → score per customer, aligned with ``y_true`` (higher = more likely
        to have the event).
    models
        The candidate model(s); every other scorer is a baseline. Default: the first
        scorer of ``scores``.
    probabilities
        Scorers whose scores are probabilities of the outcome, for Brier, log loss and
        ECE. Default: every scorer whose scores all lie in [0, 1]. Others get ranking
        metrics only, with a note.
    primary
        The metric that decides whether a model beats a baseline (one of
        :data:`HIGHER_IS_BETTER`).
    fractions
        Top shares for ``lift_<pct>`` and ``capture_<pct>`` columns.
    n_bins, strategy
        Bins of the expected calibration error (see
        :func:`~liucun.models.evaluation.expected_calibration_error`).

    Returns
    -------
    pandas.DataFrame
        Indexed by scorer: ``role`` ("model"/"baseline"), ``customers, positives``, the
        metrics ``auc, pr_auc, brier, log_loss, ece, lift_5, capture_5, ...``, ``notes``
        (why a metric is missing), and for model rows ``beats_<baseline>`` (bool; NA on
        baseline rows or when undefined), ``margin`` (primary metric minus the best
        baseline's, positive = better) and ``verdict``, e.g. "beats no baseline on AUC
        (best baseline recency_rule: 0.741 vs 0.702)".
    """
    y = check_labels(y_true)
    names, chosen = _scorers(scores, models, primary)
    shares = check_fractions(fractions)
    arrays = {str(k): check_scores(v, len(y), name=f"scores[{k!r}]") for k, v in scores.items()}
    prob = _probability_scorers(arrays, probabilities, chosen, primary)
    table = _metrics_table(y, arrays, prob, shares=shares, n_bins=n_bins, strategy=strategy)
    table.insert(0, "role", ["model" if n in chosen else "baseline" for n in names])
    table.insert(1, "customers", len(y))
    table.insert(2, "positives", int(y.sum()))
    return _with_verdicts(table, chosen, [n for n in names if n not in chosen], primary)


def _scorers(
    scores: Mapping[str, Any], models: str | Sequence[str] | None, primary: str
) -> tuple[list[str], list[str]]:
    """The scorer names and the models among them (default: the first scorer)."""
    if not scores:
        raise InvalidInput("scores is empty; pass at least one scorer, e.g. {'model': p}")
    names = [str(n) for n in scores]
    if len(set(names)) != len(names):
        raise InvalidInput(f"scorer names must be distinct, got {names}")
    if primary not in HIGHER_IS_BETTER:
        raise InvalidInput(f"primary must be one of {', '.join(HIGHER_IS_BETTER)}, got {primary!r}")
    chosen = [names[0]] if models is None else [models] if isinstance(models, str) else list(models)
    unknown = [m for m in chosen if m not in names]
    if unknown or not chosen:
        raise InvalidInput(f"models {unknown or chosen} are not among the scorers {names}")
    return names, chosen


def _probability_scorers(
    arrays: Mapping[str, FloatArray],
    probabilities: Collection[str] | None,
    chosen: Sequence[str],
    primary: str,
) -> set[str]:
    """The scorers whose scores are probabilities: as given, else those within [0, 1]."""
    if probabilities is None:
        return {k for k, v in arrays.items() if v.min() >= 0 and v.max() <= 1}
    prob = set(probabilities)
    if prob - set(arrays):
        raise InvalidInput(f"probabilities {sorted(prob - set(arrays))} are not scorers")
    if primary in _PROBABILITY_METRICS and not set(chosen) <= prob:
        raise InvalidInput(f"primary metric {primary} needs the models' probabilities")
    return prob


def _metrics_table(
    y: FloatArray,
    arrays: Mapping[str, FloatArray],
    prob: Collection[str],
    *,
    shares: Sequence[float],
    n_bins: int,
    strategy: BinStrategy,
) -> pd.DataFrame:
    """One row of metrics per scorer (:func:`_row`), with its ``notes``."""
    rows, notes = {}, {}
    for name, s in arrays.items():
        rows[name], found = _row(
            y, s, probability=name in prob, shares=shares, n_bins=n_bins, strategy=strategy
        )
        notes[name] = "; ".join(found)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scorer"
    table["notes"] = pd.Series(notes)
    return table


def _with_verdicts(
    table: pd.DataFrame, chosen: Sequence[str], baselines: Sequence[str], primary: str
) -> pd.DataFrame:
    """``beats_<baseline>``, ``margin`` and ``verdict`` columns, filled on model rows."""
    for b in baselines:
        table[f"beats_{b}"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    table["margin"] = np.nan
    table["verdict"] = ""
    for m in chosen:
        flags, sentence = _verdict(m, table, baselines, primary)
        for key, value in flags.items():
            table.at[m, key] = value
        table.at[m, "verdict"] = sentence
    return table
