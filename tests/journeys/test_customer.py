"""The customer 360 view: every section for a customer with history in every store, no
contact data in clear anywhere in it, empty sections (not errors) on a bare workspace,
NotFound for an unknown id, and the stage's ``since`` worked from the customer's own
orders — checked against :func:`liucun.segments.lifecycle_stages` for every customer
of a simulated shop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from journey_support import enrol, events, spec

from liucun import loyalty
from liucun.core import NotFound, SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.journeys import customer_view
from liucun.journeys._consent import add_suppression, record_consent
from liucun.journeys._contacts import set_contact
from liucun.journeys._customer import _fallback_cadence, stage_runs
from liucun.journeys._tasks import open_task
from liucun.segments import lifecycle_stages
from liucun.state import CustomerTag
from liucun.workspace import Workspace, init_workspace, open_workspace

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
EMAIL = "li.lei@example.com"
PHONE = "+86 138 0013 8000"
PROGRAM = """
name: shop
currency: CNY
tiers:
  - {name: silver, threshold: 0}
  - {name: gold, threshold: 500}
coupons:
  - {id: ten, kind: value, amount: 10}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", clock=SimulatedClock(T0)) as w:
        users = pa.table(
            {
                "user_id": ["u1", "u2"],
                "signup_ts": pa.array(
                    [datetime(2025, 12, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")
                ),
                "country": ["CN", "CN"],
                "email": [EMAIL, "han.mei@example.com"],
                "mobile_phone": [PHONE, None],
                "vip_note": ["likes tea", None],
            }
        )
        ingest_tables(
            w.warehouse, users=users, options=IngestOptions(clock=w.clock, hash_key=w.hash_key)
        )
        events(
            w,
            [
                {
                    "user_id": "u1",
                    "event_type": "order",
                    "ts": datetime(2026, 1, d, tzinfo=UTC),
                    "revenue": r,
                    "order_id": f"o{d}",
                }
                for d, r in ((5, 100.0), (12, 60.0), (19, 80.0))
            ]
            + [
                {
                    "user_id": "u2",
                    "event_type": "order",
                    "ts": datetime(2026, 2, 20, tzinfo=UTC),
                    "revenue": 50.0,
                    "order_id": "o99",
                },
                {"user_id": "u1", "event_type": "visit", "ts": datetime(2026, 2, 28, tzinfo=UTC)},
            ],
        )
        yield w


def _full_history(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    loyalty.apply_program(ws, path)
    loyalty.award(ws, "u1", 120, key="k1", expires_at=T0 + timedelta(days=10))
    loyalty.award(ws, "u1", 30, key="k2", expires_at=T0 + timedelta(days=90))
    loyalty.issue_coupon(ws, "ten", "u1", key="c1")
    set_contact(ws, "u1", "email", EMAIL)
    set_contact(ws, "u1", "sms", PHONE)
    record_consent(
        ws,
        "u1",
        purpose="marketing",
        channel="email",
        status="granted",
        source="signup_form",
        at=T0 - timedelta(days=9),
    )
    record_consent(
        ws,
        "u1",
        purpose="marketing",
        channel="email",
        status="revoked",
        source="app",
        at=T0 - timedelta(days=1),
    )
    record_consent(ws, "u1", purpose="service", channel="*", status="granted", source="app")
    add_suppression(ws, "u1", channel="sms", kind="complaint")
    with ws.state.write() as s:
        s.add(CustomerTag(user_id="u1", tag="vip", value="gold", source="test", set_at=T0))
        open_task(s, key="t1", user_id="u1", queue="care", summary="call back", sla_hours=4, now=T0)
        open_task(s, key="t2", user_id="u1", queue="care", summary="done", sla_hours=4, now=T0)
    from liucun.journeys import close_task, list_tasks

    close_task(ws, next(t.id for t in list_tasks(ws, user_id="u1") if t.key == "t2"))
    journey = spec(
        nodes=[
            {"id": "w", "type": "wait", "duration": "3d", "next": "done"},
            {"id": "done", "type": "exit"},
        ]
    )
    enrol(ws, journey, [("u1", "k", T0)])
    from liucun.journeys import advance_due

    advance_due(ws, worker_id="test", now=T0)


def test_every_section_of_a_customer_with_history(ws: Workspace, tmp_path: Path) -> None:
    _full_history(ws, tmp_path)
    view = customer_view(ws, "u1", recent=2)
    d = view.to_dict()
    assert d["user_id"] == "u1" and d["as_of"] == T0.isoformat()
    assert d["attributes"]["country"] == "CN"
    assert d["attributes"]["attributes"] == {"vip_note": "likes tea"}
    assert {"user_id", "email_hash", "phone_hash"} <= {i["alias_type"] for i in d["identities"]}
    assert d["tags"] == {"vip": "gold"}
    # three orders a week apart, the last on 19 Jan: decline after 30 days of silence
    life = d["lifecycle"]
    assert life["stage"] == "decline" and life["orders"] == 3
    assert life["since"] == "2026-02-18T00:00:01+00:00"
    assert life["cadence_days"] == pytest.approx(7.0)
    assert d["rfm"]["frequency"] == 3 and d["rfm"]["monetary"] == pytest.approx(240.0)
    assert d["scores"] is None  # never scored
    lo = d["loyalty"]
    assert (lo["program"], lo["balance"], lo["expiring_points"]) == ("shop", 150, 120)
    assert [c["coupon_id"] for c in lo["coupons"]] == ["ten"]
    consents = {(c["purpose"], c["channel"]): c["status"] for c in d["consents"]}
    assert consents == {("marketing", "email"): "revoked", ("service", "*"): "granted"}
    assert d["contacts"] == ["email", "sms"]
    assert [(s["channel"], s["kind"]) for s in d["suppressions"]] == [("sms", "complaint")]
    [j] = d["journeys"]
    assert (j["journey"], j["version"], j["node"], j["status"]) == ("j1", 1, "w", "active")
    assert j["wake_at"] == (T0 + timedelta(days=3)).isoformat() and j["arm"] in (
        "treatment",
        "control",
    )
    assert [t["summary"] for t in d["tasks"]] == ["call back"]  # the closed one is not listed
    assert [o["order_id"] for o in d["orders"]] == ["o19", "o12"]
    assert [e["event_type"] for e in d["events"]] == ["visit", "order"]
    json.dumps(d)  # JSON-ready as it is


def test_no_contact_data_in_clear(ws: Workspace, tmp_path: Path) -> None:
    _full_history(ws, tmp_path)
    text = json.dumps(customer_view(ws, "u1").to_dict(), ensure_ascii=False)
    for secret in (EMAIL, PHONE, "13800138000", "li.lei", "hmac:"):
        assert secret not in text
    # nor the keyed hash of the address
    assert ws.keyed_hash(EMAIL) not in text


def test_a_bare_workspace_gives_empty_sections(ws: Workspace) -> None:
    d = customer_view(ws, "u2").to_dict()
    assert d["scores"] is None and d["loyalty"] is None
    assert d["consents"] == [] and d["journeys"] == [] and d["tasks"] == []
    assert d["lifecycle"]["stage"] == "new"
    assert d["lifecycle"]["since"] == "2026-02-20T00:00:00+00:00"


def test_unknown_customer_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFound, match="no customer 'nobody'"):
        customer_view(ws, "nobody")
    with pytest.raises(LookupError):
        customer_view(ws, "  ")


@pytest.mark.slow
def test_stage_runs_end_in_the_lifecycle_stage_of_every_customer(shop_workspace: Path) -> None:
    with open_workspace(shop_workspace) as ws:
        as_of = datetime(2026, 9, 1, tzinfo=UTC)
        ev = ws.events()
        stages = lifecycle_stages(ev, as_of=as_of, users=ws.customers()).to_pandas()
        bought = ev.filter((ev.event_type == "order") & ev.user_id.notnull() & (ev.ts < as_of))
        orders = bought.select("user_id", "ts").to_pandas()
        fallback = _fallback_cadence(ev, as_of)
    by_user = {u: list(g.ts) for u, g in orders.groupby("user_id")}
    buyers = stages[stages.orders > 0]
    assert len(buyers) > 1000
    counts = buyers.stage.value_counts()
    assert {"new", "growth", "mature", "decline", "churned"} <= set(counts.index)
    wrong = [
        (u, s)
        for u, s in zip(buyers.user_id, buyers.stage, strict=True)
        if stage_runs([t.to_pydatetime() for t in by_user[u]], as_of, fallback_cadence=fallback)[
            -1
        ][1]
        != s
    ]
    assert wrong == []
