"""Period helpers: the Ibis "data end" agrees with liucun.core.data_end."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import data_end, naive_utc
from liucun.metrics._periods import data_end as data_end_expr

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=40, deadline=None)
@given(st.lists(instants, min_size=1, max_size=5))
def test_data_end_expression_is_core_data_end(stamps: list[datetime]) -> None:
    events = ibis.memtable(pd.DataFrame({"ts": pd.to_datetime(stamps, utc=True)}))
    got = data_end_expr(events.ts).execute()
    assert pd.Timestamp(got).to_pydatetime() == naive_utc(data_end(max(stamps)))


def test_data_end_of_a_last_event_at_midnight_is_the_next_midnight() -> None:
    events = ibis.memtable(pd.DataFrame({"ts": pd.to_datetime(["2024-01-31 00:00"], utc=True)}))
    assert pd.Timestamp(data_end_expr(events.ts).execute()) == pd.Timestamp("2024-02-01")
