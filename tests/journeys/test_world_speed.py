"""The responding world is fast enough for the demo: 50,000 customers × 60 days (with a
treatment for a tenth of them) in well under a minute, warehouse ingest included."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from world_support import SHOP_END, buyers, enrol, make_shop

from liucun.simulate import responsive_world
from liucun.workspace import open_workspace


@pytest.mark.slow
def test_fifty_thousand_customers_for_sixty_days(tmp_path: Path) -> None:
    shop = make_shop(tmp_path, users=50_000, days=60, seed=3)
    with open_workspace(shop.ws_dir) as ws:
        enrol(ws, "speed", buyers(ws)[::10], control_share=0.1)
        world = responsive_world(shop.sim_dir, seed=1)
        started = time.perf_counter()
        added = world.advance(ws, SHOP_END + timedelta(days=60))
        seconds = time.perf_counter() - started
        truth = world.truth("speed", ws=ws)
    assert added > 20_000
    assert truth.num_rows > 0
    assert seconds < 30, f"60 days of 50,000 customers took {seconds:.1f} s"
