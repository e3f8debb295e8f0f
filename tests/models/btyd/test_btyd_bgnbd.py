"""BG/NBD against Fader, Hardie & Lee (2005), "Counting your customers the easy way"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from btyd_published import BGNBD_PUBLISHED, three_sig

from liucun.models.btyd import BetaGeoModel


def test_bgnbd_reproduces_published_cdnow_fit(bgnbd_cdnow: BetaGeoModel) -> None:
    """FHL (2005), CDNOW 39 weeks: r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4."""
    m = bgnbd_cdnow
    assert m.converged_
    got = [m.params_[k] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(got, list(BGNBD_PUBLISHED.values()), rtol=5e-3)
    for k, v in BGNBD_PUBLISHED.items():
        assert three_sig(m.params_[k]) == pytest.approx(three_sig(v))
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert m.n_obs_ == 2357
    assert m.aic_ == pytest.approx(8 - 2 * m.log_likelihood_)
    assert m.bic_ == pytest.approx(4 * np.log(2357) - 2 * m.log_likelihood_)
    assert m.n_iter_ > 0


def test_bgnbd_standard_errors_and_summary(bgnbd_cdnow: BetaGeoModel) -> None:
    """Standard errors positive and finite; summary is a DataFrame with the 95 % interval."""
    table = bgnbd_cdnow.summary()
    assert list(table.index) == ["r", "alpha", "a", "b"]
    assert list(table.columns) == ["coef", "se", "lower 95%", "upper 95%"]
    assert np.all(table["se"] > 0) and np.all(np.isfinite(table["se"]))
    assert np.all(table["lower 95%"] < table["coef"]) and np.all(table["coef"] < table["upper 95%"])
    # r is tightly estimated on 2,357 customers; its SE is a few percent of the estimate.
    assert 0.01 < bgnbd_cdnow.standard_errors_["r"] < 0.02


def test_bgnbd_conditional_expectation_published_example() -> None:
    """FHL (2005) p. 280: E[X(39) | x=2, t_x=30.43, T=38.86] = 1.226 at the published fit."""
    m = BetaGeoModel.from_params(BGNBD_PUBLISHED)
    got = m.conditional_expected_transactions(39, 2, 30.43, 38.86)
    assert float(got[0]) == pytest.approx(1.226, abs=5e-4)


def test_bgnbd_holdout_aggregate_is_about_eleven_percent_low(
    bgnbd_cdnow: BetaGeoModel, cdnow: pd.DataFrame, cdnow_xtT
) -> None:  # type: ignore[no-untyped-def]
    """FHL (2005): 1,882 actual holdout repeat transactions; the BG/NBD forecast is ~11 % low."""
    pred = bgnbd_cdnow.conditional_expected_transactions(39, *cdnow_xtT)
    assert cdnow["holdout_frequency"].sum() == 1882
    rel = pred.sum() / 1882 - 1
    assert -0.15 <= rel <= -0.05
    # The unconditional (cohort) forecast: sum_i E[X(T_i + 39)] - E[X(T_i)].
    big_t = cdnow_xtT[2]
    cohort = (
        bgnbd_cdnow.expected_transactions(big_t + 39) - bgnbd_cdnow.expected_transactions(big_t)
    ).sum()
    assert cohort / 1882 - 1 == pytest.approx(-0.11, abs=0.01)


def test_bgnbd_conditional_expectations_by_frequency(
    bgnbd_cdnow: BetaGeoModel, cdnow: pd.DataFrame, cdnow_xtT
) -> None:  # type: ignore[no-untyped-def]
    """FHL (2005), Figure 4: mean predicted vs actual holdout by calibration frequency 0..7+."""
    pred = bgnbd_cdnow.conditional_expected_transactions(39, *cdnow_xtT)
    table = (
        pd.DataFrame(
            {
                "freq": np.minimum(cdnow["frequency"].to_numpy(), 7),
                "pred": pred,
                "actual": cdnow["holdout_frequency"].to_numpy(),
            }
        )
        .groupby("freq")
        .mean()
    )
    assert list(table.index) == list(range(8))
    assert np.all(np.diff(table["pred"]) > 0)
    low = table.loc[0:3]
    assert np.all(np.abs(low["pred"] - low["actual"]) <= 0.3 * low["actual"])
    assert table.loc[0, "pred"] == pytest.approx(table.loc[0, "actual"], rel=0.1)


def test_bgnbd_p_alive_properties(bgnbd_cdnow: BetaGeoModel, cdnow_xtT) -> None:  # type: ignore[no-untyped-def]
    """P(alive) lies in [0, 1]; BG/NBD assumes a customer without repeats is alive (FHL 2005)."""
    p = bgnbd_cdnow.p_alive(*cdnow_xtT)
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(p[cdnow_xtT[0] == 0] == 1.0)
    # Same frequency, a later last purchase means more likely alive.
    assert bgnbd_cdnow.p_alive(3, 35.0, 38.0)[0] > bgnbd_cdnow.p_alive(3, 5.0, 38.0)[0]


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0])
def test_bgnbd_p_transactions_is_a_distribution(t: float) -> None:
    """FHL (2005) eq. (8): P(X(t)=n) sums to 1 and its mean is E[X(t)] (eq. 9)."""
    m = BetaGeoModel.from_params(BGNBD_PUBLISHED)
    n = np.arange(400)
    p = m.p_transactions(n, t)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert (n * p).sum() == pytest.approx(float(m.expected_transactions(t)[0]), rel=1e-8)


def test_log_likelihood_at_given_parameters_matches_the_fit() -> None:
    """The log-likelihood at the published CDNOW parameters is −9582.4 (FHL 2005)."""
    from liucun.datasets import cdnow_rft, load_cdnow
    from liucun.models.btyd import BetaGeoModel

    rft = cdnow_rft(load_cdnow())
    published = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    ll = published.log_likelihood(rft.frequency, rft.recency, rft["T"])
    assert abs(ll - (-9582.4)) < 0.2
    fitted = BetaGeoModel().fit(rft.frequency, rft.recency, rft["T"])
    assert fitted.log_likelihood(rft.frequency, rft.recency, rft["T"]) == pytest.approx(
        fitted.log_likelihood_, rel=1e-12
    )


def test_identical_customers_are_fitted_once_with_the_same_result() -> None:
    """Merging identical rows (weights summed) leaves the fit unchanged."""
    import numpy as np

    from liucun.datasets import cdnow_rft, load_cdnow
    from liucun.models.btyd import BetaGeoModel
    from liucun.models.btyd._base import _merge_identical_rows

    rft = cdnow_rft(load_cdnow())
    data = {
        "x": rft.frequency.to_numpy(float),
        "tx": rft.recency.to_numpy(float),
        "T": rft["T"].to_numpy(float),
    }
    merged, weights = _merge_identical_rows(data, np.ones(len(rft)))
    assert len(weights) < len(rft) and weights.sum() == len(rft)
    rows = set(zip(data["x"], data["tx"], data["T"], strict=True))
    assert set(zip(merged["x"], merged["tx"], merged["T"], strict=True)) == rows
    a = BetaGeoModel().fit(rft.frequency, rft.recency, rft["T"])
    b = BetaGeoModel().fit(merged["x"], merged["tx"], merged["T"], weights=weights)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-12)
    assert a.params_ == pytest.approx(b.params_, rel=1e-6)
