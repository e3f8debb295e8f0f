"""Assignment: GrowthBook's hash and ranges, splits, stickiness, layers, holdouts, and
idempotent exposure logging on a real DuckDB workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats as ss

from liucun.core import ConfigError, InvalidInput
from liucun.experiments import (
    HOLDOUT,
    Experiment,
    GlobalHoldout,
    Layer,
    assign,
    first_exposures,
    log_exposures,
)
from liucun.experiments._hashing import as_unit_ids, buckets
from liucun.workspace import Workspace

#: GrowthBook SDK spec, tests/cases.json "hash" (version 2): seed, value, bucket.
GROWTHBOOK_HASH_V2 = [
    ("seed", "a", 0.0505),
    ("seed", "b", 0.2696),
    ("foo", "ab", 0.2575),
    ("foo", "def", 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 0.124),
    ("90850943850283058242805", "123", 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 0.0128),
]

IDS = [f"user-{i:06d}" for i in range(60_000)]


@pytest.mark.parametrize(("seed", "value", "bucket"), GROWTHBOOK_HASH_V2)
def test_buckets_are_growthbooks_hash_v2(seed: str, value: str, bucket: float) -> None:
    assert buckets(seed, as_unit_ids([value]))[0] == bucket


def test_ranges_are_growthbooks_bucket_ranges() -> None:
    """cases.json "getBucketRange": 3 variations, coverage 0.2, weights 0.2/0.3/0.5."""
    exp = Experiment("e", variants=("a", "b", "c"), weights=(0.2, 0.3, 0.5), coverage=0.2)
    np.testing.assert_allclose(exp.ranges(), [[0, 0.04], [0.2, 0.26], [0.5, 0.6]], atol=1e-12)
    halves = Experiment("e", coverage=0.5).ranges()
    np.testing.assert_allclose(halves, [[0, 0.25], [0.5, 0.75]])


def test_same_buckets_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from liucun.experiments._hashing import buckets, as_unit_ids;"
        "print(list(buckets('exp-1', as_unit_ids(['a', 'b', 'ünï', '42', 'x' * 90]))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    here = list(buckets("exp-1", as_unit_ids(["a", "b", "ünï", "42", "x" * 90])))
    assert eval(out.stdout) == here  # our own subprocess's list of floats


def test_split_matches_the_weights() -> None:
    exp = Experiment("split", variants=("a", "b", "c"), weights=(0.2, 0.3, 0.5))
    got = assign(exp, IDS).column("variant").to_numpy(zero_copy_only=False)
    counts = [int((got == v).sum()) for v in ("a", "b", "c")]
    assert sum(counts) == len(IDS)
    p = ss.chisquare(counts, np.array([0.2, 0.3, 0.5]) * len(IDS)).pvalue
    assert p > 0.01, counts
    # a wrong split is detected by the same test: the assignment check can fail
    assert ss.chisquare(counts, np.array([0.22, 0.3, 0.48]) * len(IDS)).pvalue < 1e-6


def test_assignment_is_sticky_and_per_unit() -> None:
    exp = Experiment("sticky", variants=("control", "treatment"))
    first = assign(exp, IDS).column("variant")
    again = assign(Experiment("sticky"), list(reversed(IDS))).column("variant")
    assert first.to_pylist() == list(reversed(again.to_pylist()))
    other = assign(Experiment("sticky", salt="phase-2"), IDS).column("variant")
    assert 0.4 < float(pc.mean(pc.cast(pc.not_equal(first, other), pa.int8())).as_py()) < 0.6


def test_changing_weights_moves_the_fewest_units() -> None:
    """50/50 → 40/60 moves only the units in [0.4, 0.5): control → treatment, ~10 %."""
    before = assign(Experiment("w"), IDS).column("variant").to_numpy(zero_copy_only=False)
    after = assign(Experiment("w", weights=(0.4, 0.6)), IDS).column("variant")
    after_ = after.to_numpy(zero_copy_only=False)
    moved = before != after_
    assert set(zip(before[moved], after_[moved], strict=True)) == {("control", "treatment")}
    bucket = buckets("w", as_unit_ids(IDS))
    np.testing.assert_array_equal(moved, (bucket >= 0.4) & (bucket < 0.5))
    assert moved.mean() == pytest.approx(0.1, abs=0.01)
    # raising coverage only adds units; none of the covered ones changes arm
    part = assign(Experiment("w", coverage=0.5), IDS).column("variant")
    part_ = part.to_numpy(zero_copy_only=False)
    kept = part_ != None  # noqa: E711 - elementwise on an object array
    assert 0.48 < kept.mean() < 0.52
    np.testing.assert_array_equal(part_[kept], before[kept])


def test_layers_are_mutually_exclusive() -> None:
    layer = Layer("home", (("banner", 0.3), ("coupon", 0.5)))
    a = assign(Experiment("banner", layer=layer), IDS).column("variant")
    b = assign(Experiment("coupon", layer=layer), IDS).column("variant")
    in_a, in_b = pc.is_valid(a).to_numpy(), pc.is_valid(b).to_numpy()
    assert not (in_a & in_b).any()
    assert in_a.mean() == pytest.approx(0.3, abs=0.01)
    assert in_b.mean() == pytest.approx(0.5, abs=0.01)
    # appending an experiment to the layer leaves the earlier ones' units where they were
    grown = Layer("home", (*layer.slices, ("search", 0.2)))
    a2 = assign(Experiment("banner", layer=grown), IDS).column("variant")
    assert a2.equals(a)
    # inside its slice the split is still 50/50 and independent of the layer bucket
    share = float(
        pc.mean(pc.cast(pc.equal(a.filter(pc.is_valid(a)), "treatment"), pa.int8())).as_py()
    )
    assert share == pytest.approx(0.5, abs=0.02)


def test_holdouts_get_no_treatment_anywhere() -> None:
    glob = GlobalHoldout(0.05)
    one = assign(Experiment("one", holdout=0.1), IDS, global_holdout=glob)
    two = assign(Experiment("two", variants=("a", "b", "c")), IDS, global_holdout=glob)
    held = buckets("holdout:global", as_unit_ids(IDS)) < 0.05
    for table in (one, two):
        variant = table.column("variant").to_numpy(zero_copy_only=False)
        assert (variant[held] == HOLDOUT).all()  # the global holdout is held out everywhere
        assert table.column("holdout").to_numpy()[held].all()
    v1 = one.column("variant").to_numpy(zero_copy_only=False)
    campaign = (v1 == HOLDOUT) & ~held
    assert campaign.mean() == pytest.approx(0.95 * 0.1, abs=0.005)
    assert held.mean() == pytest.approx(0.05, abs=0.004)
    # the probabilities of the distinct outcomes add up to 1
    pairs = zip(*one.select(["variant", "probability"]).to_pydict().values(), strict=True)
    outcomes = sorted({(v, round(p, 12)) for v, p in pairs})
    assert outcomes == [
        ("control", round(0.95 * 0.9 * 0.5, 12)),
        (HOLDOUT, 0.05),
        (HOLDOUT, round(0.95 * 0.1, 12)),
        ("treatment", round(0.95 * 0.9 * 0.5, 12)),
    ]
    assert sum(p for _, p in outcomes) == pytest.approx(1.0)
    # rows of the global holdout carry its share, rows of the campaign holdout theirs
    prob = one.column("probability").to_numpy()
    np.testing.assert_allclose(prob[held], 0.05)
    np.testing.assert_allclose(prob[campaign], 0.95 * 0.1)


def test_accounts_and_bad_configurations() -> None:
    rows = assign(Experiment("b2b", unit_type="account"), ["acct-1", "acct-2"])
    assert rows.column("unit_type").to_pylist() == ["account", "account"]
    with pytest.raises(ConfigError, match="weights must be ≥ 0 and sum to 1"):
        Experiment("x", weights=(0.5, 0.6))
    with pytest.raises(ConfigError, match="'holdout' is reserved"):
        Experiment("x", variants=("control", "holdout"))
    with pytest.raises(ConfigError, match=r"slices of layer 'l' add up to 1\.2"):
        Layer("l", (("a", 0.6), ("b", 0.6)))
    with pytest.raises(ConfigError, match="experiment 'c' has no slice in layer 'l'"):
        Experiment("c", layer=Layer("l", (("a", 0.5),)))
    with pytest.raises(ConfigError, match="global holdout share must be a share"):
        GlobalHoldout(1.0)
    with pytest.raises(InvalidInput, match="1 unit ids are None"):
        assign(Experiment("x"), pa.array(["a", None]))


def test_exposure_logging_is_idempotent(workspace: Workspace) -> None:
    state = workspace.state
    rows = assign(Experiment("winback", coverage=0.8, holdout=0.1), IDS[:2_000])
    in_exp = int(pc.sum(pc.is_valid(rows.column("variant"))).as_py())
    t0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    first = log_exposures(state, rows, ts=t0)
    assert (first.logged, first.duplicates) == (in_exp, 0)
    again = log_exposures(state, rows, ts=t0)
    assert (again.logged, again.duplicates) == (0, in_exp)
    assert workspace.sync().copied == {"exposures": in_exp}
    assert workspace.sync().copied == {"exposures": 0}
    wh = workspace.warehouse
    assert wh.count("exposures") == in_exp
    later = log_exposures(state, rows.slice(0, 10), ts=t0 + timedelta(days=1))
    workspace.sync()
    wh = workspace.warehouse
    assert wh.count("exposures") == in_exp + later.logged
    stored = wh.table("exposures").to_pyarrow()
    assert set(stored.column("experiment").to_pylist()) == {"winback"}
    assert pc.count_distinct(stored.column("exposure_id")).as_py() == stored.num_rows
    firsts = first_exposures(wh.table("exposures"), "winback").to_pyarrow()
    assert firsts.num_rows == in_exp
    assert set(firsts.column("exposed_at").to_pylist()) == {t0}
    by_unit = dict(
        zip(rows.column("unit_id").to_pylist(), rows.column("variant").to_pylist(), strict=True)
    )
    for unit, variant in zip(
        *firsts.select(["unit_id", "variant"]).to_pydict().values(), strict=True
    ):
        assert by_unit[unit] == variant
    with pytest.raises(ConfigError, match="has no time zone"):
        log_exposures(state, rows, ts=datetime(2026, 3, 1))
    with pytest.raises(InvalidInput, match="lacks column"):
        log_exposures(state, rows.drop(["probability"]), ts=t0)
