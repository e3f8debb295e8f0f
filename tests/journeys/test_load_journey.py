"""Journey files: every bad input of issue 12 is refused with its YAML path and the fix,
all problems at once; a valid file loads into the spec; filters, event types and the
loyalty program are checked against a workspace."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import ConfigError, InvalidInput
from liucun.journeys import (
    JourneyError,
    event_columns,
    journey_digest,
    load_journey,
    parse_journey,
    profile_columns,
)
from liucun.journeys._load import _cycles_without_wait
from liucun.workspace import Workspace

GOOD = textwrap.dedent(
    """\
    name: t
    trigger: {type: inactivity, days: 3}
    nodes:
      - id: push
        type: message
        channel: push
        template: {body: {en: "Hi {{ first_name }}", zh-CN: "你好"}}
        next: wait
      - {id: wait, type: wait_for, event: order, timeout: 4d, on_timeout: done}
      - {id: done, type: exit}
    """
)


def problems(text: str, ws: Workspace | None = None) -> list[str]:
    with pytest.raises(JourneyError) as info:
        load_journey(textwrap.dedent(text), ws=ws)
    assert str(info.value).startswith(f"the journey: {len(info.value.problems)} problem")
    return info.value.problems


def base(nodes: str, extra: str = "") -> str:
    return f"name: t\ntrigger: {{type: inactivity, days: 3}}\n{extra}nodes:\n{nodes}"


def test_a_good_file_loads() -> None:
    spec = load_journey(GOOD)
    assert (spec.name, spec.first, [n.id for n in spec.nodes]) == (
        "t",
        "push",
        ["push", "wait", "done"],
    )
    assert spec.control.share == 0.1 and spec.goal.event == "order"


def test_a_path_is_read_as_a_file(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_journey(path) == load_journey(str(path)) == load_journey(GOOD)
    with pytest.raises(ConfigError, match=r"missing\.yaml does not exist"):
        load_journey(tmp_path / "missing.yaml")


def test_unknown_node_type_lists_the_valid_ones() -> None:
    found = problems(base("  - {id: a, type: sleep, duration: 3d}\n"))
    assert found == [
        "nodes[0].type: 'sleep' is not a node type; use one of wait, wait_for, branch, split, "
        "adaptive_split, message, coupon, points, task, webhook, tag, tier_upgrade, exit"
    ]
    (near,) = problems(base("  - {id: a, type: wiat, duration: 3d}\n"))
    assert near.startswith("nodes[0].type: 'wiat' is not a node type; did you mean wait? (use one")


def test_unknown_trigger_type_and_keys_get_did_you_mean() -> None:
    found = problems(
        """\
        name: t
        trigger: {type: risk, threshold: 0.6}
        audiense: "orders > 1"
        nodes:
          - {id: a, type: wait, durtion: 3d}
        """
    )
    assert found[0].startswith("trigger.type: 'risk' is not a trigger type; use one of event,")
    assert "risk_crossed" in found[0]
    assert "audiense: unknown key; did you mean audience?" in found
    assert "nodes[0].durtion: unknown key; did you mean duration?" in found


def test_cycle_without_wait_is_named() -> None:
    found = problems(
        base(
            "  - {id: a, type: tag, tag: x, next: b}\n"
            "  - {id: b, type: branch, branches: [{when: 'orders > 1', next: a}], otherwise: c}\n"
            "  - {id: c, type: exit}\n"
        )
    )
    assert found == [
        "nodes: a → b → a has no wait; add a wait node (or a wait_for) to the cycle so a "
        "customer cannot loop without pause"
    ]
    # the same loop through a wait node is fine, a zero wait is not a wait
    load_journey(
        base(
            "  - {id: a, type: tag, tag: x, next: w}\n"
            "  - {id: w, type: wait, duration: 1d, next: b}\n"
            "  - {id: b, type: branch, branches: [{when: 'orders > 1', next: a}]}\n"
        )
    )
    (zero,) = problems(
        base(
            "  - {id: a, type: tag, tag: x, next: w}\n"
            "  - {id: w, type: wait, duration: 0, next: a}\n"
        )
    )
    assert zero.startswith("nodes: a → w → a has no wait")


def test_self_loop_and_two_cycles() -> None:
    graph = {"a": ["a"], "b": ["c"], "c": ["b", "d"], "d": []}
    assert _cycles_without_wait(graph, set(), order=["a", "b", "c", "d"]) == [["a"], ["b", "c"]]
    assert _cycles_without_wait(graph, {"c"}, order=["a", "b", "c", "d"]) == [["a"]]


def test_branch_on_unknown_field() -> None:
    (found,) = problems(
        base(
            "  - {id: b, type: branch, branches: [{when: 'churn_rsk > 0.5', next: e}]}\n"
            "  - {id: e, type: exit}\n"
        )
    )
    assert found.startswith(
        "nodes[0].branches[0].when: 'churn_rsk > 0.5' is not a valid profile filter: unknown "
        "field 'churn_rsk' at position 0; did you mean 'churn_risk'?"
    )
    assert found.endswith("; a tag is named tag_NAME")


def test_template_that_does_not_render() -> None:
    found = problems(
        base(
            "  - id: m\n    type: message\n    channel: sms\n"
            "    template: {body: {en: 'Hi {{ fist_name }}', zh-CN: '{% if %}'}}\n"
        )
    )
    assert found[0] == (
        "nodes[0].template.body.en: does not render for the test customer: 'fist_name' is "
        "undefined; did you mean first_name? (variables: first_name, coupon_code, coupon_value, "
        "unsubscribe_url, shop_name and the profile fields)"
    )
    assert found[1].startswith(
        "nodes[0].template.body.zh-CN: does not render for the test customer"
    )
    assert "template line 1" in found[1] and found[1].endswith("fix the Jinja syntax")


def test_trigger_on_unknown_event_type_needs_the_workspace(workspace: Workspace) -> None:
    text = GOOD.replace("{type: inactivity, days: 3}", "{type: event, event: ordr}")
    load_journey(text)  # without a workspace the event types are not known
    (found,) = problems(text, workspace)
    assert found == (
        "trigger.event: 'ordr' is not an event type of this workspace; did you mean order? use "
        "a standard type (order, visit, add_to_cart, delivery, …) or add it to [ingest] "
        "custom_event_types in liucun.toml"
    )
    goal = problems(GOOD + "goal: {event: purchase}\n", workspace)
    assert goal[0].startswith("goal.event: 'purchase' is not an event type of this workspace; use")


def test_custom_event_types_are_known(workspace: Workspace) -> None:
    ws = workspace
    ws.settings.ingest.custom_event_types.append("ordr")
    spec = load_journey(
        GOOD.replace("{type: inactivity, days: 3}", "{type: event, event: ordr}"), ws=ws
    )
    assert spec.trigger.type == "event" and spec.trigger.event == "ordr"


def test_links_ids_start_and_reachability() -> None:
    found = problems(
        """\
        name: t
        trigger: {type: inactivity, days: 3}
        start: strt
        nodes:
          - {id: a, type: tag, tag: x, next: bb}
          - {id: a, type: exit}
        """
    )
    assert found == [
        "nodes[1].id: 'a' is already the id of nodes[0]; node ids must be unique, rename one",
        "nodes[0].next: 'bb' is not a node id; use one of a",
        "start: 'strt' is not a node id; use one of a",
    ]
    (unreached,) = problems(base("  - {id: a, type: exit}\n  - {id: b, type: tag, tag: x}\n"))
    assert unreached == (
        "nodes[1]: node 'b' cannot be reached from the start node 'a'; link it from another "
        "node (next, a branch, a variant) or remove it"
    )


def test_node_settings() -> None:
    found = problems(
        base(
            "  - {id: w0, type: wait, next: w1}\n"
            "  - {id: w1, type: wait, duration: 1d, until_time: '10:00', next: w2}\n"
            "  - {id: w2, type: wait, until_property: birthday, until_time: '09:00', next: f}\n"
            "  - {id: f, type: wait_for, timeout: 2d, on_timeout: f2}\n"
            "  - {id: f2, type: wait_for, event: order, timeout: 1d, on_timeout: c}\n"
            "  - {id: c, type: coupon, choose: [recall_10], next: c2}\n"
            "  - {id: c2, type: coupon, coupon: recall_10, policy: uplift, next: c3}\n"
            "  - {id: c3, type: coupon}\n",
            "control: {share: 0}\nreentry: {mode: after}\n",
        )
    )
    assert found == [
        "nodes[0]: a wait needs how long: duration (e.g. 3d), until_time (local HH:MM, e.g. "
        "'10:00') or until_property (birthday, membership_renewal)",
        "nodes[1]: a wait takes one of duration, until_time, until_property (until_property may "
        "add until_time), not duration and until_time; keep one",
        "nodes[3]: a wait_for needs what to wait for: event (e.g. event: order) or filter (a "
        'profile filter, e.g. filter: "orders >= 2")',
        "nodes[5].policy: missing; choose needs policy: uplift to pick the offer",
        "nodes[6]: give coupon (one coupon) or choose with policy (the policy picks), not both",
        "nodes[7]: a coupon node needs coupon (a coupon id of the loyalty program) or choose: "
        "[ids…] with policy: uplift",
        "control.share: 0 leaves no control arm, so what the journey earns cannot be measured; "
        "use a share such as 0.1, or add allow_zero: true to run without one",
        "reentry.days: missing; mode 'after' needs days, e.g. {mode: after, days: 30}",
    ]


def test_wait_for_timeout_is_required_and_durations_are_checked() -> None:
    found = problems(
        base(
            "  - {id: f, type: wait_for, event: order, next: x}\n"
            "  - {id: w, type: wait, duration: soon}\n"
        )
    )
    assert found == [
        "nodes[0].timeout: missing; add it (how long to wait at most, e.g. timeout: 14d)",
        "nodes[0].next: unknown key; did you mean on_event?",
        "nodes[1].duration: \"soon\" is not valid: 'soon' is not a duration; write e.g. '3d', "
        "'12h' or '30m'",
    ]


def test_zero_control_is_allowed_when_said() -> None:
    spec = load_journey(GOOD + "control: {share: 0, allow_zero: true}\n")
    assert spec.control.share == 0


def test_every_problem_at_once() -> None:
    found = problems(
        base(
            "  - {id: a, type: message, channel: email, next: b,\n"
            "     template: {body: {en: 'no link {{ nme }}'}}}\n"
            "  - {id: b, type: branch, branches: [{when: 'x > 1', next: a}]}\n",
            "audience: 'tier = 1'\n",
        )
    )
    assert [p.split(":")[0] for p in found] == [
        "nodes",
        "nodes[0].template.subject",
        "audience",
        "nodes[1].branches[0].when",
        "nodes[0].template.body.en",
    ]


def test_the_file_must_be_a_mapping_and_yaml_errors_name_the_line() -> None:
    with pytest.raises(JourneyError, match="must be a mapping"):
        load_journey("- a\n- b\n")
    with pytest.raises(InvalidInput, match="line 2"):
        load_journey("name: t\nname: u\n")


def test_filters_name_tags_and_event_properties() -> None:
    spec = load_journey(
        GOOD.replace(
            "{type: inactivity, days: 3}",
            "{type: event, event: delivery, where: \"prop_late_days != '0' and channel == 'app'\"}",
        )
        + "audience: \"tag_vip is not null and tags != 'x' and clv_365d > 250 and p_alive < 0.5\"\n"
    )
    assert spec.audience is not None
    assert profile_columns(spec.audience)["tag_vip"] == "string"
    assert "tag_x" not in profile_columns(spec.audience)  # inside a string: not a field
    assert event_columns("prop_late_days != '0'")["prop_late_days"] == "string"
    (bad,) = problems(GOOD + "audience: \"chanel == 'app'\"\n")
    assert bad.startswith(
        "audience: \"chanel == 'app'\" is not a valid profile filter: unknown field"
    )


def test_loyalty_references_checked_against_the_program_in_force(tmp_path: Path) -> None:
    from liucun.loyalty import apply_program
    from liucun.workspace import init_workspace

    text = base(
        "  - {id: c, type: coupon, choose: [recall_10, recal_10], policy: uplift, next: t}\n"
        "  - {id: t, type: tier_upgrade, tier: 尊享x}\n"
    )
    with init_workspace(tmp_path / "ws") as ws:
        load_journey(text, ws=ws)  # no program applied: not checked
        apply_program(ws, Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml")
        found = problems(text, ws)
    assert found == [
        "nodes[0].choose[1]: 'recal_10' is not a coupon of the loyalty program in force; did "
        "you mean recall_10? (coupons: recall_10, birthday_coupon, frequent_buyer)",
        "nodes[1].tier: '尊享x' is not a tier of the loyalty program in force; did you mean 尊享? "
        "(tiers: 基础, 进阶, 尊享)",
    ]


_NODE_KEYS = ["id", "type", "channel", "template", "next"]


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(_NODE_KEYS), top=st.permutations(["name", "trigger", "nodes"]))
def test_digest_ignores_key_order(order: list[str], top: list[str]) -> None:
    node = {
        "id": "m",
        "type": "message",
        "channel": "sms",
        "template": {"body": {"en": "hi"}},
        "next": "e",
    }
    data = {
        "name": "t",
        "trigger": {"type": "inactivity", "days": 3},
        "nodes": [{k: node[k] for k in order}, {"id": "e", "type": "exit"}],
    }
    shuffled = {k: data[k] for k in top}
    assert journey_digest(parse_journey(shuffled)) == journey_digest(parse_journey(data))


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[2] / "examples" / "journeys").glob("*.yaml"))
)
def test_the_stored_canonical_json_reads_back_with_the_same_digest(path: Path) -> None:
    import json

    from liucun.journeys import canonical_json

    spec = load_journey(path)
    again = parse_journey(json.loads(canonical_json(spec)))
    assert again == spec and journey_digest(again) == journey_digest(spec)
