"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) against BTYDplus on CDNOW."""

from __future__ import annotations

import numpy as np
import pytest
from btyd_published import MBGNBD_BTYDPLUS, three_sig

from liucun.models.btyd import ModifiedBetaGeoModel


def test_mbgnbd_reproduces_btydplus_cdnow_fit(mbgnbd_cdnow: ModifiedBetaGeoModel) -> None:
    """BTYDplus ``mbgcnbd.EstimateParameters(k=1)``: r=0.525, alpha=6.183, a=0.891, b=1.614."""
    m = mbgnbd_cdnow
    assert m.converged_
    for k, v in MBGNBD_BTYDPLUS.items():
        assert three_sig(m.params_[k]) == pytest.approx(three_sig(v)), k
    assert np.all(np.isfinite(list(m.standard_errors_.values())))


def test_mbgnbd_customers_without_repeats_may_be_dead(
    mbgnbd_cdnow: ModifiedBetaGeoModel, cdnow_xtT
) -> None:  # type: ignore[no-untyped-def]
    """Batislam et al. (2007): unlike BG/NBD, P(alive | x=0) = 1 / (1 + a/b) < 1 at t_x=T=0."""
    p = mbgnbd_cdnow.p_alive(*cdnow_xtT)
    assert np.all((p > 0) & (p < 1))
    a, b = mbgnbd_cdnow.params_["a"], mbgnbd_cdnow.params_["b"]
    assert mbgnbd_cdnow.p_alive(0, 0, 0)[0] == pytest.approx(1 / (1 + a / b))


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0])
def test_mbgnbd_p_transactions_is_a_distribution(
    mbgnbd_cdnow: ModifiedBetaGeoModel, t: float
) -> None:
    """P(X(t)=n) sums to 1 and its mean equals the closed-form E[X(t)]."""
    n = np.arange(400)
    p = mbgnbd_cdnow.p_transactions(n, t)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert (n * p).sum() == pytest.approx(float(mbgnbd_cdnow.expected_transactions(t)[0]), rel=1e-8)


def test_mbgnbd_conditional_expectation_at_zero_horizon_and_growth(
    mbgnbd_cdnow: ModifiedBetaGeoModel,
) -> None:
    """E[Y(0)] = 0 and E[Y(t)] grows with t and with frequency."""
    m = mbgnbd_cdnow
    assert m.conditional_expected_transactions(0, 2, 30.0, 38.0)[0] == pytest.approx(0, abs=1e-12)
    by_t = m.conditional_expected_transactions([10, 20, 39], 2, 30.0, 38.0)
    assert np.all(np.diff(by_t) > 0)
    by_x = m.conditional_expected_transactions(39, [1, 2, 5], 30.0, 38.0)
    assert np.all(np.diff(by_x) > 0)
