"""Pareto/NBD against Fader, Hardie & Lee (2005) and Fader & Hardie (2005) on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from btyd_published import PARETO_PUBLISHED, three_sig
from scipy import integrate
from scipy.special import hyp2f1

from liucun.models.btyd import ParetoNBDModel
from liucun.models.btyd._pareto import log_hyp2f1_series

PUB = np.array(list(PARETO_PUBLISHED.values()))


def test_pareto_reproduces_published_cdnow_fit(pareto_cdnow: ParetoNBDModel) -> None:
    """FHL (2005): r=0.553, alpha=10.578, s=0.606, beta=11.669, LL=-9595.0."""
    m = pareto_cdnow
    assert m.converged_
    for k, v in PARETO_PUBLISHED.items():
        assert three_sig(m.params_[k]) == pytest.approx(three_sig(v)), k
    assert m.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


def test_pareto_log_likelihood_at_published_values(cdnow_xtT) -> None:  # type: ignore[no-untyped-def]
    """The closed form at the published parameters gives the published LL -9595.0."""
    x, tx, big_t = cdnow_xtT
    nll, _ = ParetoNBDModel()._negative_log_likelihood(PUB, {"x": x, "tx": tx, "T": big_t})
    assert -nll.sum() == pytest.approx(-9595.0, abs=0.1)


@pytest.mark.parametrize(
    "params",
    [PUB, np.array([0.5, 3.0, 0.8, 20.0]), np.array([2.0, 25.0, 1.5, 0.7])],
    ids=["published", "alpha<beta", "alpha>beta"],
)
def test_hypergeometric_closed_form_matches_series_and_quadrature(params: np.ndarray) -> None:
    """Fader & Hardie (2005) eqs. (22)-(23) (2F1 split on alpha >= beta) equals the death-time
    integral by adaptive quadrature (scipy.integrate.quad) and by our Gauss-Legendre rule."""
    x = np.array([0.0, 1, 2, 5, 20, 60])
    tx = np.array([0.0, 1.5, 30.43, 12.0, 35.0, 38.0])
    big_t = np.array([38.86, 20.0, 38.86, 39.0, 39.0, 39.0])
    r, alpha, s, beta = params
    closed = ParetoNBDModel._log_death_integral(params, x, tx, big_t)
    gl = ParetoNBDModel._quadrature_moments(params, x, tx, big_t)["log_sint"]
    for i in range(len(x)):
        scale = -(r + x[i]) * np.log(alpha + big_t[i]) - (s + 1) * np.log(beta + big_t[i])

        def f(tau: float, i: int = i, scale: float = scale) -> float:
            return float(
                np.exp(-(r + x[i]) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau) - scale)
            )

        val, _ = integrate.quad(f, tx[i], big_t[i], epsabs=0, epsrel=1e-13, limit=200)
        ref = np.log(s) + np.log(val) + scale
        assert closed[i] == pytest.approx(ref, rel=1e-10, abs=1e-10)
        assert gl[i] == pytest.approx(ref, rel=1e-10, abs=1e-10)


def test_scipy_hyp2f1_matches_direct_series_on_the_pareto_branch() -> None:
    """scipy's 2F1(a, b; a+1; z) on the arguments the likelihood uses equals the series."""
    a = np.array([1.2, 3.7, 12.5, 60.0, 1.2])
    b = np.array([1.6, 0.8, 2.0, 1.3, 5.0])
    z = np.array([0.05, 0.5, 0.8, 0.9, 0.3])
    got = np.log(hyp2f1(a, b, a + 1, z))
    want = log_hyp2f1_series(a, b, a + 1, z)
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_pareto_holdout_forecasts(
    pareto_cdnow: ParetoNBDModel, cdnow: pd.DataFrame, cdnow_xtT
) -> None:  # type: ignore[no-untyped-def]
    """FHL (2005): the Pareto/NBD cohort forecast of the 1,882 holdout transactions is about
    7 % low; the sum of individual conditional expectations is lower (about 11.5 %)."""
    m = pareto_cdnow
    big_t = cdnow_xtT[2]
    cohort = (m.expected_transactions(big_t + 39) - m.expected_transactions(big_t)).sum()
    assert cohort / 1882 - 1 == pytest.approx(-0.07, abs=0.01)
    cond = m.conditional_expected_transactions(39, *cdnow_xtT).sum()
    assert -0.15 <= cond / 1882 - 1 <= -0.05


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0])
def test_pareto_p_transactions_is_a_distribution(pareto_cdnow: ParetoNBDModel, t: float) -> None:
    """P(X(t)=n) (Fader, Hardie & Lee 2006 note, by quadrature) sums to 1 with mean E[X(t)]."""
    n = np.arange(400)
    p = pareto_cdnow.p_transactions(n, t)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert (n * p).sum() == pytest.approx(float(pareto_cdnow.expected_transactions(t)[0]), rel=1e-8)


def test_pareto_p_alive_in_unit_interval(pareto_cdnow: ParetoNBDModel, cdnow_xtT) -> None:  # type: ignore[no-untyped-def]
    """P(alive) in [0, 1]; 1 when the last purchase is at T (nothing to explain)."""
    p = pareto_cdnow.p_alive(*cdnow_xtT)
    assert np.all((p >= 0) & (p <= 1))
    assert pareto_cdnow.p_alive(3, 38.0, 38.0)[0] == pytest.approx(1.0)
    assert pareto_cdnow.p_alive(3, 5.0, 38.0)[0] < 0.5
