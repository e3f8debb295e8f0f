"""CustomerValueModel: BG/NBD + Gamma-Gamma from the warehouse reproduce the published CDNOW
fits, and its predictions are the two models' own formulas."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput, NotFittedError
from liucun.datasets import load_cdnow
from liucun.ingest import ingest_tables
from liucun.models import CustomerValueModel, value_summary
from liucun.models.btyd import BetaGeoModel, FitWarning, GammaGammaModel
from liucun.workspace import init_workspace

#: Fader, Hardie & Lee (2005a, 2005b): BG/NBD and Gamma-Gamma on the 39-week calibration.
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CALIBRATION_END = datetime(1997, 10, 1)  # 39 weeks after 1 Jan 1997, exclusive


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, CustomerValueModel]:
    data = load_cdnow()
    with init_workspace(tmp_path_factory.mktemp("cdnow") / "ws") as ws:
        ingest_tables(ws.warehouse, users=data.users, events=data.events, source="cdnow")
        summary = value_summary(ws.warehouse.table("events"), as_of=CALIBRATION_END).to_pandas()
    return summary, CustomerValueModel().fit(summary)


def test_reproduces_the_published_cdnow_fits(
    cdnow: tuple[pd.DataFrame, CustomerValueModel],
) -> None:
    summary, model = cdnow
    assert len(summary) == 2357 and model.n_customers_ == 2357
    params = model.params()
    for k, v in BGNBD.items():
        assert params[f"bg_nbd.{k}"] == pytest.approx(v, abs=1e-3), k
    for k, v in GAMMA_GAMMA.items():
        assert params[f"gamma_gamma.{k}"] == pytest.approx(v, abs=0.01), k
    assert model.penalizers_ == {"bg_nbd": 0.0, "gamma_gamma": 0.0}


def test_predictions_are_the_models_formulas(
    cdnow: tuple[pd.DataFrame, CustomerValueModel],
) -> None:
    summary, model = cdnow
    got = model.predict(summary)
    x, tx, big_t, m = (
        summary[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    bg = BetaGeoModel.from_params(model.orders_model_.params_)
    gg = GammaGammaModel.from_params(model.spend_model_.params_)  # type: ignore[union-attr]
    np.testing.assert_allclose(got.p_alive, bg.p_alive(x, tx, big_t), rtol=1e-12)
    spend = gg.conditional_expected_spend(x, m)
    for h in (30, 90, 365):
        orders = bg.conditional_expected_transactions(h / 7, x, tx, big_t)
        np.testing.assert_allclose(got[f"expected_orders_{h}d"], orders, rtol=1e-12)
        np.testing.assert_allclose(got[f"clv_{h}d"], orders * spend, rtol=1e-12)
    # longer horizons never expect fewer orders, and P(alive) is a probability
    assert (got.expected_orders_365d >= got.expected_orders_90d).all()
    assert got.p_alive.between(0, 1).all()


def test_few_repeat_buyers_fall_back_to_the_mean_order_value() -> None:
    summary = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(60)],
            "frequency": [0.0] * 55 + [1, 2, 1, 3, 1],
            "recency": [0.0] * 55 + [5, 10, 3, 20, 8],
            "T": [30.0] * 60,
            "monetary_value": [0.0] * 55 + [10, 20, 30, 40, 50],
        }
    )
    # so few repeat buyers also push BG/NBD to a bound: it says so and is penalized
    with pytest.warns(FitWarning, match="used penalizer"):
        model = CustomerValueModel().fit(summary)
    assert model.spend_model_ is None and model.penalizers_["bg_nbd"] > 0
    # (10·1 + 20·2 + 30·1 + 40·3 + 50·1) / (1 + 2 + 1 + 3 + 1)
    assert model.mean_order_value_ == pytest.approx(250 / 8)
    np.testing.assert_allclose(model.predict(summary).expected_order_value, 250 / 8)


def test_refuses_what_it_cannot_use() -> None:
    with pytest.raises(InvalidInput, match="lacks"):
        CustomerValueModel().fit(pd.DataFrame({"user_id": ["a"], "frequency": [1.0]}))
    empty = pd.DataFrame(columns=["user_id", "frequency", "recency", "T", "monetary_value"])
    with pytest.raises(InvalidInput, match="nothing to fit"):
        CustomerValueModel().fit(empty)
    with pytest.raises(NotFittedError, match="not fitted"):
        CustomerValueModel().predict(empty)


def test_zero_value_repeat_buyers_are_scored(
    cdnow: tuple[pd.DataFrame, CustomerValueModel],
) -> None:
    """A real export has orders of value 0 (issue 10: `liucun train` died on 80 of them).
    Fit leaves such buyers out of Gamma-Gamma; predict gives them the model's weighted
    mean at m = 0 (Fader, Hardie & Lee 2005b, eq. 5: the population mean p·γ/(q − 1)
    weighted by (q − 1)/(p·x + q − 1), plus x·m weighted by p·x/(p·x + q − 1))."""
    summary, _ = cdnow
    shop = summary.copy()
    repeat = shop.index[shop.frequency > 0][:80]
    shop.loc[repeat, "monetary_value"] = 0.0
    model = CustomerValueModel().fit(shop)
    got = model.predict(shop).set_index("user_id").expected_order_value
    p, q, gamma = (model.spend_model_.params_[k] for k in ("p", "q", "gamma"))  # type: ignore[union-attr]
    x = shop.loc[repeat, "frequency"].to_numpy(float)
    weight = (q - 1) / (p * x + q - 1)
    expected = weight * p * gamma / (q - 1) + (1 - weight) * 0.0
    np.testing.assert_allclose(got[shop.loc[repeat, "user_id"]].to_numpy(), expected, rtol=1e-12)
    others = shop.index.difference(repeat)
    gg = GammaGammaModel.from_params(model.spend_model_.params_)  # type: ignore[union-attr]
    np.testing.assert_allclose(
        got[shop.loc[others, "user_id"]].to_numpy(),
        gg.conditional_expected_spend(
            shop.loc[others, "frequency"].to_numpy(float),
            shop.loc[others, "monetary_value"].to_numpy(float),
        ),
        rtol=1e-12,
    )
