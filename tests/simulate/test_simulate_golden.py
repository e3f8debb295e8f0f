"""Golden output of small simulations: refactoring the simulator must not change a byte.

The digests were taken before the simulator's long functions were split into steps
(issue 9). They hash the *content* of the tables (every value of every column, in
order), not the Parquet bytes, so a pyarrow upgrade that changes the file layout does not
break them — any change in a random draw, its order, or a formula does. Floats are hashed
to 9 significant digits, so a library upgrade's last-bit changes do not break them either
(re-pinned on 2026-12-03 after checking that the simulator of 3de6ebd gives the same
tables as today's under numpy 2.4.6 / scipy 1.17.1).
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
    # Floats to 9 significant digits: a NumPy/SciPy upgrade moves the last bits of exp/log
    # (seen with numpy 2.4), a change in a draw or a formula moves far more.
    columns = {
        name: [f"{v:.9g}" if isinstance(v, float) else v for v in values]
        for name, values in table.to_pydict().items()
    }
    payload = json.dumps(
        {"schema": str(table.schema), "columns": columns}, default=str, sort_keys=True
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
    "b2b": (8446, "9196f31c0a3faf69", "b555221e59acc87b", "f8db2e83cd478de8"),
    "b2c": (16345, "12ee99f5108b8817", "82cb165e6c900623", "a4e6eae915c72ed3"),
    "crossborder": (14446, "493fced93a465b3e", "c457dcb3146174a2", "cf1cee3396999b3c"),
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
