"""Partner webhook subscriptions end to end, on SQLite and PostgreSQL: a real HTTP
receiver on 127.0.0.1 gets each stage_changed, risk_crossed, tier_changed,
journey_entered and journey_converted event once, signed with the subscription's own
secret (checked by an HMAC written here from the Standard Webhooks spec); a disabled
subscription and a suppressed customer get nothing; a second worker round sends
nothing again; the warehouse holds one journey_entered per enrolment and one
journey_converted per conversion; subscriptions are created, listed, disabled, rotated
and deleted with sentences for bad input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from delivery_receivers import (
    HttpReceiver,
    delivery_workspace,
    http_receiver,
    standard_webhooks_valid,
)
from journey_support import events, install_journey, spec, steps
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import ConfigError, SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.journeys import (
    SubscriptionExists,
    SubscriptionNotFound,
    add_suppression,
    create_subscription,
    delete_subscription,
    disable_subscription,
    list_outbox,
    list_subscriptions,
    rotate_secret,
    work_once,
)
from liucun.journeys._partner import outbox_key
from liucun.loyalty._tiers import tier_event_id, tier_events
from liucun.state import AuditEntry, JourneyEnrolment, WebhookSubscription

# signatures carry real instants: the receiver and the check below read the header's
NOW = datetime.now(UTC).replace(microsecond=0)
EXAMPLE_PROGRAM = Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml"
ALL = ["stage_changed", "risk_crossed", "tier_changed", "journey_entered", "journey_converted"]


def _scores(ws, rows: list[tuple[str, datetime, str, float, datetime]]) -> None:  # type: ignore[no-untyped-def]
    """Append score rows (user, as_of, stage, churn_risk, scored_at) as a scoring does."""
    from liucun.schema import arrow_schema

    schema = arrow_schema("scores")
    given = {
        "user_id": [r[0] for r in rows],
        "as_of": [r[1] for r in rows],
        "stage": [r[2] for r in rows],
        "churn_risk": [r[3] for r in rows],
        "scored_at": [r[4] for r in rows],
        "model": ["retention"] * len(rows),
        "model_version": ["1"] * len(rows),
    }
    table = pa.table(
        {
            f.name: pa.array(given[f.name], f.type)
            if f.name in given
            else pa.nulls(len(rows), f.type)
            for f in schema
        },
        schema=schema,
    )
    with ws.writing() as wh, wh.transaction() as tx:
        tx.append("scores", wh.read_arrow(table, name="_test_scores"))


def _tier_change(ws, user: str, at: datetime) -> str:  # type: ignore[no-untyped-def]
    """The tier_changed event the loyalty tier review writes for ``user`` (silver→gold)."""
    import pandas as pd

    event_id = tier_event_id("default", user, at, "gold")
    frame = tier_events(
        pd.DataFrame(
            {
                "event_id": [event_id],
                "user_id": [user],
                "from_tier": ["silver"],
                "to_tier": ["gold"],
                "direction": ["up"],
                "reason": ["growth 1200 in 365 days reaches gold (1000)"],
                "growth_in_window": [1200.0],
                "program_digest": ["d" * 64],
                "changed_at": [pd.Timestamp(at)],
            }
        )
    )
    ingest_tables(
        ws.warehouse,
        events=pa.Table.from_pandas(frame, preserve_index=False),
        options=IngestOptions(clock=ws.clock),
    )
    return event_id


def _warehouse_counts(ws) -> Counter[str]:  # type: ignore[no-untyped-def]
    ev = ws.table("events")
    got = (
        ev.filter(ev.event_type.isin(["journey_entered", "journey_converted"]))
        .event_type.value_counts()
        .to_pyarrow()
        .to_pylist()
    )
    return Counter({r["event_type"]: r["event_type_count"] for r in got})


def test_each_event_reaches_a_subscription_once_signed_with_its_secret(
    tmp_path: Path, state_url: str
) -> None:
    clock = SimulatedClock(NOW)
    ws = delivery_workspace(tmp_path / "ws", state_url, clock, {})
    crm = create_subscription(
        ws, name="crm", url="http://127.0.0.1:9/x", event_types=ALL, risk_threshold=0.6
    )
    off = create_subscription(ws, name="off", url="http://127.0.0.1:9/y", event_types=ALL)
    with (
        http_receiver(HttpReceiver(secret=crm.secret)) as rec,
        http_receiver(HttpReceiver(secret=off.secret)) as silent,
    ):
        with ws.state.write() as s:  # the receivers' ports are known now
            for row in s.scalars(select(WebhookSubscription)):
                row.url = rec.url if row.name == "crm" else silent.url
        disable_subscription(ws, "off")
        install_journey(
            ws,
            spec(
                name="welcome",
                nodes=[{"id": "done", "type": "exit"}],
                goal={"event": "order", "window_days": 7},
            ),
        )
        # what happens after the subscriptions were made
        clock.set(NOW + timedelta(minutes=1))
        t = NOW + timedelta(seconds=30)
        people = ["u1", "u2", "u3", "u4", "u5"]
        events(ws, [{"user_id": u, "event_type": "signup", "ts": t} for u in people])
        events(
            ws,
            [
                {
                    "user_id": u,
                    "event_type": "order",
                    "ts": t + timedelta(seconds=10),
                    "revenue": 80.0,
                    "order_id": f"o-{u}",
                }
                for u in ("u1", "u2", "u5")
            ],
        )
        # the loyalty tier review (the example program) gives u2 a tier: a tier_changed event
        loyalty.apply_program(ws, EXAMPLE_PROGRAM)
        loyalty.add_growth(ws, "u2", 6000, key="g-u2", earned_at=t)
        review = loyalty.review_tiers(ws)
        (change,) = loyalty.tier_history(ws, "u2")
        assert review.events_written == 1
        before, after = NOW - timedelta(days=1), NOW + timedelta(seconds=40)
        _scores(
            ws,
            [
                ("u3", NOW - timedelta(days=30), "growth", 0.5, before),
                ("u3", NOW, "decline", 0.55, after),  # a stage change, risk under 0.6
                ("u4", NOW - timedelta(days=30), "mature", 0.3, before),
                ("u4", NOW, "mature", 0.8, after),  # risk crosses 0.6, same stage
                ("u1", NOW, "new", 0.9, after),  # a first score: no stage change; risk crossed
            ],
        )
        # u5 asked for nothing more: no partner hears of them
        add_suppression(ws, "u5", channel="*", kind="unsubscribed", reason="test")

        first = work_once(ws, worker_id="w1")
        with ws.state.read() as s:
            enrolled = s.scalar(select(func.count()).select_from(JourneyEnrolment))
        converted = len(steps(ws, "converted"))
        assert (enrolled, converted) == (5, 3)
        assert first.journey_events == enrolled + converted
        assert first.partner == {
            "journey_entered": 4,
            "journey_converted": 2,
            "stage_changed": 1,
            "risk_crossed": 2,
            "tier_changed": 1,
        }
        hits = list(rec.hits)
        assert len(hits) == 10 and set(rec.raw.values()) == {1}  # each webhook-id once
        for h in hits:
            assert standard_webhooks_valid(crm.secret, h.headers, h.body), h.headers
            assert not standard_webhooks_valid(off.secret, h.headers, h.body)
            assert abs(int(h.headers["webhook-timestamp"]) - NOW.timestamp()) < 600
        bodies = [h.json() for h in hits]
        assert Counter(b["type"] for b in bodies) == {
            "journey_entered": 4,
            "journey_converted": 2,
            "stage_changed": 1,
            "risk_crossed": 2,
            "tier_changed": 1,
        }
        assert "u5" not in {b["data"]["user_id"] for b in bodies}
        by_type = {b["type"]: b for b in bodies}
        stage = by_type["stage_changed"]
        assert stage["data"] == {
            "user_id": "u3",
            "from": "growth",
            "to": "decline",
            "as_of": NOW.isoformat(),
            "model": "retention",
            "model_version": "1",
        }
        assert stage["occurred_at"] == NOW.isoformat() and set(stage) == {
            "type",
            "timestamp",
            "occurred_at",
            "data",
        }
        risk = sorted(
            (b["data"]["user_id"], b["data"]["from"], b["data"]["to"])
            for b in bodies
            if b["type"] == "risk_crossed"
        )
        assert risk == [("u1", None, 0.9), ("u4", 0.3, 0.8)]
        tier = by_type["tier_changed"]
        assert tier["data"]["user_id"] == "u2"
        assert (tier["data"]["from"], tier["data"]["to"], tier["data"]["program"]) == (
            change.from_tier,
            change.to_tier,
            "default",
        )
        assert tier["data"]["from"] is None and tier["data"]["to"] in ("进阶", "尊享")
        assert tier["data"]["direction"] == change.direction == "joined"
        tier_key = next(h.headers["webhook-id"] for h in hits if h.json()["type"] == "tier_changed")
        # the tier names are Chinese: the webhook-id (an HTTP header) is the key's hash
        assert tier_key == outbox_key(crm.subscription.id, "tier_changed", "u2", change.event_id)
        assert tier_key.isascii() and not change.event_id.isascii()
        conv = sorted(b["data"]["user_id"] for b in bodies if b["type"] == "journey_converted")
        assert conv == ["u1", "u2"]
        entered = [b for b in bodies if b["type"] == "journey_entered"]
        assert {b["data"]["journey"] for b in entered} == {"welcome"}
        assert {b["data"]["arm"] for b in entered} <= {"control", "treatment"}
        assert silent.hits == []  # the disabled subscription
        sent = [
            r for r in list_outbox(ws) if r["provider"] == f"subscription:{crm.subscription.id}"
        ]
        assert len(sent) == 10 and {r["status"] for r in sent} == {"sent"}

        # the warehouse holds liucun's journey events, as many as state's rows
        assert _warehouse_counts(ws) == {
            "journey_entered": enrolled,
            "journey_converted": converted,
        }

        # another round, later: nothing is sent or written twice
        clock.set(NOW + timedelta(minutes=3))
        again = work_once(ws, worker_id="w2")
        assert again.partner == {} and again.journey_events == 0
        assert len(rec.hits) == 10
        assert _warehouse_counts(ws) == {
            "journey_entered": enrolled,
            "journey_converted": converted,
        }
        # partner webhooks are not messages to the customer: no message_sent in the warehouse
        ev = ws.table("events")
        assert ev.filter(ev.event_type == "message_sent").count().to_pyarrow().as_py() == 0
    ws.close()


def test_a_rotated_secret_signs_what_is_sent_after_and_a_deleted_subscription_hears_nothing(
    tmp_path: Path, state_url: str
) -> None:
    clock = SimulatedClock(NOW)
    ws = delivery_workspace(tmp_path / "ws", state_url, clock, {})
    made = create_subscription(
        ws, name="erp", url="http://127.0.0.1:9/", event_types=["tier_changed"]
    )
    rotated = rotate_secret(ws, "erp")
    assert rotated.secret != made.secret and rotated.subscription.rotated_at == NOW
    with http_receiver(HttpReceiver(secret=rotated.secret)) as rec:
        with ws.state.write() as s:
            row = s.scalar(select(WebhookSubscription))
            row.url = rec.url
            # stored encrypted: neither secret is in the row
            assert made.secret not in row.secret_encrypted
            assert rotated.secret not in row.secret_encrypted
        clock.set(NOW + timedelta(minutes=1))
        _tier_change(ws, "v1", NOW + timedelta(seconds=5))
        assert work_once(ws, worker_id="w").partner == {"tier_changed": 1}
        assert len(rec.hits) == 1 and rec.hits[0].verified
        h = rec.hits[0]
        assert standard_webhooks_valid(rotated.secret, h.headers, h.body)
        assert not standard_webhooks_valid(made.secret, h.headers, h.body)
        # a load that committed late, with an ingested_at before the cursor, still counts
        clock.set(NOW + timedelta(seconds=30), allow_backwards=True)
        _tier_change(ws, "late", NOW + timedelta(seconds=20))
        clock.set(NOW + timedelta(minutes=1, seconds=30))
        assert work_once(ws, worker_id="w").partner == {"tier_changed": 1}
        assert [h.json()["data"]["user_id"] for h in rec.hits] == ["v1", "late"]
        assert work_once(ws, worker_id="w").partner == {}  # and nothing twice
        gone = delete_subscription(ws, "erp")
        assert gone.name == "erp" and list_subscriptions(ws) == []
        clock.set(NOW + timedelta(minutes=2))
        _tier_change(ws, "v2", NOW + timedelta(seconds=70))
        assert work_once(ws, worker_id="w").partner == {}
        assert len(rec.hits) == 2
    with ws.state.read() as s:
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert [a for a in actions if a.startswith("webhook.")] == [
        "webhook.subscription.create",
        "webhook.subscription.rotate",
        "webhook.subscription.delete",
    ]
    ws.close()


def test_bad_subscriptions_are_refused_with_a_sentence(tmp_path: Path) -> None:
    clock = SimulatedClock(NOW)
    ws = delivery_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 's.sqlite'}", clock, {})
    ok = {"name": "crm", "url": "https://crm.example/hook", "event_types": ["stage_changed"]}
    create_subscription(ws, **ok)
    with pytest.raises(SubscriptionExists, match="exists already"):
        create_subscription(ws, **ok)
    with pytest.raises(ConfigError, match="'points' is not an event a partner can subscribe"):
        create_subscription(ws, **{**ok, "name": "b", "event_types": ["points"]})
    with pytest.raises(ConfigError, match="needs at least one event type"):
        create_subscription(ws, **{**ok, "name": "b", "event_types": []})
    with pytest.raises(ConfigError, match="is not an http"):
        create_subscription(ws, **{**ok, "name": "b", "url": "ftp://crm.example/"})
    with pytest.raises(ConfigError, match="is not a subscription name"):
        create_subscription(ws, **{**ok, "name": "a/b"})
    with pytest.raises(ConfigError, match="between 0 and 1"):
        create_subscription(ws, **{**ok, "name": "b", "risk_threshold": 1.5})
    with pytest.raises(SubscriptionNotFound, match="no webhook subscription 'nope'"):
        disable_subscription(ws, "nope")
    shown = list_subscriptions(ws)
    assert [(s.name, s.event_types, s.active) for s in shown] == [("crm", ("stage_changed",), True)]
    assert "secret" not in json.dumps(shown[0].to_dict())
    done = disable_subscription(ws, "crm")
    assert (done.active, done.disabled_at) == (False, NOW)
    assert disable_subscription(ws, "crm").disabled_at == NOW  # again: nothing changes
    assert list_subscriptions(ws, include_inactive=False) == []
    ws.close()


def test_points_changed_and_coupon_issued_come_from_the_ledger_never_with_the_code(
    tmp_path: Path, state_url: str
) -> None:
    clock = SimulatedClock(NOW - timedelta(minutes=1))
    ws = delivery_workspace(tmp_path / "ws", state_url, clock, {})
    loyalty.apply_program(ws, EXAMPLE_PROGRAM)
    loyalty.award(ws, "m1", 5, key="before")  # before the subscription: not sent
    clock.set(NOW)
    with http_receiver(HttpReceiver(secret=None)) as rec:
        made = create_subscription(
            ws, name="pos", url=rec.url, event_types=["points_changed", "coupon_issued"]
        )
        clock.set(NOW + timedelta(minutes=1))
        loyalty.award(ws, "m1", 100, key="a1", reason="welcome")
        loyalty.redeem(ws, "m1", 30, key="r1")
        issued = loyalty.issue_coupon(ws, "recall_10", "m2", key="c1")
        loyalty.award(ws, "m3", 50, key="a3")
        add_suppression(ws, "m3", channel="webhook", kind="manual", reason="test")
        assert work_once(ws, worker_id="w").partner == {"points_changed": 2, "coupon_issued": 1}
        bodies = sorted((h.json() for h in rec.hits), key=lambda b: b["occurred_at"] + b["type"])
        assert all(standard_webhooks_valid(made.secret, h.headers, h.body) for h in rec.hits)
        points = [b["data"] for b in bodies if b["type"] == "points_changed"]
        assert [(p["user_id"], p["from"], p["to"], p["points"]) for p in points] == [
            ("m1", 5, 105, 100),
            ("m1", 105, 75, -30),
        ]
        (coupon,) = [b["data"] for b in bodies if b["type"] == "coupon_issued"]
        assert (coupon["user_id"], coupon["coupon_id"], coupon["amount"]) == (
            "m2",
            "recall_10",
            10.0,
        )
        assert issued.code not in json.dumps(bodies)  # the code stays in liucun
        clock.set(NOW + timedelta(minutes=2))
        assert work_once(ws, worker_id="w").partner == {}
        assert len(rec.hits) == 3
    ws.close()
