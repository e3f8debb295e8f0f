"""Tiers in force on SQLite and PostgreSQL, the warehouse side: a review again changes
nothing, ``tier_changed`` events with stable ids and no duplicates, the repair of a crash
between the state commit and the warehouse write, programs apart, and temporary
upgrades (the recall package's boost columns are never written by a review). The program
and the hand-worked figures are those of test_tier_store.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tier_helpers import (
    EXAMPLE,
    T0,
    at,
    boost,
    history,
    history_ids,
    state_rows,
    stored,
    tier_workspace,
    tiers,
    utc,
    warehouse_events,
)

from liucun import loyalty
from liucun.core import WarehouseBusy
from liucun.workspace import Workspace

SRC = Path(__file__).parents[2] / "src"


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    yield from tier_workspace(tmp_path, state_url)


# -- idempotency and events ------------------------------------------------------------------


def test_a_review_again_at_the_same_as_of_changes_nothing(ws: Workspace) -> None:
    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))
    loyalty.add_growth(ws, "b", 6000, key="b", earned_at=utc(2026, 6, 1))
    loyalty.award(ws, "c", 10, key="c")
    first = loyalty.review_tiers(ws)
    assert (first.members, len(first.changes), first.stored, first.events_written) == (3, 3, 3, 3)
    before, events = state_rows(ws), warehouse_events(ws)
    ws.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    again = loyalty.review_tiers(ws, as_of=T0)
    assert (again.changes, again.stored, again.events_written) == ([], 0, 0)
    assert state_rows(ws) == before  # not even updated_at moved
    assert warehouse_events(ws) == events


def test_tier_changes_are_warehouse_events_with_stable_ids_and_no_duplicates(
    ws: Workspace,
) -> None:
    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))
    loyalty.award(ws, "b", 10, key="b")
    review = at(ws, T0)
    stamp = "20260615T120000000000Z"
    assert [c.event_id for c in review.changes] == [f"tier:a:{stamp}:进阶", f"tier:b:{stamp}:基础"]
    events = warehouse_events(ws)
    assert [e["event_id"] for e in events] == [f"tier:a:{stamp}:进阶", f"tier:b:{stamp}:基础"]
    assert events[0]["ts"] == T0 and events[0]["user_id"] == "a"
    props = json.loads(events[0]["properties"])
    assert (props["from"], props["to"], props["direction"], props["growth_in_window"]) == (
        None,
        "进阶",
        "joined",
        1200,
    )
    assert props["program_digest"] == loyalty.load_program(EXAMPLE).digest
    ws.clock.set(utc(2026, 6, 16))  # type: ignore[attr-defined]
    loyalty.add_growth(ws, "b", 1000, key="b2")
    at(ws, utc(2026, 6, 16))
    at(ws, utc(2026, 6, 16))  # a re-run writes nothing twice
    ids = [e["event_id"] for e in warehouse_events(ws)]
    assert (
        ids
        == history_ids(ws)
        == sorted(
            [f"tier:a:{stamp}:进阶", f"tier:b:{stamp}:基础", "tier:b:20260616T120000000000Z:进阶"]
        )
    )
    assert len(set(ids)) == len(ids) == 3


def test_a_crash_after_the_state_commit_is_repaired_by_the_next_review(ws: Workspace) -> None:
    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))
    loyalty.award(ws, "b", 10, key="b")
    ws.close()
    script = (
        "import os, signal, sys\n"
        "from datetime import datetime\n"
        "from liucun import loyalty\n"
        "import liucun.loyalty._tier_review as review\n"
        "from liucun.core import SimulatedClock\n"
        "from liucun.workspace import open_workspace\n"
        "review._flush_events = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "clock = SimulatedClock(datetime.fromisoformat(sys.argv[2]))\n"
        "with open_workspace(sys.argv[1], clock=clock) as ws:\n"
        "    loyalty.review_tiers(ws)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ws.path), T0.isoformat()],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr  # killed between the commit and the write
    expected = ["tier:a:20260615T120000000000Z:进阶", "tier:b:20260615T120000000000Z:基础"]
    assert history_ids(ws) == expected and tiers(ws) == {"a": "进阶", "b": "基础"}
    assert warehouse_events(ws) == []
    dry = loyalty.review_tiers(ws, dry_run=True)
    assert (dry.changes, dry.events_pending) == ([], 2)
    assert warehouse_events(ws) == []  # a dry run repairs nothing
    repair = loyalty.review_tiers(ws)
    assert (repair.changes, repair.stored, repair.events_written, repair.events_repaired) == (
        [],
        0,
        2,
        2,
    )
    assert [e["event_id"] for e in warehouse_events(ws)] == expected
    assert loyalty.review_tiers(ws).events_written == 0


@pytest.mark.slow
def test_two_reviews_at_once_record_each_change_once(ws: Workspace) -> None:
    for i in range(20):
        loyalty.add_growth(ws, f"u{i:02}", 300 * i + 1, key=f"g{i}", earned_at=utc(2026, 6, 1))
    ws.close()
    script = (
        "import sys\n"
        "from datetime import datetime\n"
        "from liucun import loyalty\n"
        "from liucun.core import SimulatedClock\n"
        "from liucun.workspace import open_workspace\n"
        "clock = SimulatedClock(datetime.fromisoformat(sys.argv[2]))\n"
        "with open_workspace(sys.argv[1], clock=clock) as ws:\n"
        "    print(len(loyalty.review_tiers(ws).changes))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ws.path), T0.isoformat()],
            env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    # one review recorded the 20 joins, the other found them stored (serialized by the
    # program's lock); the warehouse holds each event once
    assert sorted(int(out) for out, _ in outs) == [0, 20]
    ids = history_ids(ws)
    assert len(ids) == 20 and [e["event_id"] for e in warehouse_events(ws)] == ids
    # 300·i + 1 growth: 基础 below 1000 (i ≤ 3), 进阶 below 5000 (4 ≤ i ≤ 16), 尊享 i ≥ 17
    assert loyalty.tier_distribution(ws).members.tolist() == [4, 13, 3]


def test_a_failed_warehouse_write_says_the_review_is_stored_and_heals_on_rerun(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liucun.ingest

    loyalty.add_growth(ws, "a", 1200, key="a", earned_at=utc(2026, 6, 1))

    def busy(*_a: Any, **_k: Any) -> Any:
        raise WarehouseBusy("another process is writing the warehouse")

    monkeypatch.setattr(liucun.ingest, "ingest_tables", busy)
    with pytest.raises(
        loyalty.TierEventsPending,
        match=r"is stored \(1 tier change\).*WarehouseBusy.*run the review again",
    ):
        loyalty.review_tiers(ws)
    monkeypatch.undo()
    assert tiers(ws) == {"a": "进阶"} and warehouse_events(ws) == []
    healed = loyalty.review_tiers(ws)
    assert (healed.changes, healed.events_written, healed.events_repaired) == ([], 1, 1)
    assert [e["event_id"] for e in warehouse_events(ws)] == history_ids(ws)


# -- temporary upgrades ------------------------------------------------------------------------


def test_a_temporary_upgrade_shows_while_it_lasts_and_its_end_is_recorded_once(
    ws: Workspace,
) -> None:
    loyalty.add_growth(ws, "b", 1200, key="b", earned_at=utc(2026, 6, 1))  # 进阶
    loyalty.add_growth(ws, "c", 6000, key="c", earned_at=utc(2026, 6, 1))  # 尊享
    loyalty.add_growth(ws, "d", 1200, key="d", earned_at=utc(2026, 6, 1))  # 进阶
    at(ws, T0)
    until = utc(2026, 7, 15)
    boost(ws, "b", "尊享", until)
    boost(ws, "c", "进阶", until)  # below the tier earned: no effect
    boost(ws, "d", "尊享", until)
    assert loyalty.account(ws, "b").tier == "尊享"  # at once, before any review
    assert loyalty.account(ws, "c").tier == "尊享"
    review = at(ws, utc(2026, 6, 16))
    assert {c.user_id: (c.from_tier, c.to_tier, c.direction) for c in review.changes} == {
        "b": ("进阶", "尊享", "up"),
        "d": ("进阶", "尊享", "up"),
    }
    assert review.changes[0].reason.startswith(
        "temporary upgrade to 尊享 until 2026-07-15 12:00 UTC (recall package); the tier "
        "earned is 进阶"
    )
    assert review.boosted == 2 and review.distribution == {"基础": 0, "进阶": 0, "尊享": 3}
    members = loyalty.tier_members(ws).set_index("user_id")
    assert members.loc["b", ["tier", "earned_tier"]].tolist() == ["尊享", "进阶"]
    # d earns 尊享 during the boost: the stored tier changes, the effective one does not
    ws.clock.set(utc(2026, 6, 20))  # type: ignore[attr-defined]
    loyalty.add_growth(ws, "d", 4000, key="d2")
    assert at(ws, utc(2026, 6, 20)).changes == []
    assert tiers(ws)["d"] == "尊享"
    # 16 July: the boost ended on the 15th; July's review keeps b at 进阶 (1200 growth)
    review = at(ws, utc(2026, 7, 16))
    (change,) = review.changes
    assert (change.user_id, change.from_tier, change.to_tier, change.direction) == (
        "b",
        "尊享",
        "进阶",
        "down",
    )
    assert change.reason.startswith(
        "temporary upgrade to 尊享 ended on 2026-07-15 12:00 UTC; back to the tier earned, 进阶"
    )
    assert loyalty.account(ws, "b").tier == "进阶"
    assert history(ws, "b") == [
        (None, "进阶", "joined"),
        ("进阶", "尊享", "up"),
        ("尊享", "进阶", "down"),
    ]
    assert history(ws, "c") == [(None, "尊享", "joined")]  # never moved
    assert history(ws, "d") == [(None, "进阶", "joined"), ("进阶", "尊享", "up")]
    # the review never wrote the recall package's columns
    for user, tier in (("b", "尊享"), ("c", "进阶"), ("d", "尊享")):
        row = stored(ws, user)
        assert (row.boost_tier, row.boost_until) == (tier, until)
    assert at(ws, utc(2026, 7, 16)).changes == []
