"""Honest baselines (issue 10): a scorer that ranks worse than random says so in a sentence,
on the model card, with its AUC against 0.5."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liucun.models.evaluation import (
    NO_BETTER_THAN_RANDOM,
    WORSE_THAN_RANDOM,
    compare,
    random_auc_band,
    ranking_warnings,
)


def test_the_random_band_is_the_spread_of_a_random_ordering() -> None:
    """Under a random score the AUC's sd is sqrt((P + N + 1) / (12 P N)) (Mann–Whitney);
    checked against 4,000 random orderings of 300 positives and 200 negatives."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(300), np.zeros(200)]
    aucs = np.array([roc_auc_score(y, rng.random(y.size)) for _ in range(4000)])
    band = random_auc_band(300, 200)
    assert band == pytest.approx(1.96 * math.sqrt(501 / (12 * 300 * 200)))
    assert np.std(aucs) == pytest.approx(band / 1.96, rel=0.05)
    assert np.mean(np.abs(aucs - 0.5) <= band) == pytest.approx(0.95, abs=0.015)
    assert math.isnan(random_auc_band(0, 10))


def _one_time_shop(seed: int = 1) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A CDNOW-like holdout: 60 % one-time buyers, 95 % of whom churn; repeat buyers churn
    less the more they bought. BG/NBD's 1 − P(alive) is 0 for every one-time buyer."""
    rng = np.random.default_rng(seed)
    n = 2000
    frequency = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 12, n))
    p_churn = np.where(frequency == 0, 0.95, 0.7 / np.sqrt(frequency + 0.1))
    y = (rng.random(n) < p_churn).astype(int)
    p_dead = np.where(frequency == 0, 0.0, rng.uniform(0.05, 0.9, n))
    return (
        frequency,
        y,
        {
            "churn_model": np.clip(p_churn + rng.normal(0, 0.05, n), 0, 1),
            "coin": rng.random(n),
            "btyd_p_dead": p_dead,
        },
    )


def test_bg_nbd_worse_than_random_gets_a_sentence_with_its_auc() -> None:
    frequency, y, scores = _one_time_shop()
    table = compare(y, scores, models="churn_model")
    auc = float(table.at["btyd_p_dead", "auc"])
    band = random_auc_band(int(y.sum()), int(y.size - y.sum()))
    assert auc < 0.5 - band  # the case is really there
    warned = ranking_warnings(table, frequency=frequency, churned=y, horizon_days=90)
    assert [(w.code, w.subject) for w in warned] == [(WORSE_THAN_RANDOM, "btyd_p_dead")]
    w = warned[0]
    assert (w.measured, w.reference) == (pytest.approx(auc), 0.5)
    once = frequency == 0
    assert w.text.startswith(
        f"BG/NBD (1 − P(alive)) ranks customers worse than random on held-out time: "
        f"AUC {auc:.3f} vs 0.5 (a random order lands within 0.5 ± {band:.3f} on these "
        f"2,000 customers)"
    )
    assert (
        f"{once.sum():,} of 2,000 customers here, {round(100 * y[once].mean())}% of whom "
        "ordered nothing in the next 90 days"
    ) in w.text
    assert w.text.endswith("Rank by the churn model's risk, not by P(alive).")
    # a baseline at chance is not worse than random: no sentence for the coin
    assert table.at["coin", "auc"] > 0.5 - band


def test_a_model_at_chance_is_called_no_better_than_random() -> None:
    _, y, scores = _one_time_shop(2)
    table = compare(y, {"churn_model": scores["coin"], "recency_rule": scores["churn_model"]})
    warned = ranking_warnings(table)
    assert [(w.code, w.subject) for w in warned] == [(NO_BETTER_THAN_RANDOM, "churn_model")]
    assert warned[0].text.startswith("The churn model ranks customers no better than random")
    good = compare(y, {"churn_model": scores["churn_model"], "coin": scores["coin"]})
    assert ranking_warnings(good) == []


def test_card_warnings_round_trip_and_old_cards_read(tmp_path: Path) -> None:
    from liucun.models import CardWarning, ModelCard, ModelDraft, load_model, save_model

    warning = CardWarning(
        "worse_than_random", "BG/NBD ranks worse than random", "btyd_p_dead", 0.35, 0.5
    )
    draft = ModelDraft(
        name="retention",
        as_of=None,
        data_start=None,
        data_end=None,
        horizon_days=90,
        customers=3,
        warnings=[warning],
    )
    card = save_model(tmp_path, {"m": 1}, draft, now=datetime(2026, 12, 1))
    on_disk = json.loads((tmp_path / "retention" / "v1" / "card.json").read_text())
    assert on_disk["warnings"] == [
        {
            "code": "worse_than_random",
            "text": "BG/NBD ranks worse than random",
            "subject": "btyd_p_dead",
            "measured": 0.35,
            "reference": 0.5,
        }
    ]
    assert load_model(tmp_path, "retention")[1] == card and card.warnings == [warning]
    del on_disk["warnings"]  # a card written before warnings existed
    assert ModelCard.from_json(json.dumps(on_disk)).warnings == []


@pytest.mark.slow
def test_training_on_cdnow_warns_that_bg_nbd_ranks_worse_than_random(
    tmp_path: Path,
) -> None:
    """The full CDNOW story on the 1/10 sample, exported as customer / date / amount: the
    card of `liucun train` says, with the measured AUC, that BG/NBD ranks worse than random,
    and counts the one-time buyers it calls alive (recounted here with pandas)."""
    import pyarrow as pa

    from liucun.datasets import load_cdnow
    from liucun.ingest import ingest_tables
    from liucun.models import train_models
    from liucun.workspace import init_workspace

    data = load_cdnow()
    events = data.events
    at = events.schema.get_field_index("properties")
    events = events.set_column(at, "properties", pa.nulls(len(events), pa.string()))
    with init_workspace(tmp_path / "ws") as ws:
        ingest_tables(ws.warehouse, events=events, source="cdnow orders")
        card = train_models(ws, n_cutoffs=3, num_threads=1, refit=False).card
    comparison = {r["scorer"]: r for r in card.metrics["comparison"]}
    auc = comparison["btyd_p_dead"]["auc"]
    [w] = [w for w in card.warnings if w.subject == "btyd_p_dead"]
    assert w.code == "worse_than_random" and w.measured == pytest.approx(auc) and auc < 0.45
    assert w.text in card.notes  # the CLI prints the notes
    # one-time buyers at the backtest cut-off, and how many of them churned, from the data
    cutoff = datetime.fromisoformat(card.metrics["backtest_cutoff"]).replace(tzinfo=None)
    t = data.transactions
    known = t[t.date < pd.Timestamp(cutoff)]
    days = known.groupby("customer_id").date.nunique()
    later = t[(t.date >= pd.Timestamp(cutoff)) & (t.date < pd.Timestamp(cutoff + timedelta(90)))]
    once = days.index[days == 1]
    churned = ~once.isin(later.customer_id)
    assert (
        f"{len(once):,} of {len(days):,} customers here, {round(100 * churned.mean())}% of "
        "whom ordered nothing in the next 90 days"
    ) in w.text
