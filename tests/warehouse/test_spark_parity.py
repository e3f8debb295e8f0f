"""The same input ingested into DuckDB and into the Parquet/Spark store gives the same tables.

Runs in CI (the `spark` extra and Java 17 are there); locally it skips without them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from liucun.ingest import IngestOptions, ingest_events, ingest_users
from liucun.schema import column_names
from liucun.warehouse import resolved_events
from liucun.workspace import init_workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
VOLATILE = {"ingested_at", "load_id", "quarantined_at", "started_at", "finished_at", "sources"}


def _inputs(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users.csv"
    users.write_text(
        "user_id,signup_ts,country,email,birthday,acquisition_cost,tier\n"
        "u1,2026-01-02 08:00,CN,a@x.com,1990-01-01,12.5,gold\n"
        "u2,2026-01-03,DE,A@X.com ,,3,\n"
        "u3,not-a-date,US,,,,\n",
        encoding="utf-8",
    )
    events = folder / "events.csv"
    events.write_text(
        "user_id,anonymous_id,event_type,ts,revenue,currency,channel,coupon\n"
        ",anon-9,visit,2026-05-01T08:00:00+08:00,,,web,\n"
        "u3,anon-9,view,2026-05-01T09:00:00Z,,,web,\n"
        "u1,,order,2026-05-02,19.9,CNY,app,SPRING\n"
        "u2,,order,2026-05-03,5,CNY,app,\n"
        "u2,,order,2026-05-03,5,CNY,app,\n"
        "u2,,refund,2026-05-04,-5,CNY,app,\n"
        "u9,,teleport,2026-05-04,,,app,\n",
        encoding="utf-8",
    )
    return users, events


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()
    if hasattr(value, "__len__") and not isinstance(value, str):
        return str(list(value))  # type: ignore[call-overload]
    return str(value)


def _snapshot(ws) -> dict[str, pd.DataFrame]:  # type: ignore[no-untyped-def]
    wh = ws.warehouse
    out = {}
    for name in ("events", "users", "identities", "identity_links", "quarantine", "loads"):
        cols = [c for c in column_names(name) if c not in VOLATILE]
        frame = wh.table(name).select(*cols).to_pandas()
        for col in frame.columns:  # compare as text; Spark hands back UTC instants as naive
            frame[col] = frame[col].map(_text)
        out[name] = frame.sort_values(cols).reset_index(drop=True)
    resolved = resolved_events(wh.table("events"), wh.table("identities"))
    out["resolved"] = (
        resolved.select("event_id", "user_id")
        .to_pandas()
        .sort_values("event_id")
        .reset_index(drop=True)
    )
    return out


def test_duckdb_and_spark_hold_identical_tables(tmp_path: Path, spark_available: bool) -> None:
    users, events = _inputs(tmp_path / "in")
    snaps = {}
    for url in ("duckdb", "pyspark"):
        with init_workspace(tmp_path / url, warehouse_url=url) as ws:
            # one key for both stores, so the e-mail hashes (identities) compare equal
            opts = IngestOptions(now=NOW, hash_key=b"parity-test-key-" * 2)
            ru = ingest_users(ws.warehouse, [users], opts)
            re_ = ingest_events(ws.warehouse, [events], IngestOptions(now=NOW))
            again = ingest_events(ws.warehouse, [events], IngestOptions(now=NOW))
            assert (ru.accepted, ru.quarantined) == (2, 1)
            assert (re_.rows_read, re_.accepted, re_.duplicates, re_.quarantined) == (7, 4, 1, 2)
            assert (again.accepted, again.duplicates) == (0, 5)
            assert ws.warehouse.backend_name == url
            snaps[url] = _snapshot(ws)
    for name, frame in snaps["duckdb"].items():
        pd.testing.assert_frame_equal(frame, snaps["pyspark"][name], obj=name)
    assert set(snaps["duckdb"]["resolved"].user_id) == {"u1", "u3"}
