"""The CDNOW calibration summary against the published BTYD figures.

Sources: Fader, Hardie & Lee (2005a), "Counting your customers the easy way" (BG/NBD),
and (2005b) "RFM and CLV: using iso-value curves for customer base analysis"
(Gamma-Gamma), both on this 2,357-customer CDNOW sample with a 39-week calibration
ending 1997-09-30 and a 39-week holdout; the facts are collected in
``shared/datasets/README.md``.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import gammaln

from liucun.core import ConfigError
from liucun.datasets import CdnowData, cdnow_rft, load_cdnow


@pytest.fixture(scope="module")
def cdnow() -> CdnowData:
    return load_cdnow()


@pytest.fixture(scope="module")
def rft(cdnow: CdnowData) -> pd.DataFrame:
    return cdnow_rft(cdnow)


def test_shape_and_totals(rft: pd.DataFrame) -> None:
    """FHL 2005a: 2,457 repeat transactions in calibration, 1,882 in weeks 40–78."""
    assert list(rft.columns) == ["frequency", "recency", "T", "monetary_value", "holdout_frequency"]
    assert rft.index.name == "customer_id"
    assert len(rft) == 2_357
    assert rft["frequency"].sum() == 2_457
    assert rft["holdout_frequency"].sum() == 1_882


def test_repeat_customers_are_the_gamma_gamma_sample(rft: pd.DataFrame) -> None:
    """FHL 2005b fit the spend model on the 946 calibration repeat customers."""
    assert (rft["frequency"] > 0).sum() == 946
    assert (rft.loc[rft["frequency"] == 0, ["recency", "monetary_value"]] == 0).all().all()


def test_customer_with_two_repeats_matches_the_paper(rft: pd.DataFrame) -> None:
    """FHL 2005a's worked example: x = 2, t_x = 30.43, T = 38.86 (customer 00004)."""
    row = rft.loc["00004"]
    assert row["frequency"] == 2
    assert row["recency"] == pytest.approx(213 / 7)  # 1997-01-01 → 1997-08-02
    assert row["T"] == pytest.approx(272 / 7)  # 1997-01-01 → 1997-09-30
    assert round(row["recency"], 2) == 30.43 and round(row["T"], 2) == 38.86
    assert row["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert row["holdout_frequency"] == 1


def test_t_is_measured_between_calendar_days(rft: pd.DataFrame, cdnow: CdnowData) -> None:
    """T = (1997-09-30 − first purchase day) / 7, so Jan-1 customers have 38.86, not 39."""
    first = cdnow.transactions.groupby("customer_id")["date"].min()
    days = (pd.Timestamp("1997-09-30") - first).dt.days
    np.testing.assert_allclose(rft["T"], days / 7)
    assert rft["T"].max() == pytest.approx(272 / 7)
    assert (rft["recency"] <= rft["T"]).all()


def _bgnbd_log_likelihood(rft: pd.DataFrame, r: float, alpha: float, a: float, b: float) -> float:
    x, tx, t = (rft[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    common = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
    )
    alive = -(r + x) * np.log(alpha + t)
    # FHL 2005a eq. (6): the second term exists only for repeat buyers (b + x - 1 > 0).
    dropped = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    return float(np.sum(common + np.logaddexp(alive, dropped)))


def test_published_bgnbd_fit_has_the_published_log_likelihood(rft: pd.DataFrame) -> None:
    """FHL 2005a: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4.

    This pins the time convention: measuring T one day longer (to the end of
    1997-09-30) moves the log-likelihood to about −9589.9.
    """
    ll = _bgnbd_log_likelihood(rft, 0.243, 4.414, 0.793, 2.426)
    assert ll == pytest.approx(-9582.4, abs=0.05)
    longer = rft.assign(T=rft["T"] + 1 / 7)
    assert _bgnbd_log_likelihood(longer, 0.243, 4.414, 0.793, 2.426) < -9589


def test_monetary_value_reproduces_the_gamma_gamma_fit(rft: pd.DataFrame) -> None:
    """FHL 2005b: p = 6.25, q = 3.74, γ = 15.44 on the 946 repeat customers."""
    rep = rft[rft["frequency"] > 0]
    x = rep["frequency"].to_numpy(dtype=float)
    m = rep["monetary_value"].to_numpy()
    assert round(m.mean(), 2) == 35.08

    def nll(log_params: np.ndarray) -> float:
        p, q, g = np.exp(log_params)
        px = p * x
        return -float(
            np.sum(
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(g)
                + (px - 1) * np.log(m)
                + px * np.log(x)
                - (px + q) * np.log(g + m * x)
            )
        )

    fit = minimize(
        nll,
        np.zeros(3),
        method="Nelder-Mead",
        options={"maxiter": 5000, "xatol": 1e-8, "fatol": 1e-8},
    )
    assert fit.success
    np.testing.assert_allclose(np.exp(fit.x), [6.25, 3.74, 15.44], atol=0.01)


def test_other_splits(cdnow: CdnowData) -> None:
    """Days as the unit scale T by 7; a shorter holdout counts fewer transactions."""
    days = cdnow_rft(cdnow, unit_days=1)
    assert days.loc["00004", "T"] == 272
    short = cdnow_rft(cdnow, holdout_end="1997-12-31")
    assert short["holdout_frequency"].sum() < 1_882
    early = cdnow_rft(cdnow, calibration_end="1997-01-31")
    assert len(early) < 2_357
    assert early["T"].min() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"unit_days": 0}, "unit_days must be a positive"),
        ({"holdout_end": "1997-06-30"}, "holdout_end 1997-06-30 is before calibration_end"),
    ],
)
def test_bad_options_raise(cdnow: CdnowData, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cdnow_rft(cdnow, **kwargs)  # type: ignore[arg-type]
