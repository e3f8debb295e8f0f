"""The donations histogram of Fader, Hardie & Shang (2010), "Customer-base analysis in a
discrete-time noncontractual setting", Marketing Science 29(6): 11,104 donors, 6 annual
repeat-donation opportunities (facts in ``shared/datasets/README.md``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from liucun.core import InvalidInput
from liucun.datasets import load_donations


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return load_donations()


def test_histogram_matches_the_paper(donations: pd.DataFrame) -> None:
    """FHS 2010: 11,104 donors, 6 opportunities, 22 (x, t_x) patterns; 3,464 never repeat."""
    assert list(donations.columns) == ["frequency", "recency", "periods", "weights"]
    assert (donations.dtypes == "int64").all()
    assert donations["weights"].sum() == 11_104
    assert set(donations["periods"]) == {6}
    assert len(donations) == 22  # 1 + sum over x = 1..6 of (7 - x) possible patterns
    assert donations.iloc[0].tolist() == [0, 0, 6, 3_464]
    assert (donations["frequency"] <= donations["recency"]).all()


def test_published_bgbb_fit_has_the_published_log_likelihood(donations: pd.DataFrame) -> None:
    """FHS 2010: α = 1.204, β = 0.750, γ = 0.657, δ = 2.783; LL ≈ −33,225.6."""
    alpha, beta, gamma, delta = 1.204, 0.750, 0.657, 2.783
    x, tx, n, w = (donations[c].to_numpy(dtype=float) for c in donations.columns)
    alive = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)
    terms = [alive]
    for i in range(int(n.max())):
        ok = i <= n - tx - 1
        terms.append(
            np.where(
                ok,
                betaln(alpha + x, beta + tx - x + i) + betaln(gamma + 1, delta + tx + i),
                -np.inf,
            )
        )
    ll_each = np.logaddexp.reduce(np.vstack(terms), axis=0)
    ll_each -= betaln(alpha, beta) + betaln(gamma, delta)
    assert float(np.sum(w * ll_each)) == pytest.approx(-33_225.6, abs=0.05)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "frequency,recency,periods,weights\n0,0,6,10\n2,1,6,5\n",
            r"line 3: frequency is greater than recency",
        ),
        (
            "frequency,recency,periods,weights\n1,7,6,5\n",
            r"line 2: recency is greater than periods",
        ),
        ("frequency,recency,periods,weights\n0,3,6,5\n", r"line 2: recency must be 0"),
        (
            "frequency,recency,periods,weights\n0,0,6,10\n1,1,6,-4\n",
            r"line 3, field 'weights': '-4'",
        ),
        ("frequency,recency,periods,weights\n1,1.5,6,4\n", r"line 2, field 'recency': '1.5'"),
        ("frequency,recency,periods,weights\n1,1,6\n", r"line 2, field 'weights': ''"),
        ("frequency,recency,weights\n1,1,6\n", r"missing column\(s\) periods"),
        ("", r"not a readable CSV"),
    ],
)
def test_malformed_file_raises(tmp_path: Path, body: str, match: str) -> None:
    bad = tmp_path / "donations.csv"
    bad.write_text(body)
    with pytest.raises(InvalidInput, match=match) as info:
        load_donations(bad)
    assert str(bad) in str(info.value)
