"""The demo's four journeys (examples/journeys/) validate against a workspace holding a
simulated shop with the default loyalty program applied, and apply as drafts."""

from __future__ import annotations

from pathlib import Path

import pytest

from liucun.journeys import JourneyError, apply_journey, content_problems, load_journey
from liucun.journeys._spec import CouponNode
from liucun.loyalty import apply_program
from liucun.workspace import open_workspace

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples" / "journeys").glob("*.yaml"))
PROGRAM = ROOT / "examples" / "loyalty" / "program.yaml"


def test_there_are_the_four_demo_journeys() -> None:
    assert [p.stem for p in EXAMPLES] == [
        "b2b_replenishment",
        "inactive_push_coupon",
        "late_delivery",
        "winback_risk",
    ]


def test_examples_validate_against_the_simulated_shop(shop_copy: Path) -> None:
    with open_workspace(shop_copy) as ws:
        apply_program(ws, PROGRAM)
        specs = {p.stem: load_journey(p, ws=ws) for p in EXAMPLES}
        for path in EXAMPLES:
            applied = apply_journey(ws, path)
            assert (applied.version, applied.status, applied.warnings) == (1, "draft", ())
        for name, spec in specs.items():
            assert spec.name == name  # the file's name: is what the commands use
            assert spec.control.share == 0.1
            assert (spec.goal.event, spec.goal.window_days) == ("order", 14)
            assert spec.value.margin > 0 and spec.value.cost > 0
            assert content_problems(spec, ws.settings) == []
        offer = specs["winback_risk"].node("offer")
        assert isinstance(offer, CouponNode)
        assert (offer.choose, offer.policy) == (["recall_10", "frequent_buyer"], "uplift")
        assert specs["winback_risk"].trigger.type == "risk_crossed"
        assert specs["late_delivery"].trigger.type == "service_failure"
        assert specs["b2b_replenishment"].node("morning").until_time == "10:00"  # type: ignore[union-attr]
        # the coupon ids are checked against the program in force
        bad = EXAMPLES[1].read_text(encoding="utf-8").replace("recall_10", "recall_20")
        with pytest.raises(JourneyError, match=r"'recall_20' is not a coupon of the loyalty"):
            load_journey(bad, ws=ws)
