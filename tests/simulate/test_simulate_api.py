"""simulate_shop: arguments, files, schemas, determinism and invariants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import liucun.simulate
from liucun.core import ConfigError
from liucun.schema import MONETARY_EVENT_TYPES, STANDARD_EVENT_TYPES, arrow_schema
from liucun.simulate import PRESETS, TRUTH_SCHEMA, SimulationResult, simulate_shop

END = dt.date(2026, 9, 30)


def _files(res: SimulationResult) -> dict[str, bytes]:
    paths = [res.users_path, res.truth_path, *sorted(res.events_dir.glob("*.parquet"))]
    return {p.relative_to(res.out_dir).as_posix(): p.read_bytes() for p in paths}


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_public() -> None:
    assert liucun.simulate.__all__ == sorted(liucun.simulate.__all__, key=_isort_key)
    for name in ("PRESETS", "SimulationResult", "simulate_shop"):
        assert name in liucun.simulate.__all__
    assert set(PRESETS) == {"b2c", "b2b", "crossborder"}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    kwargs = {"users": 1_500, "days": 120, "seed": 3, "chunk_size": 600}
    a = simulate_shop(tmp_path / "a", **kwargs)
    b = simulate_shop(tmp_path / "b", **kwargs)
    files_a, files_b = _files(a), _files(b)
    assert list(files_a) == [
        "users.parquet",
        "truth.parquet",
        "events/part-00000.parquet",
        "events/part-00001.parquet",
        "events/part-00002.parquet",
    ]
    assert files_a == files_b
    assert a.n_events == b.n_events > 10_000


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = simulate_shop(tmp_path / "a", users=500, days=60, seed=1)
    b = simulate_shop(tmp_path / "b", users=500, days=60, seed=2)
    ta, tb = pq.read_table(a.truth_path), pq.read_table(b.truth_path)
    assert not np.allclose(ta["purchase_rate"].to_numpy(), tb["purchase_rate"].to_numpy())
    assert a.n_events != b.n_events


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    simulate_shop(tmp_path / "x", users=900, days=60, seed=5, chunk_size=300)
    again = simulate_shop(tmp_path / "x", users=400, days=60, seed=5, chunk_size=400)
    fresh = simulate_shop(tmp_path / "y", users=400, days=60, seed=5, chunk_size=400)
    assert sorted(p.name for p in again.events_dir.iterdir()) == ["part-00000.parquet"]
    assert _files(again) == _files(fresh)
    assert pq.read_table(again.users_path).num_rows == 400


def test_result_describes_the_run(tmp_path: Path) -> None:
    res = simulate_shop(
        tmp_path, preset="b2b", users=250, days=45, seed=9, end=dt.date(2025, 1, 15)
    )
    assert res.start == dt.date(2024, 12, 1)
    assert res.end == dt.date(2025, 1, 15)
    assert (res.preset, res.seed, res.n_users) == ("b2b", 9, 250)
    assert res.n_events == pq.read_table(res.events_dir).num_rows
    with pytest.raises(AttributeError):
        res.seed = 1  # type: ignore[misc]


def test_progress_is_reported_after_each_chunk(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    simulate_shop(
        tmp_path,
        users=1_050,
        days=30,
        chunk_size=500,
        on_progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(500, 1_050), (1_000, 1_050), (1_050, 1_050)]


def test_files_follow_the_canonical_schema(b2c) -> None:
    events = arrow_schema("events")
    expected = pa.schema([f for f in events if f.name not in ("ingested_at", "load_id")])
    assert b2c.events.schema.remove_metadata() == expected
    users = arrow_schema("users")
    expected_users = pa.schema(
        [f for f in users if f.name not in ("ingested_at", "load_id")]
        + [pa.field("email_hash", pa.string()), pa.field("loyalty_card", pa.string())]
    )
    assert b2c.users.schema.remove_metadata() == expected_users
    assert b2c.truth.schema.remove_metadata() == TRUTH_SCHEMA


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "b2x"}, "unknown preset 'b2x'; choose one of: b2b, b2c, crossborder"),
        ({"users": 0}, "users must be at least 1"),
        ({"users": 2.5}, "users must be a whole number"),
        ({"days": 29}, "days must be between 30 and 3650"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"chunk_size": 0}, "chunk_size must be at least 1"),
        ({"end": dt.datetime(2026, 9, 30)}, "end must be a datetime.date"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_shop(tmp_path, **kwargs)
    assert not (tmp_path / "users.parquet").exists()


def test_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file; pass a directory"):
        simulate_shop(target, users=10)


@settings(max_examples=12, deadline=None)
@given(
    preset=st.sampled_from(sorted(PRESETS)),
    users=st.integers(1, 80),
    days=st.integers(30, 200),
    seed=st.integers(0, 2**32),
    chunk_size=st.integers(1, 100),
    end=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)),
)
def test_invariants_hold_for_any_arguments(
    tmp_path_factory: pytest.TempPathFactory,
    preset: str,
    users: int,
    days: int,
    seed: int,
    chunk_size: int,
    end: dt.date,
) -> None:
    res = simulate_shop(
        tmp_path_factory.mktemp("h"),
        preset=preset,  # type: ignore[arg-type]
        users=users,
        days=days,
        seed=seed,
        chunk_size=chunk_size,
        end=end,
    )
    ev = pq.read_table(res.events_dir)
    us = pq.read_table(res.users_path)
    tr = pq.read_table(res.truth_path)
    assert us.num_rows == tr.num_rows == users
    assert us["user_id"].to_pylist() == tr["user_id"].to_pylist()
    assert pc.count_distinct(us["user_id"]).as_py() == users
    assert ev.num_rows == res.n_events
    if ev.num_rows == 0:
        return
    start_us = (res.start - dt.date(1970, 1, 1)).days * 86_400_000_000
    end_us = (end - dt.date(1970, 1, 1)).days * 86_400_000_000
    ts = ev["ts"].cast(pa.int64()).to_numpy()
    assert ts.min() >= start_us
    assert ts.max() < end_us
    assert us["signup_ts"].cast(pa.int64()).to_numpy().max() < end_us
    assert pc.count_distinct(ev["event_id"]).as_py() == ev.num_rows
    assert set(ev["event_type"].to_pylist()) <= set(STANDARD_EVENT_TYPES)
    assert (
        ev.filter(pc.and_(pc.is_null(ev["user_id"]), pc.is_null(ev["anonymous_id"]))).num_rows == 0
    )
    money = pc.is_in(ev["event_type"], pa.array(MONETARY_EVENT_TYPES))
    revenue = ev["revenue"].filter(money)
    assert revenue.null_count == 0
    assert pc.min(revenue).as_py() is None or pc.min(revenue).as_py() >= 0
    assert ev["revenue"].filter(pc.invert(money)).null_count == ev.num_rows - len(revenue)
