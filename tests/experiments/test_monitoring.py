"""The daily monitoring path equals the tests recomputed from the units whose outcome
window had closed by each look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.experiments import Metric, monitoring_path
from liucun.experiments.stats import CupedStat, cuped_ttest, sequential_test

START = datetime(2026, 1, 1, 8, tzinfo=UTC)
METRIC = Metric("orders", "orders", covariate="pre_orders")


@pytest.fixture
def outcomes() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3_000
    df = pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(n)],
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "exposed_at": [START + timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 20, n)],
            "pre_orders": rng.poisson(1.0, n).astype(float),
        }
    )
    df["orders"] = rng.poisson(0.5 + 0.3 * df.pre_orders).astype(float)
    df["exposed_at"] = pd.to_datetime(df.exposed_at, utc=True)
    return df


def test_each_look_is_the_test_on_the_closed_windows(outcomes: pd.DataFrame) -> None:
    path = monitoring_path(
        ibis.memtable(outcomes), METRIC, control="control", treatment="treatment", window_days=7
    ).to_pandas()
    closes = (outcomes.exposed_at + pd.Timedelta(days=7)).dt.floor("D").dt.date
    assert list(path.look) == sorted(set(closes))
    assert len(path) == 21  # exposures over 20 days (from 08:00): windows close on 21 days
    for i in (0, 5, 20):
        seen = outcomes[closes <= path.look[i]]
        c, t = (seen[seen.variant == v] for v in ("control", "treatment"))
        sc = CupedStat.from_values(c.orders.to_numpy(), c.pre_orders.to_numpy())
        st = CupedStat.from_values(t.orders.to_numpy(), t.pre_orders.to_numpy())
        seq, fixed = sequential_test(sc, st), cuped_ttest(sc, st)
        assert (path.n_control[i], path.n_treatment[i]) == (len(c), len(t))
        assert (path.ci_low[i], path.ci_high[i], path.p_value[i]) == pytest.approx(
            (seq.ci_low, seq.ci_high, seq.p_value), rel=1e-9
        )
        assert (path.fixed_ci_low[i], path.fixed_p_value[i]) == pytest.approx(
            (fixed.ci_low, fixed.p_value), rel=1e-9
        )
    # the always-valid interval is wider than the fixed one at every look
    assert ((path.ci_high - path.ci_low) > (path.fixed_ci_high - path.fixed_ci_low)).all()
    with pytest.raises(InvalidInput, match="no units in variant"):
        monitoring_path(
            ibis.memtable(outcomes), METRIC, control="control", treatment="b", window_days=7
        )
