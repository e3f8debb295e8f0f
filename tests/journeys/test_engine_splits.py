"""The engine's branches, splits and bandit on SQLite and PostgreSQL: branch filters on
the profile, hashed splits with a holdout and their logged probabilities, Thompson
sampling that never takes its holdout and learns the better arm, and steps written once
when two walks run at the same instant."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from journey_support import (
    advance,
    day,
    engine_workspace,
    enrol,
    enrolments,
    events,
    outbox,
    spec,
    steps,
    users,
)
from sqlalchemy import func, select

from liucun.journeys._engine import check_goals
from liucun.state import Exposure
from liucun.workspace import Workspace

T = day(2026, 3, 1, 12)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with engine_workspace(tmp_path / "ws", state_url, T) as w:
        yield w


def _exposures(ws: Workspace, experiment: str) -> list[Exposure]:
    with ws.state.read() as s:
        return list(s.scalars(select(Exposure).where(Exposure.experiment == experiment)))


def test_branch_on_the_profile(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "b", "customer_type": "b2b"},
            {"user_id": "c", "customer_type": "b2c"},
            {"user_id": "n"},
        ],
    )
    j = spec(
        name="br",
        control={"share": 0.0, "allow_zero": True},
        nodes=[
            {
                "id": "br",
                "type": "branch",
                "branches": [
                    {"when": "customer_type == 'b2b'", "next": "t1"},
                    {"when": "customer_type == 'b2c'", "next": "t2"},
                ],
                "otherwise": None,
            },
            {"id": "t1", "type": "tag", "tag": "biz", "next": None},
            {"id": "t2", "type": "tag", "tag": "con", "next": None},
        ],
    )
    enrol(ws, j, [("b", "1", T), ("c", "1", T), ("n", "1", T)])
    advance(ws, T)
    reasons = {s.user_id: s.reason for s in steps(ws, "branch")}
    assert reasons == {"b": "branch_1", "c": "branch_2", "n": "otherwise"}
    assert sorted(json.loads(o.payload)["tag"] for o in outbox(ws)) == ["biz", "con"]


def test_split_assignment_and_probabilities_are_logged(ws: Workspace) -> None:
    j = spec(
        name="sp",
        control={"share": 0.0, "allow_zero": True},
        nodes=[
            {
                "id": "s",
                "type": "split",
                "holdout": 0.2,
                "holdout_next": None,
                "variants": [
                    {"name": "a", "weight": 3, "next": "ta"},
                    {"name": "b", "weight": 1, "next": "tb"},
                ],
            },
            {"id": "ta", "type": "tag", "tag": "a", "next": None},
            {"id": "tb", "type": "tag", "tag": "b", "next": None},
        ],
    )
    n = 2_000
    enrol(ws, j, [(f"u{i}", "1", T) for i in range(n)])
    advance(ws, T)
    logged = _exposures(ws, "journey:sp:s")
    assert len(logged) == n
    probs = {x.variant: round(x.probability, 6) for x in logged}
    assert probs == {"a": 0.6, "b": 0.2, "holdout": 0.2}
    counts = {v: sum(x.variant == v for x in logged) for v in probs}
    for v, p in probs.items():
        assert abs(counts[v] - n * p) < 4.5 * math.sqrt(n * p * (1 - p))
    assert all(x.holdout == (x.variant == "holdout") for x in logged)
    # held-out customers get nothing from the split on
    held = {x.unit_id for x in logged if x.variant == "holdout"}
    assert not held & {o.user_id for o in outbox(ws)}
    assert len(outbox(ws)) == n - len(held)


def test_bandit_never_takes_the_holdout_and_concentrates_on_the_better_arm(ws: Workspace) -> None:
    import numpy as np

    from liucun.state import BanditArm

    j = spec(
        name="bd",
        control={"share": 0.0, "allow_zero": True},
        goal={"event": "order", "window_days": 30, "exit": True},
        nodes=[
            {
                "id": "ab",
                "type": "adaptive_split",
                "holdout": 0.1,
                "variants": [{"name": "good", "next": "w"}, {"name": "bad", "next": "w"}],
            },
            {"id": "w", "type": "wait", "duration": "1d", "next": None},
        ],
    )
    rng = np.random.default_rng(3)
    t = T
    late_good = []
    for r in range(6):
        ws.clock.set(t, allow_backwards=True)
        enrol(ws, j, [(f"r{r}u{i}", "1", t) for i in range(120)])
        advance(ws, t)
        rows = [e for e in enrolments(ws, "bd") if e.user_id.startswith(f"r{r}u")]
        chosen = {e.user_id: json.loads(e.context).get("splits", {}).get("ab") for e in rows}
        rate = {"good": 0.6, "bad": 0.05, "holdout": 0.1}
        orders = [
            {"user_id": u, "event_type": "order", "ts": t + timedelta(hours=2), "revenue": 1.0}
            for u, v in chosen.items()
            if rng.random() < rate[v]
        ]
        t = t + timedelta(hours=3)
        ws.clock.set(t)
        if orders:
            events(ws, orders)
        check_goals(ws, t)
        if r >= 4:
            late_good += [v == "good" for v in chosen.values() if v != "holdout"]
    logged = _exposures(ws, "journey:bd:ab")
    from liucun.experiments._hashing import as_unit_ids, buckets

    units = [x.unit_id for x in logged]
    held = buckets("journey:bd:ab:holdout", as_unit_ids(units)) < 0.1
    assert [x.variant == "holdout" for x in logged] == list(held)
    assert all(x.holdout for x in logged if x.variant == "holdout")
    with ws.state.read() as s:
        arms = {a.variant: (a.trials, a.successes) for a in s.scalars(select(BanditArm))}
    assert "holdout" not in arms
    assert arms["good"][0] + arms["bad"][0] == sum(not h for h in held)
    assert arms["good"][0] > 2 * arms["bad"][0]
    assert sum(late_good) / len(late_good) > 0.75
    # probabilities logged are Thompson's chance of the chosen arm times 0.9
    later = [x for x in logged if x.variant == "good" and x.unit_id.startswith("r5")]
    assert later and all(0.5 < x.probability <= 0.9 for x in later)


def test_two_advances_at_the_same_time_write_each_step_once(ws: Workspace) -> None:
    j = spec(name="idem", control={"share": 0.5})
    enrol(ws, j, [(f"u{i}", "1", T) for i in range(300)])
    a = advance(ws, T, "w1")
    b = advance(ws, T, "w2")
    assert a.walked == 300 and b.walked == 0
    with ws.state.read() as s:
        from liucun.state import JourneyStep

        n = s.scalar(select(func.count()).select_from(JourneyStep))
    # entered, the message (sent or withheld) and the exit: three steps each, once
    assert n == 300 * 3
