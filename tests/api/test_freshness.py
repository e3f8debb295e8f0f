"""Freshness through the served app (issue 13, item 2): an order posted to
``/v1/events`` shows in ``GET /v1/users/{id}`` well within 60 s — recency, stage, a churn
risk re-scored by the saved model (the one the full scoring gives as of the same
instant) and the order's loyalty points — and in ``/v1/decide``'s profile, with the
background loader doing all of it; a round re-scores at most ``refresh_batch``
customers, the others wait for the next rounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import Keys, served

from journeys.fresh_support import (
    PROGRAM,
    lapsed_customer,
    shop_copy,
    trained_fixture,  # noqa: F401 - the fixture `trained`
)
from liucun import loyalty
from liucun.api import create_app
from liucun.core import ServeSettings
from liucun.models import score_customers
from liucun.workspace import Workspace

pytestmark = pytest.mark.slow
REVENUE = 199.5


@pytest.fixture
def shop(trained: Path, tmp_path: Path) -> Iterator[Workspace]:
    with shop_copy(trained, tmp_path / "ws") as ws:
        path = tmp_path / "program.yaml"
        path.write_text(PROGRAM, encoding="utf-8")
        loyalty.apply_program(ws, path)
        yield ws


def _poll(client: Any, user: str, headers: dict[str, str], since: datetime) -> dict[str, Any]:
    """GET the customer until a score written after ``since`` and points show."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/users/{user}", headers=headers).json()
        score, points = body["scores"], body["loyalty"]
        if score and datetime.fromisoformat(score["scored_at"]) > since and points["balance"]:
            return body  # type: ignore[no-any-return]
        time.sleep(0.25)
    raise AssertionError(f"the order did not show in GET /v1/users/{user} within 60 s")


def test_an_order_shows_in_the_profile_and_the_decision_within_a_minute(
    shop: Workspace,
) -> None:
    user = lapsed_customer(shop)
    keys = Keys(shop)
    read, decide = keys.header("read"), keys.header("decide")
    settings = ServeSettings(loader_interval_s=0.5, decide_holdout=0.0)
    with served(create_app(shop, settings, run_loader=True)) as client:
        before = client.get(f"/v1/users/{user}", headers=read).json()
        decided_before = client.post(
            "/v1/decide", json={"user_id": user, "placement": "home"}, headers=decide
        ).json()
        posted_at = shop.clock.now()
        order = {
            "event_id": f"fresh-{user}",
            "user_id": user,
            "event_type": "order",
            "ts": (posted_at - timedelta(minutes=30)).isoformat(),
            "revenue": REVENUE,
            "currency": "CNY",
            "order_id": f"fresh-order-{user}",
        }
        started = time.monotonic()
        r = client.post("/v1/events", json={"events": [order]}, headers=keys.header("ingest"))
        assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
        shop.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
        after = _poll(client, user, read, posted_at)
        took = time.monotonic() - started
        decided = client.post(
            "/v1/decide", json={"user_id": user, "placement": "home"}, headers=decide
        ).json()
    assert took < 60
    # before: lapsed, scored by the full run, no points
    assert before["lifecycle"]["stage"] in ("decline", "churned")
    assert before["loyalty"]["balance"] == 0
    old_risk = before["scores"]["churn_risk"]
    # after: the order 31 minutes before the view's now; back to growth or mature
    assert after["lifecycle"]["days_since_last"] == pytest.approx(31 / 1440, abs=1e-6)
    assert after["lifecycle"]["stage"] in ("growth", "mature")
    assert after["lifecycle"]["orders"] == before["lifecycle"]["orders"] + 1
    assert after["orders"][0]["event_id"] == f"fresh-{user}"
    score = after["scores"]
    assert datetime.fromisoformat(score["as_of"]) == posted_at + timedelta(minutes=1)
    assert score["stage"] == after["lifecycle"]["stage"]
    assert score["model_version"] == before["scores"]["model_version"]
    assert score["churn_risk"] < old_risk and score["reasons"]
    # the program's rule on the order: 1 point per CNY, rounded down
    assert after["loyalty"]["balance"] + after["loyalty"]["pending"] == int(REVENUE)
    assert after["loyalty"]["growth_value"] == int(REVENUE)
    # the decider's entry was rebuilt after the load: it reads the fresh score
    assert decided_before["profile"]["churn_risk"] == pytest.approx(old_risk, abs=1e-12)
    assert decided["profile"]["churn_risk"] == pytest.approx(score["churn_risk"], abs=1e-12)
    assert decided["profile"]["stage"] == after["lifecycle"]["stage"]
    # oracle: the full scoring path as of the same instant (the service's refresh computed
    # the population parts at that instant too)
    _, full = score_customers(shop, as_of=datetime.fromisoformat(score["as_of"]))
    row = full[full.user_id == user].iloc[0]
    assert row.churn_risk == pytest.approx(score["churn_risk"], abs=1e-9)
    assert row.stage == score["stage"] and list(row.reasons) == score["reasons"]


