"""BG/BB against Fader, Hardie & Shang (2010), the donations data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from btyd_published import BGBB_PUBLISHED, three_sig

from liucun.core import InvalidInput
from liucun.models.btyd import BetaGeoBetaBinomModel


@pytest.fixture(scope="module")
def bgbb(donations: pd.DataFrame) -> BetaGeoBetaBinomModel:
    d = donations
    return BetaGeoBetaBinomModel().fit(d["frequency"], d["recency"], d["periods"], d["weights"])


def test_bgbb_reproduces_published_donations_fit(bgbb: BetaGeoBetaBinomModel) -> None:
    """FHS (2010): alpha=1.204, beta=0.750, gamma=0.657, delta=2.783, LL about -33,225.6."""
    assert bgbb.converged_
    assert bgbb.n_obs_ == 11104
    for k, v in BGBB_PUBLISHED.items():
        assert three_sig(bgbb.params_[k]) == pytest.approx(three_sig(v)), k
    assert bgbb.log_likelihood_ == pytest.approx(-33225.6, abs=0.1)


def test_bgbb_weights_equal_expanded_rows(donations: pd.DataFrame) -> None:
    """Fitting the histogram with weights equals fitting one row per donor."""
    d = donations
    idx = np.repeat(np.arange(len(d)), d["weights"].to_numpy())
    expanded = BetaGeoBetaBinomModel().fit(
        d["frequency"].to_numpy()[idx], d["recency"].to_numpy()[idx], d["periods"].to_numpy()[idx]
    )
    weighted = BetaGeoBetaBinomModel().fit(d["frequency"], d["recency"], d["periods"], d["weights"])
    for k in BetaGeoBetaBinomModel.param_names:
        assert expanded.params_[k] == pytest.approx(weighted.params_[k], rel=1e-5)
    assert expanded.log_likelihood_ == pytest.approx(weighted.log_likelihood_, rel=1e-9)


def test_bgbb_predictions(bgbb: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    """FHS (2010) eqs. (7)-(13): P(X(n)=x) sums to 1 with mean E[X(n)]; P(alive) in [0,1]."""
    x = np.arange(7)
    p = bgbb.p_transactions(x, 6)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (x * p).sum() == pytest.approx(float(bgbb.expected_transactions(6)[0]), rel=1e-10)
    # Observed share of donors with x donations, e.g. 3,464 of 11,104 never repeated.
    assert p[0] == pytest.approx(3464 / 11104, abs=0.01)
    d = donations
    alive = bgbb.p_alive(d["frequency"], d["recency"], d["periods"])
    assert np.all((alive > 0) & (alive < 1))
    # Among 6-of-6 donors, the alive probability is high; after a silent spell it drops.
    assert bgbb.p_alive(6, 6, 6)[0] > 0.9 > bgbb.p_alive(3, 3, 6)[0]
    future = bgbb.conditional_expected_transactions(5, d["frequency"], d["recency"], d["periods"])
    assert np.all(future >= 0) and np.all(future <= 5)
    # More donations by the last period means more expected in the next five.
    x = np.arange(7)
    by_x = bgbb.conditional_expected_transactions(5, x, np.where(x > 0, 6, 0), 6)
    assert np.all(np.diff(by_x) > 0)
    # With no future opportunities nothing is expected.
    assert bgbb.conditional_expected_transactions(0, 3, 5, 6)[0] == pytest.approx(0.0, abs=1e-12)


def test_bgbb_rejects_frequency_above_recency() -> None:
    """x repeat transactions need a last one at period t_x >= x."""
    with pytest.raises(InvalidInput, match="frequency must not exceed recency"):
        BetaGeoBetaBinomModel().fit([3], [2], [6])
    with pytest.raises(InvalidInput, match="recency must not exceed n_periods"):
        BetaGeoBetaBinomModel().fit([3], [7], [6])
