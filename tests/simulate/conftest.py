"""Shared simulated shops: each preset is simulated once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from liucun.simulate import SimulationResult, simulate_shop


@dataclass(frozen=True)
class Shop:
    result: SimulationResult
    users: pa.Table
    events: pa.Table
    truth: pa.Table

    def of_type(self, event_type: str) -> pa.Table:
        return self.events.filter(pc.equal(self.events["event_type"], event_type))


def _shop(root: Path, preset: str, users: int, seed: int) -> Shop:
    res = simulate_shop(root / preset, preset=preset, users=users, seed=seed, chunk_size=10_000)
    return Shop(
        result=res,
        users=pq.read_table(res.users_path),
        events=pq.read_table(res.events_dir),
        truth=pq.read_table(res.truth_path),
    )


@pytest.fixture(scope="session")
def b2c(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _shop(tmp_path_factory.mktemp("shops"), "b2c", 30_000, 7)


@pytest.fixture(scope="session")
def b2b(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _shop(tmp_path_factory.mktemp("shops"), "b2b", 5_000, 7)


@pytest.fixture(scope="session")
def crossborder(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _shop(tmp_path_factory.mktemp("shops"), "crossborder", 6_000, 7)
