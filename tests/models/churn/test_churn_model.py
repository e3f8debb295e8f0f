"""The churn classifier on a simulated shop: held-out quality, calibration, determinism."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import joblib
import numpy as np
import pytest
from churn_shop import Shop

from liucun.core import ConfigError, InvalidInput, NotFittedError
from liucun.models.churn import ChurnModel, build_features, churn_labels
from liucun.models.evaluation import (
    brier_score,
    compare,
    expected_calibration_error,
    pr_auc,
    roc_auc,
)


@pytest.fixture(scope="module")
def held_out(shop: Shop):  # type: ignore[no-untyped-def]
    """Features and labels at the test cut-off, which no training row looked past."""
    rows = build_features(shop.events, shop.users, as_of=shop.test_cutoff)
    labels = churn_labels(shop.events, as_of=shop.test_cutoff)
    return rows.merge(labels, on="user_id")


def test_held_out_model_beats_the_recency_rule_and_is_calibrated(  # type: ignore[no-untyped-def]
    shop: Shop, held_out
) -> None:
    """Measured at seed 0: AUC 0.849 vs 0.748 for recency, ECE 0.038 on 1,622 customers."""
    y = held_out["churned"].to_numpy(dtype=float)
    risk = shop.model.predict_risk(held_out)
    recency = held_out["recency_days"].to_numpy()
    assert len(y) > 1000
    assert roc_auc(y, risk) > roc_auc(y, recency) + 0.05
    assert pr_auc(y, risk) > pr_auc(y, recency)
    base_rate = y.mean()
    assert brier_score(y, risk) < 0.8 * base_rate * (1 - base_rate)  # beats the constant
    assert expected_calibration_error(y, risk) < 0.06
    table = compare(y, {"model": risk, "recency_days": recency})
    assert bool(table.loc["model", "beats_recency_days"])


def test_fitted_state_and_metadata(shop: Shop) -> None:
    m, data = shop.model, shop.data
    assert m.feature_names_ == data.features
    assert set(m.categorical_features_) == set(data.categorical)
    assert "app" in m.categories_["preferred_channel"]
    assert m.calibration_ in ("isotonic", "sigmoid")
    assert m.calibration_scores_[m.calibration_]["brier"] == min(
        s["brier"] for s in m.calibration_scores_.values()
    )
    assert m.validation_metrics_["brier"] == m.calibration_scores_[m.calibration_]["brier"]
    assert 0 < m.best_iteration_ < m.n_estimators
    assert m.n_train_ == len(data.train) and m.n_validation_ == len(data.validation)
    meta = json.loads(json.dumps(m.metadata()))
    assert meta["features"] == list(data.features)
    assert meta["data_end"] == "2026-07-01T00:00:00"
    assert meta["validation_cutoffs"] == ["2026-04-02T00:00:00"]
    assert meta["lightgbm_params"]["seed"] == 0 and meta["params"]["num_threads"] == 1
    imp = m.feature_importance()
    assert sorted(imp["feature"]) == sorted(data.features) and imp["gain"].iloc[0] > 0
    proba = m.predict_proba(data.validation.head(5))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba[:, 1], m.predict_risk(data.validation.head(5)))


def test_the_fit_is_deterministic_and_pickles(shop: Shop) -> None:
    rows = shop.data.validation
    again = ChurnModel(num_threads=1, random_state=0).fit(shop.data)
    np.testing.assert_array_equal(again.predict_raw(rows), shop.model.predict_raw(rows))
    buffer = io.BytesIO()
    joblib.dump(shop.model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_risk(rows), shop.model.predict_risk(rows))
    assert loaded.metadata() == shop.model.metadata()


def test_unseen_categories_and_missing_values_are_scored(shop: Shop) -> None:
    rows = shop.data.validation.head(50).copy()
    rows["preferred_channel"] = "carrier_pigeon"
    rows["last_nps"] = np.nan
    risk = shop.model.predict_risk(rows)
    assert np.all((risk > 0) & (risk < 1))


def test_wrong_use_is_refused(shop: Shop) -> None:
    with pytest.raises(ConfigError, match="horizon_days=60"):
        ChurnModel(horizon_days=60).fit(shop.data)
    with pytest.raises(ConfigError, match="pass random_state="):
        ChurnModel(params={"seed": 3}).fit(shop.data)
    with pytest.raises(ConfigError, match="calibration"):
        ChurnModel(calibration="beta").fit(shop.data)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_threads"):
        ChurnModel(num_threads=-1).fit(shop.data)
    with pytest.raises(NotFittedError, match="not fitted"):
        ChurnModel().predict_risk(shop.data.validation)
    with pytest.raises(InvalidInput, match="p_alive"):
        shop.model.predict_risk(shop.data.validation.drop(columns=["p_alive"]))
    retained = shop.data.frame.assign(churned=False)
    with pytest.raises(InvalidInput, match="needs both outcomes"):
        ChurnModel().fit(replace(shop.data, frame=retained))
