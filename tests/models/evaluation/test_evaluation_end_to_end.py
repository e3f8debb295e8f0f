"""End to end on a simulated shop: BTYD fitted as of a cut-off, judged on the holdout,
against the baselines and against the simulator's ground truth.

The ranges were measured on this shop (seed 3; other seeds gave the values in the
comments) and are pinned with a margin.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from evaluation_shop import LoadedShop

from liucun.models import customer_summary
from liucun.models.btyd import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel
from liucun.models.evaluation import (
    against_truth,
    baseline_scores,
    compare,
    decile_table,
    holdout_outcomes,
    value_accuracy,
)

WEEK = 7.0


def _xtT(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        summary["frequency"].to_numpy(float),
        summary["recency"].to_numpy(float),
        summary["T"].to_numpy(float),
    )


def test_clv_on_the_holdout(loaded_shop: LoadedShop) -> None:
    """BG/NBD + Gamma-Gamma fitted on 18 months forecast the next 6 months per customer."""
    cutoff = loaded_shop.last_day - timedelta(days=180)
    summary = (
        customer_summary(
            loaded_shop.events, calibration_end=cutoff, holdout_end=loaded_shop.last_day
        )
        .order_by("user_id")
        .to_pandas()
    )
    x, tx, big_t = _xtT(summary)
    bg = BetaGeoModel().fit(x, tx, big_t)
    rep = x > 0
    gg = GammaGammaModel().fit(x[rep], summary["monetary_value"].to_numpy()[rep])
    assert bg.converged_ and gg.converged_
    orders = bg.conditional_expected_transactions(180 / WEEK, x, tx, big_t)
    spend = orders * gg.conditional_expected_spend(x, summary["monetary_value"])

    acc = value_accuracy(orders, summary["holdout_frequency"])
    assert acc.customers > 1400  # 1,555
    assert acc.pearson is not None and acc.pearson > 0.45  # 0.60 (seeds 1, 2, 5: 0.57-0.65)
    assert acc.aggregate_error_pct is not None and abs(acc.aggregate_error_pct) < 20  # +8 %
    money = value_accuracy(spend, summary["holdout_value"])
    assert money.pearson is not None and money.pearson > 0.4  # 0.59 (0.54-0.63)
    assert money.aggregate_error_pct is not None and abs(money.aggregate_error_pct) < 20  # +6 %

    deciles = decile_table(orders, summary["holdout_frequency"])
    top, bottom = deciles.iloc[0], deciles.iloc[-1]
    assert top["mean_actual"] > 10 * bottom["mean_actual"]  # 3.25 vs 0.08
    assert np.corrcoef(deciles["mean_predicted"], deciles["mean_actual"])[0, 1] > 0.95


def test_churn_baselines_and_an_honest_verdict(loaded_shop: LoadedShop) -> None:
    """90-day churn of customers active in the last year: the recency rule and RFM rank
    well; BG/NBD's 1 − P(alive) calls every one-time buyer alive and loses to both, and
    the comparison says so."""
    cutoff = loaded_shop.last_day - timedelta(days=90)
    scores = baseline_scores(loaded_shop.events, cutoff=cutoff)
    outcomes = holdout_outcomes(loaded_shop.events, cutoff=cutoff, horizon_days=90)
    assert scores["user_id"].tolist() == outcomes["user_id"].tolist()
    active = (scores["recency_days"] <= 365).to_numpy()
    y = outcomes["churned"].to_numpy()[active]
    table = compare(
        y,
        {
            name: scores[name].to_numpy()[active]
            for name in ("btyd_p_dead", "recency_days", "rfm_score")
        },
        models="btyd_p_dead",
    )
    assert 1000 < table.at["btyd_p_dead", "customers"] < 1600  # 1,299
    assert 0.65 < table.at["recency_days", "auc"] < 0.8  # 0.731 (0.73-0.74)
    assert 0.65 < table.at["rfm_score", "auc"] < 0.8  # 0.731 (0.72-0.73)
    assert table.at["recency_days", "lift_20"] > 1.15  # 1.30
    assert table.at["btyd_p_dead", "auc"] < 0.6  # 0.50
    assert not table.at["btyd_p_dead", "beats_recency_days"]
    assert table.at["btyd_p_dead", "verdict"].startswith("beats no baseline on AUC")
    assert np.isfinite(table.at["btyd_p_dead", "brier"])
    assert np.isnan(table.at["recency_days", "brier"])


def test_btyd_against_the_ground_truth(loaded_shop: LoadedShop) -> None:
    """Fitted on all the data: expected 90-day orders track the true expectations; MBG/NBD
    (whose dropout can follow the first order, as in the simulator) gets P(alive) right,
    BG/NBD (every one-time buyer alive) overstates it."""
    summary = (
        customer_summary(loaded_shop.events, calibration_end=loaded_shop.last_day)
        .order_by("user_id")
        .to_pandas()
    )
    x, tx, big_t = _xtT(summary)
    results = {}
    for model in (BetaGeoModel(), ModifiedBetaGeoModel()):
        model.fit(x, tx, big_t)
        results[type(model).__name__] = against_truth(
            summary["user_id"],
            loaded_shop.truth,
            p_alive=model.p_alive(x, tx, big_t),
            expected_orders=model.conditional_expected_transactions(90 / WEEK, x, tx, big_t),
            horizon_days=90,
        )
    bg, mbg = results["BetaGeoModel"], results["ModifiedBetaGeoModel"]
    assert bg.customers == mbg.customers > 1800  # 1,948
    for got in (bg, mbg):
        assert got.orders.pearson is not None and got.orders.pearson > 0.65  # 0.79 (0.75-0.82)
        assert got.orders.aggregate_error_pct is not None
        assert abs(got.orders.aggregate_error_pct) < 20  # -8 % (-9 to +4)
    assert mbg.alive.at["p_alive", "auc"] > 0.75  # 0.82 (0.80-0.82)
    assert mbg.alive.at["p_alive", "ece"] < 0.12  # 0.03 (0.03-0.06)
    assert mbg.mean_p_alive == pytest.approx(mbg.share_alive, abs=0.06)  # 0.50 vs 0.49
    assert bg.alive.at["p_alive", "auc"] < mbg.alive.at["p_alive", "auc"] - 0.15  # 0.56
    assert bg.mean_p_alive > bg.share_alive + 0.15  # 0.74 vs 0.49
