"""The exposure log's per-experiment summary on hand-made exposures."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import pyarrow as pa

from liucun.experiments import experiment_summary


def _day(d: int) -> datetime:
    return datetime(2026, 6, d, 9, tzinfo=UTC)


def test_summary_counts_units_variants_and_repeats() -> None:
    rows = [
        ("cmp-a", "user", "u1", "control", _day(1)),
        ("cmp-a", "user", "u1", "control", _day(3)),  # a repeat exposure of u1
        ("cmp-a", "user", "u2", "coupon", _day(2)),
        ("cmp-a", "user", "u3", "coupon", _day(2)),
        ("cmp-b", "account", "acme", "treatment", _day(5)),
        ("cmp-b", "account", "beta", "holdout", _day(4)),
        ("cmp-b", "account", "gamma", "other", _day(6)),
    ]
    names = ["experiment", "unit_type", "unit_id", "variant", "ts"]
    table = pa.table(list(zip(*rows, strict=True)), names=names)
    got = experiment_summary(ibis.memtable(table)).to_pyarrow().to_pylist()
    assert [
        (r["experiment"], r["unit_type"], r["units"], r["variants"], r["exposures"]) for r in got
    ] == [("cmp-b", "account", 3, 3, 3), ("cmp-a", "user", 3, 2, 4)]  # latest first
    assert got[1]["first_exposure"] == _day(1) and got[1]["last_exposure"] == _day(3)
    assert got[0]["last_exposure"] == _day(6)
