"""The report takes "now" from the workspace clock and "as of" from the data end."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from liucun.core import SimulatedClock
from liucun.ingest import ingest_tables
from liucun.reports import build_report
from liucun.workspace import init_workspace


def _events() -> pa.Table:
    df = pd.DataFrame(
        [
            ("u1", "order", "2024-01-01 10:00"),
            ("u1", "order", "2024-01-09 08:00"),
            ("u2", "order", "2024-01-03 09:00"),
            ("u2", "order", "2024-01-31 23:30"),  # the last event: data end is 1 Feb 00:00
        ],
        columns=["user_id", "event_type", "ts"],
    )
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["revenue"], df["currency"] = 10.0, "USD"
    return pa.Table.from_pandas(df, preserve_index=False)


def test_generated_at_is_the_clock_and_as_of_the_data_end(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    with init_workspace(tmp_path / "ws", clock=clock) as ws:
        ingest_tables(ws.warehouse, events=_events())
        html = build_report(ws, tmp_path / "a.html", sections=()).read_text(encoding="utf-8")
        naive = build_report(ws, tmp_path / "b.html", as_of=datetime(2024, 2, 1), sections=())
        aware = build_report(
            ws, tmp_path / "c.html", as_of=datetime(2024, 2, 1, tzinfo=UTC), sections=()
        )
    assert "on 2031-05-06 07:08 UTC" in html
    assert re.search(r"As of 2024-02-01 00:00 \(UTC reporting time zone\)", html)
    # the default is the data end, and a naive as_of is read as UTC
    assert naive.read_text(encoding="utf-8") == html
    assert aware.read_text(encoding="utf-8") == html
