"""The seasonal-buyer option: once a year, in a short spell around the customer's own day."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from liucun.core import ConfigError
from liucun.simulate import simulate_shop


def test_seasonal_buyers_buy_around_their_own_day_each_year(tmp_path: Path) -> None:
    res = simulate_shop(tmp_path, users=1500, days=1000, seed=4, seasonal_share=0.25)
    truth = pq.read_table(res.truth_path).to_pandas()
    people = truth[~truth.is_duplicate & ~truth.never_buyer]
    share = people.seasonal.mean()
    assert share == pytest.approx(0.25, abs=0.04)
    assert people.season_day.notna().eq(people.seasonal).all()
    assert people.season_day.dropna().between(1, 366).all()
    orders = pq.read_table(res.events_dir, columns=["user_id", "event_type", "ts"]).to_pandas()
    orders = orders[orders.event_type == "order"]
    canon = truth.set_index("user_id").canonical_user_id
    orders["person"] = orders.user_id.map(canon)
    seasonal = people.set_index("user_id").season_day.dropna()
    mine = orders[orders.person.isin(seasonal.index)]
    assert mine.person.nunique() > 150
    day = mine.ts.dt.day_of_year.to_numpy()
    want = seasonal.loc[mine.person].to_numpy()
    apart = np.abs(day - want)
    apart = np.minimum(apart, 365 - apart)  # around the turn of the year
    # first order within 15 days of the day, up to 3 more 2–8 days apart (+1 for time zones)
    assert apart.max() <= 15 + 3 * 8 + 2
    # once a year: orders of one customer are either within a spell or a year apart
    for _, ts in mine.groupby("person").ts:
        gaps = np.diff(np.sort(ts.to_numpy())).astype("timedelta64[h]").astype(float) / 24
        assert ((gaps <= 25) | (gaps >= 300)).all()
    # the truth's expectations follow the seasons: 0 or 1 season in 90 days, 1 or 2 in a
    # year, each with 1 + E[min(Poisson(0.8), 3)] orders
    spell = 1 + sum(min(k, 3) * np.exp(-0.8) * 0.8**k / np.prod(range(1, k + 1)) for k in range(40))
    alive = people[people.seasonal & people.alive_at_end]
    assert set(np.round(alive.expected_orders_90d / spell, 9)) <= {0.0, 1.0}
    assert (alive.expected_orders_365d >= spell - 1e-9).mean() > 0.99  # a year is 365.25 d
    assert alive.purchase_rate.eq(1 / 365.25).all()


def test_seasonal_share_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seasonal_share must be a share between 0 and 1"):
        simulate_shop(tmp_path, users=10, days=60, seasonal_share=1.5)
