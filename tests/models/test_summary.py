"""Customer summaries from the warehouse reproduce the literature's CDNOW summary."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.datasets import cdnow_rft, load_cdnow
from liucun.ingest import ingest_tables
from liucun.models import customer_summary
from liucun.warehouse import resolved_events


@pytest.fixture(scope="module")
def cdnow_workspace(tmp_path_factory):  # type: ignore[no-untyped-def]
    from liucun.workspace import init_workspace

    data = load_cdnow()
    ws = init_workspace(tmp_path_factory.mktemp("cdnow") / "ws")
    ingest_tables(ws.warehouse, users=data.users, events=data.events, source="cdnow")
    yield ws, data
    ws.close()


def test_matches_the_published_cdnow_summary(cdnow_workspace) -> None:  # type: ignore[no-untyped-def]
    """Fader, Hardie & Lee (2005): 39-week calibration, weekly units, one purchase per day;
    2,457 calibration and 1,882 holdout repeat transactions (datasets/README.md)."""
    ws, data = cdnow_workspace
    wh = ws.warehouse
    events = resolved_events(wh.table("events"), wh.table("identities"))
    got = (
        customer_summary(events, calibration_end=date(1997, 9, 30), holdout_end=date(1998, 6, 30))
        .to_pandas()
        .set_index("user_id")
        .sort_index()
    )
    want = cdnow_rft(data).sort_index()
    assert len(got) == len(want) == 2357
    assert got.frequency.sum() == 2457
    assert got.holdout_frequency.sum() == 1882
    assert (got.frequency > 0).sum() == 946
    for col in ("frequency", "recency", "T", "monetary_value", "holdout_frequency"):
        np.testing.assert_allclose(
            got[col].to_numpy(dtype=float),
            want[col].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=col,
        )
    x = got.loc["00004"]
    assert (x.frequency, round(x.recency, 2), round(x["T"], 2)) == (2, 30.43, 38.86)


def test_per_order_counts_every_order_and_days_unit() -> None:
    import ibis

    ts = pd.to_datetime(
        ["2024-01-01 10:00", "2024-01-01 18:00", "2024-01-08 10:00", "2024-02-01 09:00"], utc=True
    )
    ev = ibis.memtable(
        pd.DataFrame(
            {
                "user_id": ["u", "u", "u", "u"],
                "event_type": ["order"] * 4,
                "ts": ts,
                "revenue": [10.0, 20.0, 30.0, 99.0],
            }
        )
    )
    per_day = (
        customer_summary(
            ev, calibration_end=date(2024, 1, 31), time_unit_days=1, holdout_end=date(2024, 2, 29)
        )
        .to_pandas()
        .iloc[0]
    )
    assert (per_day.frequency, per_day.recency, per_day["T"]) == (1, 7.0, 30.0)
    assert per_day.monetary_value == 30.0  # repeat day's value; the first day (10+20) excluded
    assert (per_day.holdout_frequency, per_day.holdout_value) == (1, 99.0)
    per_order = (
        customer_summary(ev, calibration_end=date(2024, 1, 31), time_unit_days=1, per_day=False)
        .to_pandas()
        .iloc[0]
    )
    assert per_order.frequency == 2
    assert per_order.recency == pytest.approx(7.0)
    assert per_order["T"] == pytest.approx(30 + 14 / 24)  # to the end of Jan 31
    assert per_order.monetary_value == pytest.approx(25.0)


def test_bad_split_is_a_config_error() -> None:
    import ibis

    ev = ibis.memtable(
        {
            "user_id": ["u"],
            "event_type": ["order"],
            "ts": [pd.Timestamp(0, tz="UTC")],
            "revenue": [1.0],
        }
    )
    with pytest.raises(ConfigError, match="must be after"):
        customer_summary(ev, calibration_end=date(2024, 1, 31), holdout_end=date(2024, 1, 1))
    with pytest.raises(ConfigError, match="time_unit_days"):
        customer_summary(ev, calibration_end=date(2024, 1, 31), time_unit_days=0)
