"""The world and the journey report on SQLite and PostgreSQL state: the sent outbox rows
are read as treatments and the per-node counts come out the same on both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from world_support import SHOP_END, buyers, enrol, make_shop, suppress

from liucun.journeys import journey_report
from liucun.simulate import responsive_world
from liucun.workspace import open_workspace


def test_world_and_report_on_both_backends(tmp_path: Path, state_url: str) -> None:
    shop = make_shop(tmp_path, users=1_500, days=120, seed=8, state_url=state_url)
    with open_workspace(shop.ws_dir) as ws:
        users = buyers(ws)
        sizes = enrol(ws, "both", users, control_share=0.3, second_share=1.0)
        suppress(ws, "both", "remind", users[:40], "frequency_cap")
        world = responsive_world(shop.sim_dir, seed=1, strengths={"coupon": 2.0})
        assert world.advance(ws, SHOP_END + timedelta(days=20)) > 0
        assert set(world.worlds) == {"action", "none", "without:both"}
        report = journey_report(ws, "both", truth="auto")
        truth = world.truth("both", ws=ws)
        assert ws.state.backend == ("sqlite" if state_url.startswith("sqlite") else "postgresql")
    offer, remind = report.nodes[0], report.nodes[1]
    assert offer.entered_by_arm == sizes and offer.sent == sizes["treatment"]
    suppressed_treated = remind.suppressed.get("frequency_cap", 0)
    assert 0 < suppressed_treated <= 40
    assert remind.sent == sizes["treatment"] - suppressed_treated
    assert truth.num_rows == sizes["treatment"]  # every treated customer, once
    assert offer.true_incremental_margin is not None
