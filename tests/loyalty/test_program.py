"""The program file: the shipped example loads, errors name the key, the value and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from liucun.core import ConfigError, InvalidInput, YamlError, read_yaml
from liucun.loyalty._program import Program, ProgramError, load_program, parse_program

EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "currency": "CNY", **extra}


def problems(data: Any) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(data, source="p.yaml")
    return info.value.problems


def test_the_example_program_matches_the_seed_strategies() -> None:
    p = load_program(EXAMPLE)
    assert isinstance(p, Program)
    assert p.currency == "CNY"
    assert p.tier_names() == ["基础", "进阶", "尊享"]
    assert p.tier_policy.basis == "earned_growth"
    assert p.earning.first_order is not None and p.earning.first_order.growth == 100
    spend = p.earning.orders[0]
    assert (spend.points_per_unit, spend.growth_per_unit) == (1, 1)
    assert {b.event_type for b in p.earning.behaviours} >= {
        "review",
        "share",
        "referral",
        "check_in",
    }
    assert p.loss_aversion.silence_warning_days == 30
    assert p.loss_aversion.decay is not None
    assert (p.loss_aversion.decay.idle_months, p.loss_aversion.decay.share) == (1, 0.10)
    recall = p.loss_aversion.recall
    assert recall is not None and recall.coupon == "recall_10" and recall.tier_upgrade_months == 1
    shipping = next(b for b in p.benefits if b.id == "shipping_upgrade")
    assert shipping.points_cost == 300
    assert p.plans and p.plans[0].price == 99
    assert p.referral is not None and p.referral.referrer.points == 200
    assert p.points.pending.mode == "on_event" and p.points.pending.event_type == "delivery"


def test_digest_ignores_layout_and_order_but_not_content(tmp_path: Path) -> None:
    a = minimal(tiers=[{"name": "x", "threshold": 0}], points={"point_value": 0.02})
    b = {"points": {"point_value": 0.02}, "tiers": [{"threshold": 0, "name": "x"}], **minimal()}
    assert parse_program(a).digest == parse_program(b).digest
    # defaults written out give the same program
    c = copy.deepcopy(a)
    c["points"]["negative_balance"] = "forbid"
    assert parse_program(c).digest == parse_program(a).digest
    c["points"]["point_value"] = 0.03
    assert parse_program(c).digest != parse_program(a).digest
    # the file's comments and spacing do not count
    text = EXAMPLE.read_text(encoding="utf-8")
    other = tmp_path / "p.yaml"
    other.write_text("# a comment\n\n" + text.replace("  # ", "      # "), encoding="utf-8")
    assert load_program(other).digest == load_program(EXAMPLE).digest
    assert len(load_program(EXAMPLE).digest) == 64


def test_thresholds_must_increase() -> None:
    found = problems(
        minimal(
            tiers=[
                {"name": "基础", "threshold": 0},
                {"name": "进阶", "threshold": 1000},
                {"name": "尊享", "threshold": 500},
            ]
        )
    )
    assert found == ["tiers[2].threshold: 500 is below tiers[1]'s 1000; thresholds must increase"]


def test_the_first_tier_starts_at_zero() -> None:
    found = problems(minimal(tiers=[{"name": "a", "threshold": 10}]))
    assert found == [
        "tiers[0].threshold: 10 leaves new members without a tier; the first tier's "
        "threshold must be 0"
    ]


def test_unknown_keys_get_a_did_you_mean_at_any_depth() -> None:
    found = problems(
        minimal(
            tier=[],
            points={"validty": {"amount": 1, "unit": "months"}},
            earning={"orders": [{"name": "s", "point_per_unit": 2}]},
            zzz=1,
        )
    )
    assert "tier: unknown key; did you mean tiers?" in found
    assert "points.validty: unknown key; did you mean validity?" in found
    assert "earning.orders[0].point_per_unit: unknown key; did you mean points_per_unit?" in found
    assert any(p.startswith("zzz: unknown key; known keys: name, currency") for p in found)


def test_bad_values_name_the_path_the_value_and_the_fix() -> None:
    found = problems(
        minimal(
            currency="RMB",
            points={"return_policy": "sometimes", "pending": {"mode": "after"}},
            timezone="Mars/Olympus",
        )
    )
    assert any(p.startswith('currency: "RMB" is not valid: not an ISO 4217 code') for p in found)
    assert any(
        p.startswith('points.return_policy: "sometimes" is not valid') and "'within_balance'" in p
        for p in found
    )
    assert any(
        p.startswith("points.pending:") and "needs `days`, e.g. {mode: after, days: 7}" in p
        for p in found
    )
    assert any(p.startswith('timezone: "Mars/Olympus"') and "IANA" in p for p in found)
    assert "name: missing; add it" in problems({"currency": "CNY"})


def test_pending_shorthand_and_missing_event_type() -> None:
    assert (
        parse_program(minimal(points={"pending": "immediate"})).points.pending.mode == "immediate"
    )
    found = problems(minimal(points={"pending": {"mode": "on_event"}}))
    assert len(found) == 1 and "needs `event_type`" in found[0]


def test_references_and_filters_are_checked() -> None:
    found = problems(
        minimal(
            tiers=[{"name": "基础", "threshold": 0}],
            earning={
                "orders": [
                    {"name": "s", "multipliers": [{"name": "m", "factor": 2, "tiers": ["金卡"]}]}
                ]
            },
            loss_aversion={"recall": {"coupon": "nope"}},
            coupons=[{"id": "c1", "kind": "value", "amount": 5, "unlock": "stage in ("}],
            benefits=[
                {"id": "b1", "description": "d", "unlock": "no_such_field > 1"},
                {"id": "b1", "description": "d", "tiers": ["金卡"]},
            ],
        )
    )
    assert any(
        p.startswith("earning.orders[0].multipliers[0].tiers: '金卡' is not a tier") for p in found
    )
    assert any(
        p.startswith("loss_aversion.recall.coupon: 'nope' is not a coupon id") for p in found
    )
    assert any(
        p.startswith("coupons[0].unlock: 'stage in (' is not a valid segment filter") for p in found
    )
    assert any(p.startswith("benefits[0].unlock:") and "no_such_field" in p for p in found)
    assert "benefits: 'b1' is defined twice; names must be unique" in found
    assert any(p.startswith("benefits[1].tiers: '金卡' is not a tier") for p in found)


def test_unlimited_returns_need_negative_balances() -> None:
    found = problems(minimal(points={"return_policy": "unlimited"}))
    assert len(found) == 1 and "negative_balance 'forbid'" in found[0]
    ok = parse_program(minimal(points={"return_policy": "unlimited", "negative_balance": "allow"}))
    assert ok.points.return_policy == "unlimited"


def test_multiplier_dates_and_percent_coupons() -> None:
    found = problems(
        minimal(
            earning={
                "orders": [
                    {
                        "name": "s",
                        "multipliers": [
                            {"name": "m", "factor": 2, "start": "2026-11-11", "end": "2026-11-01"}
                        ],
                    }
                ]
            },
            coupons=[{"id": "c", "kind": "percent", "amount": 120}],
        )
    )
    assert any("end 2026-11-01 is before start 2026-11-11" in p for p in found)
    assert any("takes less than 100 % off, not 120" in p for p in found)


def test_the_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError, match=r"p\.yaml: 2 problems:\n  - tier: unknown key"):
        parse_program(minimal(tier=1, zz=2), source="p.yaml")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_program(tmp_path / "missing.yaml")
    bad = tmp_path / "dup.yaml"
    bad.write_text("name: a\ncurrency: CNY\nname: b\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"dup\.yaml, line 3: the key 'name' appears twice"):
        load_program(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ProgramError, match="must be a mapping"):
        load_program(listing)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x 1\n", "p.yaml, line 1: anchors and aliases"),
        ("a: *x\n", "p.yaml, line 1: anchors and aliases"),
        ("a:\n\t- 1\n", "p.yaml, line 2: found character .* that cannot start any token"),
        ("a: 1\n---\nb: 2\n", "p.yaml, line 2: one document per file"),
        ("a: [1, 2\n", "p.yaml, line 2: expected ',' or ']'"),
        ("a:\n  b: 1\n c: 2\n", "p.yaml, line 3: expected <block end>"),
        ("a: {b: 1, b: 2}\n", "p.yaml, line 1: the key 'b' appears twice"),
        ("x: 1\ny: 2\nx: 3\n", "p.yaml, line 3: the key 'x' appears twice .*first on line 1"),
    ],
)
def test_yaml_that_liucun_refuses_names_the_line(text: str, message: str) -> None:
    with pytest.raises(YamlError, match=message):
        read_yaml(text, source="p.yaml")


def test_yaml_scalars_are_yaml_1_2() -> None:
    text = (
        "# comment\n"
        'name: "a # not a comment"  # a comment\n'
        "plain: 留存 会员\n"
        "n: 12\n"
        "f: -0.5\n"
        "e: 1e3\n"
        "t: true\n"
        "no: NO\n"
        "yes: yes\n"
        "clock: 10:30\n"
        "z: ~\n"
        "d: 2026-11-01\n"
        "q: 'it''s'\n"
        "empty:\n"
        "flow: [1, 'two', {k: v}, []]\n"
        "items:\n"
        "- x\n"
        "- k: 1\n"
        "  j:\n"
        "    - deep\n"
        "- - nested\n"
    )
    assert read_yaml(text) == {
        "name": "a # not a comment",
        "plain": "留存 会员",
        "n": 12,
        "f": -0.5,
        "e": 1000.0,
        "t": True,
        "no": "NO",  # the country code, not false (YAML 1.1)
        "yes": "yes",
        "clock": "10:30",  # not 630 (YAML 1.1's base 60)
        "z": None,
        "d": "2026-11-01",
        "q": "it's",
        "empty": None,
        "flow": [1, "two", {"k": "v"}, []],
        "items": ["x", {"k": 1, "j": ["deep"]}, ["nested"]],
    }


def test_canonical_json_reads_back_with_the_same_digest() -> None:
    import json

    from liucun.loyalty._program import canonical_json

    p = load_program(EXAMPLE)
    again = parse_program(json.loads(canonical_json(p)))
    assert again == p
    assert again.digest == p.digest
