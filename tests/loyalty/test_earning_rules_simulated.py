"""plan_accrual and evaluate_tiers on a simulated shop loaded into a workspace: the
resolved events of the warehouse (ws.events()), as the coordinator's `loyalty accrue`
will pass them, with the shipped example program. Oracles are recomputed from the
events in pandas, from the rules' definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from liucun.ingest import ingest_events, ingest_users
from liucun.loyalty._program import load_program
from liucun.loyalty._rules import plan_accrual
from liucun.loyalty._tiers import evaluate_tiers
from liucun.simulate import simulate_shop
from liucun.workspace import init_workspace

EXAMPLE = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"


def test_example_program_over_a_simulated_shop(tmp_path: Path) -> None:
    sim = simulate_shop(tmp_path / "sim", users=400, days=120, seed=3)
    program = load_program(EXAMPLE)
    with init_workspace(tmp_path / "ws") as ws:
        ingest_users(ws.warehouse, [sim.users_path])
        ingest_events(ws.warehouse, [sim.events_dir])
        events = ws.events()
        plan = plan_accrual(events, program)
        raw = events.to_pandas()

    orders = raw[(raw.event_type == "order") & raw.user_id.notna()]
    assert len(orders) > 100 and (raw.event_type == "refund").any()
    earned = plan[(plan.rule == "spend") & (plan.kind == "earn")].set_index("source_event_id")
    # every order with a positive amount earns; spend points are floor(amount × the
    # multipliers of its channel, date and tier); no member has a tier here
    positive = orders[orders.revenue.fillna(0) > 0].set_index("event_id")
    assert set(earned.index) == set(positive.index)
    local_day = positive.ts.dt.tz_convert("Asia/Shanghai").dt.date
    factor = np.where(positive.channel == "mini_program", 1.1, 1.0) * np.where(
        (local_day >= pd.Timestamp("2026-11-01").date())
        & (local_day <= pd.Timestamp("2026-11-11").date()),
        2.0,
        1.0,
    )
    want = np.floor(positive.revenue * factor + 1e-9).astype("int64")
    assert earned.points.reindex(positive.index).tolist() == want.tolist()
    assert (
        earned.growth.reindex(positive.index).tolist()
        == np.floor(positive.revenue + 1e-9).astype("int64").tolist()
    )

    # one first-order bonus per buyer, on their earliest positive order
    bonus = plan[(plan.rule == "first_order") & (plan.kind == "earn")]
    firsts = positive.reset_index().sort_values(["ts", "event_id"]).drop_duplicates("user_id")
    assert sorted(bonus.source_event_id) == sorted(firsts.event_id)
    assert set(bonus.growth) == {100}

    # points wait for the delivery of their order
    deliveries = raw[raw.event_type == "delivery"].groupby("order_id").ts.min()
    delivered = positive.order_id.map(deliveries)
    assert earned.available_at.reindex(positive.index).equals(
        delivered.astype("datetime64[us, UTC]").rename("available_at")
    )

    # refunds never take back more than their order earned, and keys are unique
    reversals = plan[plan.kind == "reversal"]
    assert len(reversals) > 0
    net = plan[plan.rule == "spend"].groupby(plan.reverses_key.fillna(plan.key)).points.sum()
    assert (net >= 0).all()
    assert plan.key.is_unique

    tiers = evaluate_tiers(plan, program, as_of=sim.end)
    growth = plan.groupby("user_id").growth.sum()
    reached = growth[growth >= 1000].index
    assert set(tiers[tiers.tier != "基础"].user_id) == set(reached)
