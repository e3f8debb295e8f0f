"""The responding world: identical worlds without treatments, effects with the sign of the
customer's lift, idempotent and resumable steps, deliveries and visits for triggers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import poisson
from world_support import SHOP_END, Shop, buyers, copy_shop, enrol, make_shop

from liucun.core import ConfigError
from liucun.simulate import STRENGTHS, load_world, responsive_world
from liucun.simulate._world import MAX_PER_DAY, _poisson_inverse, _Treatments
from liucun.workspace import open_workspace


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return make_shop(tmp_path_factory.mktemp("world"), users=3_000, days=180, seed=21)


@pytest.fixture
def shop(base: Shop, tmp_path: Path) -> Shop:
    return copy_shop(base, tmp_path / "ws")


def _orders(world, name: str):  # type: ignore[no-untyped-def]
    o = world.orders().to_pandas()
    return o[o["world"] == name].drop(columns="world").reset_index(drop=True)


def _count(ws, kind: str | None = None) -> int:  # type: ignore[no-untyped-def]
    ev = ws.table("events")
    if kind is not None:
        ev = ev.filter(ev.event_type == kind)
    return int(ev.count().to_pyarrow().as_py())


def test_without_treatments_the_worlds_are_identical(shop: Shop) -> None:
    with open_workspace(shop.ws_dir) as ws:
        before = _count(ws)
        world = responsive_world(shop.sim_dir, seed=4)
        added = world.advance(ws, SHOP_END + timedelta(days=20))
        assert added == _count(ws) - before > 0
        assert ws.data_end() == SHOP_END + timedelta(days=20)
        action, none = _orders(world, "action"), _orders(world, "none")
        assert len(action) > 50
        assert action.equals(none)
        # the action world's orders are what the warehouse got
        assert _count(ws, "order") - _count_before(shop, "order") == len(action)
        assert world.truth(ws=ws).num_rows == 0  # nobody was treated


def _count_before(shop: Shop, kind: str) -> int:
    events = pq.read_table(shop.sim_dir / "events")
    return int(sum(1 for t in events["event_type"].to_pylist() if t == kind))


def test_treatment_effects_have_the_sign_of_the_lift(shop: Shop) -> None:
    truth = pq.read_table(shop.sim_dir / "truth.parquet").to_pandas().set_index("user_id")
    with open_workspace(shop.ws_dir) as ws:
        users = buyers(ws)
        enrol(ws, "boost", users, control_share=0.0)
        world = responsive_world(shop.sim_dir, seed=4, strengths={"coupon": 4.0, "email": 0.0})
        world.advance(ws, SHOP_END + timedelta(days=30))
        t = world.truth("boost", ws=ws).to_pandas()
    assert len(t) == len(users)
    lift = truth.loc[t["user_id"], "campaign_lift"].to_numpy()
    up, down = t[lift > 0.2], t[lift < -0.2]
    assert len(up) > 100 and len(down) > 30
    assert up["incremental_orders"].sum() > 0.2 * len(up) * 0.1
    assert down["incremental_orders"].sum() < 0
    assert up["incremental_revenue"].sum() > 0 > down["incremental_revenue"].sum()
    # no treatment, no difference: a customer outside the journey has none
    assert (t["orders"] - t["orders_without"] == t["incremental_orders"]).all()
    # the difference is the action world against the world without the journey
    action, none = _orders(world, "action"), _orders(world, "without:boost")
    assert action["revenue"].sum() - none["revenue"].sum() == pytest.approx(
        t["incremental_revenue"].sum()
    )


def test_strength_zero_changes_nothing(shop: Shop) -> None:
    with open_workspace(shop.ws_dir) as ws:
        enrol(ws, "nothing", buyers(ws), control_share=0.0)
        world = responsive_world(shop.sim_dir, seed=4, strengths=0)
        world.advance(ws, SHOP_END + timedelta(days=15))
        t = world.truth("nothing", ws=ws).to_pandas()
    assert len(t) > 500
    assert (t["incremental_orders"] == 0).all() and (t["incremental_revenue"] == 0).all()
    assert _orders(world, "action").equals(_orders(world, "none"))


def test_a_step_run_twice_adds_nothing(shop: Shop) -> None:
    until = SHOP_END + timedelta(days=10)
    with open_workspace(shop.ws_dir) as ws:
        enrol(ws, "boost", buyers(ws)[:500])
        world = responsive_world(shop.sim_dir, seed=4)
        assert world.advance(ws, until) > 0
        n = _count(ws)
        assert world.advance(ws, until) == 0
        assert world.advance(ws, until - timedelta(days=3)) == 0
        # a new world object (a new `journeys run`) resumes from the saved state
        again = responsive_world(shop.sim_dir, seed=4)
        assert again.advance(ws, until) == 0
        assert again.now == until
        assert _count(ws) == n


def test_resuming_gives_what_one_run_gives(base: Shop, tmp_path: Path) -> None:
    """Ten days then ten more (with a new world object between, as two runs would) equal
    twenty days at once: same orders in every world, same events."""
    results = []
    for name, steps in (("split", (10, 20)), ("whole", (20,))):
        shop = copy_shop(base, tmp_path / name)
        with open_workspace(shop.ws_dir) as ws:
            enrol(ws, "boost", buyers(ws))
            for days in steps:
                world = responsive_world(shop.sim_dir, seed=9)
                world.advance(ws, SHOP_END + timedelta(days=days))
            world = load_world(ws)
            assert world is not None and world.now == SHOP_END + timedelta(days=20)
            ev = ws.table("events")
            ids = ev.filter(ev.event_id.startswith("EW")).event_id.to_pyarrow().to_pylist()
            results.append(
                (world.orders().to_pandas().sort_values(["world", "ts"]), sorted(ids), world)
            )
    (o1, ids1, w1), (o2, ids2, w2) = results
    assert o1.reset_index(drop=True).equals(o2.reset_index(drop=True))
    assert ids1 == ids2 and len(ids1) > 500
    assert set(w1.worlds) == set(w2.worlds) == {"action", "none", "without:boost"}


def test_deliveries_come_when_due_and_some_are_late(shop: Shop) -> None:
    until = SHOP_END + timedelta(days=30)
    with open_workspace(shop.ws_dir) as ws:
        world = responsive_world(shop.sim_dir, seed=4)
        world.advance(ws, until)
        ev = ws.table("events")
        ours = ev.filter(ev.event_id.startswith("EW")).to_pandas()
    assert ours["ts"].max() < until
    deliveries = ours[ours["event_type"] == "delivery"]
    orders = ours[ours["event_type"] == "order"]
    assert set(deliveries["order_id"]) <= set(orders["order_id"])
    assert len(deliveries) > 0.8 * len(orders[orders["ts"] < until - timedelta(days=6)])
    late = [json.loads(p)["late_days"] for p in deliveries["properties"]]
    share_late = np.mean([d > 0 for d in late])
    assert 0.03 < share_late < 0.3
    # every order follows a visit of the same customer
    visits = ours[ours["event_type"] == "visit"]
    assert len(visits) > len(orders)
    assert set(orders["user_id"]) <= set(visits["user_id"])
    assert (orders["revenue"] > 0).all() and orders["currency"].notna().all()


def test_per_journey_counterfactual(shop: Shop) -> None:
    """Two journeys on the same customers: each one's truth is against the world without
    its own sends (the other journey's sends act in both)."""
    with open_workspace(shop.ws_dir) as ws:
        users = buyers(ws)
        enrol(ws, "first", users, control_share=0.0)
        enrol(ws, "second", users[::2], control_share=0.0, channel="push")
        world = responsive_world(shop.sim_dir, seed=4, strengths={"coupon": 3.0, "push": 3.0})
        world.advance(ws, SHOP_END + timedelta(days=20))
        first, second = world.truth("first", ws=ws), world.truth("second", ws=ws)
        overall = world.truth(ws=ws)
    assert first.num_rows == len(users) and second.num_rows == len(users[::2])
    assert overall.num_rows == len(users)
    assert set(world.worlds) == {"action", "none", "without:first", "without:second"}
    # effects do not stack: the journeys' own effects add up to less than both together
    both = sum(overall["incremental_orders"].to_pylist())
    assert sum(second["incremental_orders"].to_pylist()) < both


def test_bad_arguments_are_sentences(shop: Shop, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no truth\.parquet"):
        responsive_world(tmp_path).customers  # noqa: B018
    with pytest.raises(ConfigError, match="has no option speed"):
        responsive_world(shop.sim_dir, speed=2)
    with pytest.raises(ConfigError, match="effect_days must be positive"):
        responsive_world(shop.sim_dir, effect_days=0)
    with open_workspace(shop.ws_dir) as ws:
        responsive_world(shop.sim_dir, seed=1).advance(ws, SHOP_END + timedelta(days=2))
        with pytest.raises(ConfigError, match="seed 1; pass the same shop directory and seed"):
            responsive_world(shop.sim_dir, seed=2).advance(ws, SHOP_END + timedelta(days=3))
    assert STRENGTHS["coupon"] == 1.0 and STRENGTHS["email"] == 0.35


@settings(max_examples=200, deadline=None)
@given(
    u=st.floats(0, 1, exclude_max=True),
    mu=st.floats(0, 3),
    more=st.floats(0, 3),
)
def test_the_day_count_is_the_poisson_quantile_and_grows_with_the_rate(
    u: float, mu: float, more: float
) -> None:
    """One uniform, two rates: the count is Poisson's inverse CDF (capped at six a day)
    and never smaller at the higher rate — what makes the worlds comparable."""
    low, high = _poisson_inverse(np.array([u, u]), np.array([mu, mu + more]), MAX_PER_DAY)
    assert low <= high
    want = 0
    while want < MAX_PER_DAY and poisson.cdf(want, mu) <= u * (1 - 1e-12):
        want += 1
    assert abs(int(low) - want) <= (1 if abs(poisson.cdf(want, mu) - u) < 1e-9 else 0)


def test_treatment_windows_start_at_midnight_and_do_not_stack(shop: Shop) -> None:
    world = responsive_world(shop.sim_dir, effect_days=3)
    day = 86_400_000_000
    t0 = int((SHOP_END - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    tr = _Treatments(
        user=np.array([0, 0, 1]),
        at=np.array([t0 + day // 3, t0 + day // 2, t0 + 2 * day]),
        strength=np.array([0.35, 1.0, 0.35]),
        journey=np.array(["a", "b", "a"], dtype=object),
    )
    every = np.ones(3, dtype=bool)
    got = [world._strength(tr, every, t0 + d * day)[:2].tolist() for d in range(6)]
    # sent during day 0: acts on days 1-3; customer 1 sent at midnight of day 2: days 2-4
    assert got == [[0, 0], [1.0, 0], [1.0, 0.35], [1.0, 0.35], [0, 0.35], [0, 0]]
    # the world without journey b keeps only a's send to customer 0
    without_b = tr.journey != "b"
    assert world._strength(tr, without_b, t0 + day)[:2].tolist() == [0.35, 0]


def test_resuming_with_other_strengths_is_refused(shop: Shop) -> None:
    with open_workspace(shop.ws_dir) as ws:
        responsive_world(shop.sim_dir, strengths={"push": 1.0}).advance(
            ws, SHOP_END + timedelta(days=1)
        )
        with pytest.raises(ConfigError, match="resume it with the same options"):
            responsive_world(shop.sim_dir).advance(ws, SHOP_END + timedelta(days=2))
        world = load_world(ws)
        assert world is not None and world.strengths["push"] == 1.0
        assert world.advance(ws, SHOP_END + timedelta(days=2)) > 0
