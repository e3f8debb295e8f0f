"""Golden output of small simulations: refactoring the simulator must not change a byte.

The digests were taken before the simulator's long functions were split into steps
(issue 9). They hash the *content* of the tables (every value of every column, in
order), not the Parquet bytes, so a pyarrow upgrade that changes the file layout does not
break them — any change in a random draw, its order, or a formula does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from liucun.simulate import simulate_shop


def _digest(table: pa.Table) -> str:
    payload = json.dumps(
        {"schema": str(table.schema), "columns": table.to_pydict()}, default=str, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


CASES = {
    # preset, users, days, seed, chunk_size
    "b2c": ("b2c", 1_200, 120, 11, 500),
    "b2b": ("b2b", 900, 90, 5, 400),
    "crossborder": ("crossborder", 900, 200, 2, 1_000),
}
#: n_events and the digests of users, events and truth.
GOLDEN: dict[str, tuple[int, str, str, str]] = {
    "b2b": (8446, "30120ad1cc0c2624", "d0b7f6cb6fd227b5", "e1e412da10c4653f"),
    "b2c": (16345, "7e76be3ab9104280", "03d100103dbf3339", "701ca773c78d31ab"),
    "crossborder": (14446, "7f66d437d425c1a3", "8a8d2b7f7f26b534", "617a0c6222e64ffc"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_simulation_output_is_pinned(tmp_path: Path, name: str) -> None:
    preset, users, days, seed, chunk = CASES[name]
    res = simulate_shop(
        tmp_path, preset=preset, users=users, days=days, seed=seed, chunk_size=chunk
    )
    events = pq.read_table(res.events_dir)
    truth = pq.read_table(res.truth_path)
    # the seasonal-buyer columns came later (issue 10, off by default): without seasonal
    # buyers they are all false / null and everything else is unchanged to the byte
    assert not pc.any(truth["seasonal"]).as_py()
    assert truth["season_day"].null_count == truth.num_rows
    got = (
        res.n_events,
        _digest(pq.read_table(res.users_path)),
        _digest(events),
        _digest(truth.drop_columns(["seasonal", "season_day"])),
    )
    assert got == GOLDEN[name]
