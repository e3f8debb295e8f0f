"""The paid-membership option: a share of the repeat buyers buys the plan right after
their second order, and nothing else in the shop changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from liucun.core import ConfigError
from liucun.simulate import simulate_shop

COLUMNS = ["user_id", "event_type", "ts", "properties"]


def _events(path: Path) -> pd.DataFrame:
    return pq.read_table(path, columns=COLUMNS).to_pandas()


def test_repeat_buyers_join_right_after_their_second_order(tmp_path: Path) -> None:
    plain = simulate_shop(tmp_path / "plain", users=3000, days=365, seed=3)
    res = simulate_shop(tmp_path / "members", users=3000, days=365, seed=3, membership_share=0.3)
    events = _events(res.events_dir)
    truth = pq.read_table(res.truth_path).to_pandas().set_index("user_id")
    events["person"] = events.user_id.map(truth.canonical_user_id)
    bought = events[events.event_type == "membership_purchase"]
    assert set(bought.properties) == {'{"plan":"plus_yearly"}'}
    assert bought.person.is_unique  # one purchase per customer
    orders = events[events.event_type == "order"].sort_values("ts")
    # customers whose whole history is in the window: their second order is the window's
    users = pq.read_table(res.users_path).to_pandas().set_index("user_id")
    start = pd.Timestamp(res.start, tz="UTC")
    inside = set(users.index[users.signup_ts >= start + pd.Timedelta(days=2)])
    second = orders[orders.person.isin(inside)].groupby("person").ts.nth(1)
    second = orders.loc[second.index].set_index("person").ts
    mine = bought[bought.person.isin(inside)].set_index("person").ts
    assert len(second) > 300
    assert set(mine.index) <= set(second.index)
    delay = (mine - second.loc[mine.index]).dt.total_seconds()
    assert delay.between(863.9, 864.1).all()  # 0.01 day after the second order
    share = len(mine) / len(
        second[second < pd.Timestamp(res.end, tz="UTC") - pd.Timedelta(hours=1)]
    )
    assert share == pytest.approx(0.3, abs=0.05)
    # the option adds the purchases and changes nothing else
    before = _events(plain.events_dir).drop(columns="properties")
    after = events[events.event_type != "membership_purchase"].drop(
        columns=["properties", "person"]
    )
    key = ["user_id", "event_type", "ts"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )


def test_membership_share_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="membership_share must be a share between 0 and 1"):
        simulate_shop(tmp_path, users=10, days=60, membership_share=-0.1)
