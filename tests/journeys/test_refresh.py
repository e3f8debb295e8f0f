"""Freshness on a simulated shop with a trained model: a lapsed customer places an order,
``refresh_customers`` re-derives recency, stage and churn risk for that customer alone —
the risk the full scoring path gives the same customer as of the same instant (exactly
without a cache; to a hair with the population parts cached from before the order) —
appends the score where the 360 view reads it, and accrues the order's points."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fresh_support import (
    PROGRAM,
    lapsed_customer,
    shop_copy,
    trained_fixture,  # noqa: F401 - the fixture `trained`
)

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.journeys import RefreshCache, customer_view, refresh_customers
from liucun.models import score_customers
from liucun.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(trained: Path, tmp_path: Path) -> Iterator[Workspace]:
    with shop_copy(trained, tmp_path / "ws") as w:
        yield w


def _order(ws: Workspace, user: str, at: datetime, revenue: float) -> None:
    table = pa.table(
        {
            "event_id": [f"fresh-{user}"],
            "user_id": [user],
            "event_type": ["order"],
            "ts": pa.array([at], pa.timestamp("us", tz="UTC")),
            "revenue": [revenue],
            "currency": ["CNY"],
            "order_id": [f"fresh-order-{user}"],
        }
    )
    ingest_tables(ws.warehouse, events=table, options=IngestOptions(clock=ws.clock))


def test_an_order_refreshes_recency_stage_and_risk_as_the_full_scoring_would(
    ws: Workspace, tmp_path: Path
) -> None:
    user = lapsed_customer(ws)
    now = ws.clock.now()
    before = customer_view(ws, user).to_dict()
    assert before["lifecycle"]["stage"] in ("decline", "churned")
    old_risk = before["scores"]["churn_risk"]
    cache = RefreshCache()
    refresh_customers(ws, [user], cache=cache, accrue=False)  # population as of before
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    loyalty.apply_program(ws, path)

    _order(ws, user, now - timedelta(minutes=30), 199.5)
    result = refresh_customers(ws, [user])
    assert (result.users, result.scored) == (1, 1)
    assert result.stages[user] in ("growth", "mature")  # back from the lapse
    new_risk = result.risks[user]
    assert new_risk < old_risk  # a fresh order lowers the risk; the oracle below pins it

    # the view reads the appended score: recency, stage and risk are fresh
    after = customer_view(ws, user).to_dict()
    assert after["lifecycle"]["days_since_last"] == pytest.approx(30 / 1440, abs=1e-6)
    assert after["lifecycle"]["stage"] == result.stages[user]
    assert after["scores"]["churn_risk"] == pytest.approx(new_risk, abs=1e-12)
    assert after["scores"]["as_of"] == now.isoformat()
    assert after["scores"]["stage"] == result.stages[user]
    # the order's points: 1 per CNY, rounded down
    assert result.accrued == 1 and result.points == 199
    assert after["loyalty"]["balance"] + after["loyalty"]["pending"] == 199

    # oracle: the full scoring path as of the same instant gives the same risk
    _, full = score_customers(ws, as_of=now)
    row = full[full.user_id == user].iloc[0]
    assert row.churn_risk == pytest.approx(new_risk, abs=1e-12)
    assert row.stage == result.stages[user] and row.segment == after["scores"]["segment"]
    assert row.p_alive == pytest.approx(after["scores"]["p_alive"], abs=1e-12)
    assert list(row.reasons) == after["scores"]["reasons"]

    # with the population parts cached from before the order: the same to a hair
    cached = refresh_customers(ws, [user], cache=cache, accrue=False)
    assert cached.risks[user] == pytest.approx(new_risk, abs=0.02)
    # refreshing again accrues nothing twice
    assert refresh_customers(ws, [user]).accrued == 0


def test_refresh_of_many_customers_only_scores_them(ws: Workspace) -> None:
    sc = ws.table("scores")
    users = sorted(sc.user_id.to_pyarrow().to_pylist())[:300]
    rows_before = int(sc.count().to_pyarrow().as_py())
    result = refresh_customers(ws, [*users, "no-such-customer", None], cache=RefreshCache())
    assert result.users == 301 and result.scored == 300
    assert int(ws.table("scores").count().to_pyarrow().as_py()) == rows_before + 300
    # what the full path gives those customers as of the same instant
    _, full = score_customers(ws, as_of=ws.clock.now())
    full = full.set_index("user_id")
    for u in users[:50]:
        assert result.risks[u] == pytest.approx(full.loc[u, "churn_risk"], abs=0.02)


def test_without_a_model_stages_are_refreshed_and_nothing_is_scored(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2026, 3, 1, tzinfo=UTC))
    with init_workspace(tmp_path / "bare", clock=clock) as w:
        _order(w, "u1", datetime(2026, 2, 27, tzinfo=UTC), 10.0)
        result = refresh_customers(w, ["u1"])
    assert result.stages == {"u1": "new"} and result.scored == 0
    assert result.notes and "no saved model" in result.notes[0]
