"""One test body runs the retention set on DuckDB and on PySpark and compares exactly.

Runs in CI (the `spark` extra and Java 17); locally it skips without them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from liucun.ingest import ingest_events, ingest_users
from liucun.metrics import (
    active_users,
    churn_rate,
    day_n_retention,
    funnel,
    lifecycle,
    ltv_cac,
    order_value,
    parse_brackets,
    repurchase_rate,
    retention,
    stickiness,
    time_to_second_order,
)
from liucun.models.drivers import survival_dataset
from liucun.segments import customer_tags, lifecycle_stages, rfm, stage_transitions
from liucun.simulate import simulate_shop
from liucun.warehouse import resolved_events
from liucun.workspace import init_workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]
AS_OF = datetime(2026, 9, 30)
CASES = {
    "weekly": {"period": "week", "max_period": 6},
    "monthly-unbounded": {"period": "month", "kind": "unbounded", "max_period": 3},
    "daily-bracketed": {
        "period": "day",
        "kind": "bracketed",
        "brackets": parse_brackets("D1=1,D2-7=2-7,D8-30=8-30"),
    },
    "recurring-sunday": {
        "period": "week",
        "cohort_type": "recurring",
        "week_start": 6,
        "max_period": 4,
    },
    "visit-to-order": {"cohort_event": "visit", "return_event": "order", "max_period": 4},
    "by-channel": {"breakdown": "channel", "max_period": 3},
    "by-acquisition": {"breakdown": "acquisition_channel", "max_period": 3},
    "accounts": {"entity": "account", "max_period": 3},
    "rolling-days": {"period": "day", "rolling": True, "max_period": 7},
    "shanghai-days": {"period": "day", "timezone": "Asia/Shanghai", "max_period": 7},
    "berlin-weeks": {"period": "week", "timezone": "Europe/Berlin", "max_period": 4},
}


def _frames(ws) -> dict[str, pd.DataFrame]:  # type: ignore[no-untyped-def]
    wh = ws.warehouse
    events = resolved_events(wh.table("events"), wh.table("identities"))
    out = {}
    for name, options in CASES.items():
        table = retention(events, users=wh.table("users"), as_of=AS_OF, **options)
        frame = table.to_pandas()
        frame["cohort"] = pd.to_datetime(frame.cohort).dt.date.astype(str)
        keys = [c for c in ("cohort", "breakdown", "period") if c in frame.columns]
        out[name] = frame.astype({"period": str}).sort_values(keys).reset_index(drop=True)
    d = day_n_retention(events, as_of=AS_OF).to_pandas()
    out["d1-d7-d30"] = d.sort_values("period").reset_index(drop=True)
    others = {
        "wau": active_users(events, period="week"),
        "stickiness": stickiness(events),
        "lifecycle": lifecycle(events, period="week"),
        "funnel": funnel(events, ["visit", "view", "add_to_cart", "order"]),
        "repurchase": repurchase_rate(events),
        "churn": churn_rate(events, cutoff=datetime(2026, 8, 1), lookback_days=60, horizon_days=30),
        "order-value": order_value(events),
        "time-to-second": time_to_second_order(events),
        "ltv-cac": ltv_cac(events, wh.table("users")),
        "rfm": rfm(events, as_of=AS_OF, social=True),
        "stages": lifecycle_stages(events, as_of=AS_OF, users=wh.table("users")),
        "tags": customer_tags(events, as_of=AS_OF),
        "survival": survival_dataset(events, wh.table("users"), end=AS_OF),
        "transitions": stage_transitions(
            events, start=datetime(2026, 8, 1), end=AS_OF, users=wh.table("users")
        ),
    }
    for name, expr in others.items():
        frame = expr.to_pandas()
        for col in frame.columns:
            if "period_start" in col or col == "month":
                frame[col] = pd.to_datetime(frame[col]).dt.tz_localize(None)
        out[name] = frame.sort_values(list(frame.columns[:1])).reset_index(drop=True)
    return out


def test_retention_is_identical_on_duckdb_and_spark(tmp_path: Path, spark_available: bool) -> None:
    sim = simulate_shop(tmp_path / "sim", preset="b2b", users=400, days=120, seed=5)
    results = {}
    for url in ("duckdb", "pyspark"):
        with init_workspace(tmp_path / url, warehouse_url=url) as ws:
            ingest_users(ws.warehouse, [sim.users_path])
            ingest_events(ws.warehouse, [sim.events_dir])
            results[url] = _frames(ws)
    for name, frame in results["duckdb"].items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(frame, results["pyspark"][name], obj=name, check_dtype=False)


def test_money_conversion_is_identical_on_duckdb_and_spark(
    tmp_path: Path, spark_available: bool
) -> None:
    """convert_money joins an in-memory rates table to the warehouse's events: the same
    converted amounts (and the same AOV) on both backends, by hand in CNY."""
    from liucun.ingest import load_fx_rates
    from liucun.metrics import convert_money
    from test_cli_money import ORDERS, RATES, TOTAL_CNY

    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "fx.csv").write_text(RATES)
    results = {}
    for url in ("duckdb", "pyspark"):
        with init_workspace(tmp_path / url, warehouse_url=url) as ws:
            ingest_events(ws.warehouse, [tmp_path / "orders.csv"])
            load_fx_rates(ws.warehouse, tmp_path / "fx.csv", quote="CNY")
            events = convert_money(
                ws.warehouse.table("events"),
                ws.warehouse.table("fx_rates"),
                currency="CNY",
                timezone="Asia/Shanghai",
            )
            orders = events.filter(events.event_type == "order")
            frame = orders.select("user_id", "revenue", "fx_rate", "original_currency")
            results[url] = frame.to_pandas().sort_values(["user_id", "revenue"])
            aov = order_value(events).to_pandas()
            results[url + "-aov"] = aov.reset_index(drop=True)
    assert sorted(results["duckdb"].revenue) == pytest.approx(sorted([70, 144, 100, 390, 78]))
    assert results["duckdb"].revenue.sum() == pytest.approx(TOTAL_CNY)
    pd.testing.assert_frame_equal(
        results["duckdb"].reset_index(drop=True),
        results["pyspark"].reset_index(drop=True),
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(results["duckdb-aov"], results["pyspark-aov"], check_dtype=False)
