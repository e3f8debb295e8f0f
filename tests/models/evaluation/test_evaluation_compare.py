"""compare(): models and baselines side by side; a model that loses says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.models.evaluation import brier_score, capture, compare, lift, pr_auc, roc_auc


@pytest.fixture
def outcome() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A good probability, a weaker probability, and a days-since-last-order rule."""
    rng = np.random.default_rng(4)
    n = 3000
    risk = rng.random(n)
    y = (rng.random(n) < risk).astype(int)
    return y, {
        "model": np.clip(risk + rng.normal(0, 0.05, n), 0, 1),
        "weak": np.clip(risk + rng.normal(0, 0.6, n), 0, 1),
        "recency_days": 400 * risk + rng.normal(0, 60, n),
    }


def test_one_row_per_scorer_with_every_metric(outcome) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    table = compare(y, scores)
    assert list(table.index) == ["model", "weak", "recency_days"]
    assert list(table["role"]) == ["model", "baseline", "baseline"]
    assert (table["customers"] == len(y)).all() and (table["positives"] == y.sum()).all()
    for name, s in scores.items():
        assert table.at[name, "auc"] == pytest.approx(roc_auc(y, s), abs=1e-12)
        assert table.at[name, "pr_auc"] == pytest.approx(pr_auc(y, s), abs=1e-12)
        assert table.at[name, "lift_10"] == pytest.approx(lift(y, s, 0.1), abs=1e-12)
        assert table.at[name, "capture_20"] == pytest.approx(capture(y, s, 0.2), abs=1e-12)
    assert table.at["weak", "brier"] == pytest.approx(brier_score(y, scores["weak"]))
    # a score in days is not a probability: no Brier, and the note says why
    assert np.isnan(table.at["recency_days", "brier"])
    assert "not a probability" in table.at["recency_days", "notes"]
    assert table.at["model", "notes"] == ""
    expected = {"lift_5", "capture_5", "lift_10", "capture_10", "lift_20", "capture_20", "ece"}
    assert expected <= set(table.columns)


def test_the_winning_model_beats_every_baseline(outcome) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    table = compare(y, scores)
    assert bool(table.at["model", "beats_weak"])
    assert bool(table.at["model", "beats_recency_days"])
    assert pd.isna(table.at["weak", "beats_recency_days"])  # baselines are not judged
    assert table.at["model", "verdict"].startswith("beats every baseline on AUC")
    best = max(table.at["weak", "auc"], table.at["recency_days", "auc"])
    assert table.at["model", "margin"] == pytest.approx(table.at["model", "auc"] - best)


def test_a_losing_model_is_reported_as_such(outcome) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    table = compare(y, scores, models="weak")
    assert list(table["role"]) == ["baseline", "model", "baseline"]
    assert not table.at["weak", "beats_model"]
    assert not table.at["weak", "beats_recency_days"]
    assert table.at["weak", "verdict"].startswith("beats no baseline on AUC (best baseline model")
    assert table.at["weak", "margin"] < 0


def test_partial_win_and_lower_is_better_primary(outcome) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    rng = np.random.default_rng(0)
    scores = {**scores, "coin": rng.random(len(y))}
    table = compare(y, scores, models="weak")
    assert table.at["weak", "verdict"].startswith("beats 1 of 3 baselines on AUC (coin)")
    # Brier: lower is better; the recency rule has none, so that comparison is undefined
    by_brier = compare(y, scores, models="model", primary="brier")
    assert bool(by_brier.at["model", "beats_weak"])
    assert pd.isna(by_brier.at["model", "beats_recency_days"])


def test_two_models_and_one_class_outcomes() -> None:
    y = np.zeros(5, dtype=int)
    table = compare(y, {"a": np.linspace(0, 1, 5), "b": np.linspace(1, 0, 5)}, models=["a", "b"])
    assert (table["role"] == "model").all()
    assert table["auc"].isna().all()
    assert "AUC is undefined" in table.at["a", "notes"]
    assert table.at["a", "brier"] == pytest.approx(np.mean(np.linspace(0, 1, 5) ** 2))
    assert "no baseline" in table.at["a", "verdict"]


def test_explicit_probabilities_and_fractions(outcome) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    table = compare(y, scores, probabilities=["model"], fractions=[0.25])
    assert np.isnan(table.at["weak", "brier"])  # in [0, 1] but not declared a probability
    assert {"lift_25", "capture_25"} <= set(table.columns)
    assert "lift_5" not in table.columns


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": {}}, "scores is empty"),
        ({"models": "nope"}, "not among the scorers"),
        ({"primary": "f1"}, "primary must be one of"),
        ({"probabilities": ["ghost"]}, "are not scorers"),
        ({"probabilities": [], "primary": "brier"}, "needs the models' probabilities"),
    ],
)
def test_clear_errors(outcome, kwargs, match: str) -> None:  # type: ignore[no-untyped-def]
    y, scores = outcome
    args = {"scores": scores, **kwargs}
    with pytest.raises(InvalidInput, match=match):
        compare(y, **args)
