"""RFM scores, the 11 segments and the 8-class model on five hand-made customers."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pytest

from liucun.core import ConfigError
from liucun.segments import SEGMENT_GRID, SEGMENTS, rfm

AS_OF = datetime(2024, 4, 1)


def _orders() -> ibis.Table:
    rows = [
        ("u1", "order", "2024-03-31", 100.0),
        ("u2", "order", "2024-03-20", 10.0),
        ("u2", "order", "2024-03-25", 10.0),
        ("u2", "order", "2024-03-30", 10.0),
        *[
            ("u3", "order", d, 100.0)
            for d in ("2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-02-01")
        ],
        ("u4", "order", "2023-06-01", 10.0),
        ("u5", "order", "2024-02-15", 25.0),
        ("u5", "order", "2024-03-01", 25.0),
        ("u1", "review", "2024-03-31", None),
        ("u1", "review", "2024-03-31", None),
        ("u3", "share", "2024-02-02", None),
        ("u9", "order", "2024-04-02", 99.0),  # after as_of: ignored
    ]
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts", "revenue"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    return ibis.memtable(df)


def test_scores_segments_and_classes() -> None:
    got = rfm(_orders(), as_of=AS_OF, social=True).execute().set_index("user_id").sort_index()
    assert list(got.index) == ["u1", "u2", "u3", "u4", "u5"]
    assert got.recency_days.round(6).tolist() == [1, 2, 60, 305, 31]
    assert got.r_score.tolist() == [5, 4, 2, 1, 3]
    assert got.f_score.tolist() == [1, 4, 5, 1, 3]  # u1 and u4 tie at F = 1: same score
    assert got.m_score.tolist() == [4, 2, 5, 1, 3]
    assert got.rfm_score.tolist() == ["514", "442", "255", "111", "333"]
    assert got.rfm_segment.tolist() == [
        "New Customers",
        "Loyal",
        "Can't Lose Them",
        "Lost",
        "Need Attention",
    ]
    assert got.rfm_class.tolist() == [
        "General development",
        "General value",
        "Important value",
        "General recall",
        "General development",
    ]
    assert got.rfm_class_zh["u3"] == "重要价值客户"
    assert got.social_actions.tolist() == [2, 0, 1, 0, 0]
    assert got.social_high.tolist() == [True, False, True, False, False]


def test_grid_covers_all_eleven_segments() -> None:
    assert {name for row in SEGMENT_GRID for name in row} == set(SEGMENTS)
    assert len(SEGMENTS) == 11


def test_scores_are_quintiles_on_a_larger_base() -> None:
    n = 1000
    df = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "event_type": "order",
            "ts": pd.Timestamp("2024-03-01", tz="UTC") - pd.to_timedelta(range(n), unit="h"),
            "revenue": [float(i % 97) for i in range(n)],
        }
    )
    got = rfm(ibis.memtable(df), as_of=AS_OF).execute()
    assert got.r_score.value_counts().sort_index().tolist() == [200] * 5  # distinct recencies
    assert got.f_score.unique().tolist() == [1]  # everyone bought once: one shared score


def test_bad_threshold() -> None:
    with pytest.raises(ConfigError, match="mean or median"):
        rfm(_orders(), as_of=AS_OF, threshold="mode")  # type: ignore[arg-type]
