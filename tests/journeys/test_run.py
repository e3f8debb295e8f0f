"""``journeys run --until``: the engine over simulated time on a small simulated shop
(2,000 users): inactivity and late-delivery journeys produce enrolments, steps and
outbox rows; a world acting between ticks is called once per step and its events
trigger the event journeys; the command's summary and errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from journey_support import enrolments, install_journey, outbox, spec, steps
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ConfigError, SimulatedClock
from liucun.ingest import IngestOptions, ingest_events, ingest_tables, ingest_users
from liucun.journeys._run import World, run_until
from liucun.simulate import simulate_shop
from liucun.workspace import init_workspace, open_workspace

INACTIVE = {
    "name": "idle3",
    "trigger": {"type": "inactivity", "days": 3},
    "reentry": {"mode": "once"},
    "nodes": [
        {
            "id": "push",
            "type": "message",
            "channel": "push",
            "next": "wait",
            "template": {"body": {"en": "We miss you", "zh-CN": "想你了"}},
        },
        {"id": "wait", "type": "wait", "duration": "4d", "next": "coupon"},
        {"id": "coupon", "type": "coupon", "coupon": "comeback10", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}
LATE = {
    "name": "late",
    "trigger": {"type": "service_failure", "kind": "late_delivery", "min_late_days": 1},
    "nodes": [{"id": "sorry", "type": "coupon", "coupon": "sorry5", "next": None}],
}


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    sim = simulate_shop(root / "sim", preset="b2c", users=2_000, days=120, seed=5)
    with init_workspace(root / "ws") as ws:
        ingest_users(ws.warehouse, [sim.users_path])
        ingest_events(ws.warehouse, [sim.events_dir])
    return root / "ws"


class LateDeliveries:
    """A toy world: each simulated day two customers get a late delivery."""

    def __init__(self, customers: list[str]) -> None:
        self.customers = customers
        self.calls: list[datetime] = []
        self.day = 0

    def advance(self, ws, until: datetime) -> int:  # type: ignore[no-untyped-def]
        self.calls.append(until)
        if until.hour != 12:
            return 0
        who = self.customers[2 * self.day : 2 * self.day + 2]
        self.day += 1
        rows = pa.table(
            {
                "event_id": [f"late-{until:%Y%m%d}-{u}" for u in who],
                "user_id": who,
                "event_type": ["delivery"] * len(who),
                "ts": pa.array(
                    [until - timedelta(hours=1)] * len(who), pa.timestamp("us", tz="UTC")
                ),
                "order_id": [f"o-{until:%Y%m%d}-{u}" for u in who],
                "properties": ['{"late_days": 3}'] * len(who),
            }
        )
        ingest_tables(ws.warehouse, events=rows, options=IngestOptions(clock=ws.clock))
        return len(who)


@pytest.mark.slow
def test_run_on_a_simulated_shop(small_shop: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "ws"
    shutil.copytree(small_shop, path)
    with open_workspace(path) as probe:
        end = probe.data_end()
        some = probe.customers().select("user_id").limit(20).to_pyarrow().column(0).to_pylist()
    assert end is not None
    with open_workspace(path, clock=SimulatedClock(end)) as ws:
        install_journey(ws, spec(**INACTIVE))
        install_journey(ws, spec(**LATE))
        world = LateDeliveries(sorted(some))
        assert isinstance(world, World)
        result = run_until(ws, end + timedelta(days=5), world=world)
        assert result.steps == 5 * 24 == len(world.calls)
        assert ws.clock.now() == end + timedelta(days=5)
        idle = enrolments(ws, "idle3")
        assert len(idle) > 50
        # entries are customers whose last own activity was 3 days before a run instant
        assert all(end < e.entered_at <= end + timedelta(days=5) for e in idle)
        late = enrolments(ws, "late")
        assert sorted(e.user_id for e in late) == sorted(some[:10])
        assert {e.entry_key for e in late} == {
            f"o-{(end + timedelta(days=d, hours=12)):%Y%m%d}-{u}"
            for d, u in [(i // 2, u) for i, u in enumerate(sorted(some)[:10])]
        }
        box = outbox(ws)
        channels = {o.channel for o in box}
        assert {"push", "coupon"} <= channels
        pushes = [o for o in box if o.journey == "idle3" and o.channel == "push"]
        treated = [e for e in idle if e.arm == "treatment"]
        assert len(pushes) == len(treated) > 0
        # the 4-day wait: coupons only for customers who entered at least 4 days before the end
        coupons = {o.enrolment_id for o in box if o.journey == "idle3" and o.channel == "coupon"}
        due = {
            e.id
            for e in treated
            if e.entered_at + timedelta(days=4) <= end + timedelta(days=5)
            and e.exit_reason != "converted"
        }
        assert coupons == due
        assert len(steps(ws, "withheld")) > 0
        assert result.enrolled == len(idle) + len(late)


def test_run_command(small_shop: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "ws"
    shutil.copytree(small_shop, path)
    with open_workspace(path) as probe:
        end = probe.data_end()
    assert end is not None
    with open_workspace(path, clock=SimulatedClock(end)) as ws:
        install_journey(ws, spec(**INACTIVE))
    until = (end + timedelta(days=2)).date().isoformat()
    r = CliRunner().invoke(
        app,
        [
            "--now",
            end.isoformat(),
            "-w",
            str(path),
            "journeys",
            "run",
            "--until",
            until,
            "--step",
            "6h",
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["steps"] == 8 and out["enrolled"] > 0 and out["outbox"] > 0
    bad = CliRunner().invoke(
        app, ["--now", end.isoformat(), "-w", str(path), "journeys", "run", "--until", "2020-01-01"]
    )
    assert bad.exit_code == 1 and "is not after the workspace's now" in bad.output
    step = CliRunner().invoke(
        app,
        [
            "--now",
            end.isoformat(),
            "-w",
            str(path),
            "journeys",
            "run",
            "--until",
            until,
            "--step",
            "soon",
        ],
    )
    assert step.exit_code == 1 and "--step" in step.output
    world = CliRunner().invoke(
        app,
        [
            "--now",
            end.isoformat(),
            "-w",
            str(path),
            "journeys",
            "run",
            "--until",
            until,
            "--world",
            str(tmp_path),
        ],
    )
    assert world.exit_code == 1
    import liucun.simulate

    if not hasattr(liucun.simulate, "responsive_world"):
        assert "no responsive world" in world.output
    with pytest.raises(ConfigError), open_workspace(path, clock=SimulatedClock(end)) as ws:
        run_until(ws, end + timedelta(days=1), step=timedelta(0))
