"""Gamma-Gamma against Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from btyd_published import GAMMA_GAMMA_PUBLISHED, three_sig

from liucun.core import InvalidInput
from liucun.models.btyd import BetaGeoModel, GammaGammaModel


@pytest.fixture(scope="module")
def gg(cdnow: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow["frequency"], cdnow["monetary_value"])


def test_gamma_gamma_reproduces_published_cdnow_fit(gg: GammaGammaModel) -> None:
    """FHL (2005b) on the 946 CDNOW repeat customers: p=6.25, q=3.74, gamma=15.44."""
    assert gg.converged_
    assert gg.n_obs_ == 946
    for k, v in GAMMA_GAMMA_PUBLISHED.items():
        assert three_sig(gg.params_[k]) == pytest.approx(three_sig(v)), k


def test_conditional_spend_shrinks_toward_population_mean(gg: GammaGammaModel) -> None:
    """FHL (2005b) eq. (5): E[Z|x, m] is a weighted mean of p*gamma/(q-1) and m."""
    p, q, gamma = (gg.params_[k] for k in ("p", "q", "gamma"))
    pop = p * gamma / (q - 1)
    got = gg.conditional_expected_spend([0, 1, 10, 1000], [0.0, 100.0, 100.0, 100.0])
    assert got[0] == pytest.approx(pop)
    assert pop < got[1] < got[2] < got[3] < 100.0
    assert got[3] == pytest.approx(100.0, rel=1e-2)


def test_clv_is_discounted_sum_of_transactions_times_spend(
    gg: GammaGammaModel, cdnow: pd.DataFrame
) -> None:
    """Without discounting, CLV over h months = E[Y(30h/7)] * E[Z] (lifetimes' definition)."""
    bg = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    rows = cdnow.iloc[:50]
    args = (rows["frequency"], rows["recency"], rows["T"], rows["monetary_value"])
    plain = gg.clv(bg, *args, horizon=12)
    expected = bg.conditional_expected_transactions(
        360 / 7, rows["frequency"], rows["recency"], rows["T"]
    ) * gg.conditional_expected_spend(rows["frequency"], rows["monetary_value"])
    np.testing.assert_allclose(plain, expected, rtol=1e-10)
    discounted = gg.clv(bg, *args, horizon=12, discount_rate=0.01)
    assert np.all(discounted < plain) and np.all(discounted > plain / 1.01**12)
    with pytest.raises(InvalidInput, match="horizon"):
        gg.clv(bg, *args, horizon=0)


def test_gamma_gamma_rejects_zero_spend_for_repeat_buyers() -> None:
    """A repeat buyer's mean repeat value must be positive."""
    with pytest.raises(InvalidInput, match="monetary_value must be > 0"):
        GammaGammaModel().fit([1, 2], [0.0, 10.0])
    with pytest.raises(InvalidInput, match="frequency > 0"):
        GammaGammaModel().fit([0, 0], [0.0, 0.0])
