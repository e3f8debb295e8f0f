"""The canonical schema is documented and self-consistent."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from liucun.schema import EVENT_TYPE_GROUPS, STANDARD_EVENT_TYPES, TABLES, arrow_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def test_every_user_facing_column_and_event_type_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for table in ("events", "users"):
        for column in TABLES[table]:
            assert f"`{column.name}`" in text, f"{table}.{column.name} is not in {DOC.name}"
    for kind in STANDARD_EVENT_TYPES:
        assert f"`{kind}`" in text, kind


def test_event_types_cover_the_journey() -> None:
    assert set(EVENT_TYPE_GROUPS) == {
        "commerce",
        "service",
        "engagement",
        "social",
        "loyalty",
        "liucun",
    }
    assert len(STANDARD_EVENT_TYPES) == len(set(STANDARD_EVENT_TYPES)) == 40
    assert {"order", "refund", "delivery", "nps_response", "coupon_redeemed"} <= set(
        STANDARD_EVENT_TYPES
    )


def test_timestamps_are_utc_and_money_is_float() -> None:
    events = arrow_schema("events")
    assert events.field("ts").type == pa.timestamp("us", tz="UTC")
    assert events.field("revenue").type == pa.float64()
    assert all(f.type != pa.timestamp("us") for t in TABLES for f in arrow_schema(t))
