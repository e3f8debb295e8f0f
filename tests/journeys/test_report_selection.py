"""What the journey report compares, and between whom: only nodes whose arrivals are
settled at entry (past a wait_for, or past an action and a wait when the goal exits the
journey, who arrives depends on behaviour after entry, so the report gives no effect
there and says why); the customer as the unit (the arms are assigned per customer, so a
customer's enrolments add up to one unit); and the headline's summed interval."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from liucun.journeys._report import SELECTED, _node, selected_after_entry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"


def _example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))


def test_nodes_past_a_wait_for_are_selected() -> None:
    found = selected_after_entry(_example("winback_risk"))
    # offer → tell → wait_order → (done | valuable → call → done)
    assert set(found) == {"valuable", "call", "done"}
    assert "wait_for 'wait_order'" in found["valuable"] and "order" in found["valuable"]
    found = selected_after_entry(_example("inactive_push_coupon"))
    assert set(found) == {"coupon", "email", "done"}


def test_settled_at_entry_nodes_are_not() -> None:
    assert selected_after_entry(_example("late_delivery")) == {}
    found = selected_after_entry(_example("b2b_replenishment"))
    # a wait before any action, then a branch on attributes: every node compares
    assert found == {}


def _graph(*nodes: dict, exits: bool = True) -> dict:
    return {"goal": {"event": "order", "exit": exits}, "nodes": list(nodes)}


def test_an_action_then_a_wait_selects_only_when_the_goal_exits() -> None:
    nodes = (
        {"id": "push", "type": "message", "channel": "push", "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "3d", "next": "coupon"},
        {"id": "coupon", "type": "coupon", "coupon": "c", "next": "done"},
        {"id": "done", "type": "exit"},
    )
    found = selected_after_entry(_graph(*nodes))
    assert set(found) == {"coupon", "done"} and "converted" in found["coupon"]
    assert selected_after_entry(_graph(*nodes, exits=False)) == {}


def test_a_wait_before_any_action_and_splits_select_nothing() -> None:
    nodes = (
        {"id": "pause", "type": "wait", "duration": "3d", "next": "split"},
        {
            "id": "split",
            "type": "split",
            "variants": [{"name": "a", "share": 0.5, "next": "push"}],
            "holdout_next": "done",
        },
        {"id": "push", "type": "message", "channel": "push", "next": "done"},
        {"id": "done", "type": "exit"},
    )
    assert selected_after_entry(_graph(*nodes)) == {}


def test_a_cycle_terminates_and_start_is_honoured() -> None:
    nodes = (
        {"id": "loop", "type": "wait", "duration": "1d", "next": "ask"},
        {"id": "ask", "type": "message", "channel": "push", "next": "loop"},
    )
    found = selected_after_entry({"start": "ask", "goal": {}, "nodes": list(nodes)})
    # the second time round, both are reached after the action and a day's wait
    assert set(found) == {"ask", "loop"}
    assert selected_after_entry({"goal": {}, "nodes": []}) == {}


def test_a_selected_node_gives_no_effect_and_says_why() -> None:
    import pandas as pd

    rows = [
        {"id": i, "user_id": f"u{i}", "entered_at": pd.Timestamp("2026-01-01", tz="UTC"),
         "arm": "treatment" if i % 2 else "control", "converted": i % 3 == 0,
         "revenue": float(i % 7), "margin": float(i % 7) * 0.3, "cost": 0.5, "pre": 1.0,
         "day_1": 0.0}
        for i in range(200)
    ]  # fmt: skip
    outcome = pd.DataFrame(rows)
    steps = pd.DataFrame({"kind": [], "reason": [], "node": [], "enrolment_id": []})
    sent = pd.DataFrame({"node": []})
    args = ("n", "branch", set(range(200)), outcome, steps, sent, (0.3, 0.05, 1))
    free = _node(*args)
    assert free.effects["margin"].estimate is not None and free.note is None
    kept = _node(*args, "it follows wait_for 'w': who reaches it depends on order")
    assert all(e.estimate is None and e.ci_low is None for e in kept.effects.values())
    assert {e.reason for e in kept.effects.values()} == {SELECTED}
    assert kept.roi.reason == SELECTED and kept.payback_days is None
    why = "it follows wait_for 'w': who reaches it depends on order"
    assert kept.note == f"No comparison of the arms here: {why}."
    assert (kept.entered, kept.converted) == (free.entered, free.converted)
    from liucun.journeys._report import JourneyReport
    from liucun.reports._journeys import _warnings

    report = JourneyReport(
        "j", 1, None, "order", 14, 0.3, 0.5, 0.05, {"treatment": 100, "control": 100}, 0,
        [free, replace(kept, node="later")],
    )  # fmt: skip
    said = [w for w in _warnings(report) if "no comparison" in w]
    assert said and said[0].startswith("j: no comparison of the arms at later — ")


def test_the_headline_interval_adds_the_variances_of_the_journeys() -> None:
    from liucun.journeys._report import Effect
    from liucun.reports._journeys import summed_interval

    a = Effect(10.0, 7.0, 13.0, None, None, "ok")  # half width 3
    b = Effect(-4.0, -8.0, 0.0, None, None, "ok")  # half width 4
    assert summed_interval([a, b]) == (1.0, 11.0)  # 6 ± 5
    assert summed_interval([a]) == (7.0, 13.0)


def _enrolments(rows: list[tuple[str, str, str, float, float]]):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame(
        [
            {"id": i, "user_id": u, "arm": a, "entered_at": pd.Timestamp(t, tz="UTC"),
             "orders": r / 10, "converted": float(r > 0), "revenue": r, "sends": 1.0,
             "cost": 0.5, "margin": 0.3 * r - 0.5, "pre": pre, "day_1": r}
            for i, (u, a, t, r, pre) in enumerate(rows)
        ]
    )  # fmt: skip


def test_the_unit_is_the_customer_not_the_enrolment() -> None:
    from liucun.journeys._report import per_customer

    frame = _enrolments(
        [
            ("a", "treatment", "2026-01-05", 10.0, 4.0),
            ("a", "treatment", "2026-01-01", 20.0, 1.0),  # a's first entry: its pre counts
            ("b", "treatment", "2026-01-02", 0.0, 0.0),
            ("c", "control", "2026-01-03", 5.0, 2.0),
        ]
    )
    units = per_customer(frame)
    t = units["treatment"].set_index("user_id")
    assert list(t.index) == ["a", "b"] and list(units["control"]["user_id"]) == ["c"]
    assert t.loc["a", "revenue"] == 30.0 and t.loc["a", "sends"] == 2.0
    assert t.loc["a", "converted"] == 2.0 and t.loc["a", "pre"] == 1.0
    assert t.loc["a", "margin"] == 0.3 * 30 - 1.0 and t.loc["a", "day_1"] == 30.0


def test_many_enrolments_of_few_customers_are_too_few_units() -> None:
    import pandas as pd

    # 80 enrolments per arm, but from 20 customers each: fewer than 30 units per arm
    rows = [
        (f"{arm[0]}{i % 20}", arm, f"2026-01-{1 + i // 20:02d}", float(i % 5), 1.0)
        for arm in ("treatment", "control")
        for i in range(80)
    ]
    frame = _enrolments(rows)
    steps = pd.DataFrame({"kind": [], "reason": [], "node": [], "enrolment_id": []})
    node = _node(
        "n", "wait", set(frame["id"]), frame, steps, pd.DataFrame({"node": []}), (0.3, 0.05, 1)
    )
    assert node.entered_by_arm == {"treatment": 80, "control": 80}
    assert node.customers_by_arm == {"treatment": 20, "control": 20}
    assert node.effects["margin"].reason == "too_few_units"
    assert "20 treatment and 20 control customers" in (node.note or "")