def test_a_round_refreshes_at_most_refresh_batch_customers_oldest_first(
    serve_app: Any, keys: Keys
) -> None:
    from api_support import event

    with serve_app(refresh_batch=2) as client:
        svc = client.app.state.service  # type: ignore[attr-defined]
        batch = [event(i, user_id=f"c{i}") for i in range(5)]
        r = client.post("/v1/events", json={"events": batch}, headers=keys.header("ingest"))
        assert r.status_code == 202
        rounds = []
        for _ in range(4):
            svc.load_once()
            rounds.append((sorted(svc.last_refresh.stages), svc.refresh_pending))
    # two a round, in the order loaded; the rest wait
    assert rounds[:3] == [(["c0", "c1"], 3), (["c2", "c3"], 1), (["c4"], 0)]
    assert rounds[3] == (["c4"], 0)  # nothing new: nothing refreshed again
    # no saved model: stages re-derived, nothing scored
    assert svc.last_refresh.risks == {} and svc.refresh_error is None
    assert "no saved model" in svc.last_refresh.notes[0]


def test_a_backlog_is_loaded_before_its_customers_are_refreshed(serve_app: Any, keys: Keys) -> None:
    from api_support import event

    with serve_app(loader_batch=4, refresh_max_delay_s=3600) as client:
        svc = client.app.state.service  # type: ignore[attr-defined]
        batch = [event(i, user_id=f"b{i}") for i in range(10)]
        r = client.post("/v1/events", json={"events": batch}, headers=keys.header("ingest"))
        assert r.status_code == 202
        seen = []
        for _ in range(3):
            done = svc.load_once()
            seen.append((done.rows, svc.refresh_pending, svc.last_refresh))
    # two full rounds (4 + 4 rows: more waits) refresh nobody; the last, partial one
    # refreshes all ten customers at once
    assert [(rows, pending) for rows, pending, _ in seen] == [(4, 4), (4, 8), (2, 0)]
    assert seen[0][2] is None and seen[1][2] is None
    assert sorted(seen[2][2].stages) == [f"b{i}" for i in range(10)]


def test_a_long_backlog_still_refreshes_within_refresh_max_delay_s(
    serve_app: Any, keys: Keys
) -> None:
    from api_support import event

    with serve_app(loader_batch=2, refresh_max_delay_s=0) as client:
        svc = client.app.state.service  # type: ignore[attr-defined]
        batch = [event(i, user_id=f"d{i}") for i in range(6)]
        r = client.post("/v1/events", json={"events": batch}, headers=keys.header("ingest"))
        assert r.status_code == 202
        svc.load_once()  # full, but the delay allowed is 0: refreshed now
        assert sorted(svc.last_refresh.stages) == ["d0", "d1"]


def test_the_loader_yields_to_a_burst_for_at_most_loader_max_delay_s(
    serve_app: Any, keys: Keys
) -> None:
    with serve_app(loader_yield_above=100, loader_max_delay_s=5) as client:
        svc = client.app.state.service  # type: ignore[attr-defined]
        t0 = svc._rate_mark[1]
        svc.accepted(50)  # 50 rows in 1 s: no burst
        assert not svc._yields(t0 + 1)
        svc.accepted(1000)  # 1,000 rows/s: a burst, the loader yields ...
        assert svc._yields(t0 + 2)
        svc.accepted(1000)
        assert svc._yields(t0 + 3)
        svc.accepted(5000)  # ... until it has yielded for 5 s, then it loads anyway
        assert not svc._yields(t0 + 7.5)
        svc.accepted(10)  # the burst is over: it loads every round again
        assert not svc._yields(t0 + 8.5)
        assert svc.yielded == 2
