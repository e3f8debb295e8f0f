"""Send-time guards on SQLite and PostgreSQL: consent read at send time (a revocation
between enqueue and send stops the send), global suppression by user id and by address
hash, frequency caps per local day and week and per channel, arbitration by expected
value (the loser deferred, not dropped, naming the winner; it competes again when due),
the coupon value cap, and one query per guard for the whole batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from liucun.core import SimulatedClock
from liucun.journeys._consent import add_suppression, record_consent, record_consents
from liucun.journeys._guards import Verdict, review_batch
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import Contact, OutboxMessage
from liucun.workspace import Workspace, init_workspace

# 10:00 in Shanghai, 2026-03-02 (a Monday)
T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
SH = {"timezone": "Asia/Shanghai", "country": "CN"}


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def put(ws: Workspace, *items: tuple[str, str, str, dict[str, Any]]) -> None:
    """Enqueue (key, user, channel, payload) rows."""
    with ws.state.write() as s:
        enqueue(
            s,
            [
                Outgoing(
                    key=k,
                    user_id=u,
                    channel=c,
                    journey=p.pop("journey", "j1"),
                    node="n1",
                    payload={"purpose": "marketing", **SH, **p},
                )
                for k, u, c, p in items
            ],
            now=ws.clock.now(),
        )


def review(ws: Workspace, now: datetime | None = None) -> dict[str, Verdict]:
    """Review every pending row; key → verdict."""
    with ws.state.write() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
        ).all()
        verdicts = review_batch(s, ws, rows, now=now or ws.clock.now())
        return {r.key: v for r, v in zip(rows, verdicts, strict=True)}


def mark_sent(ws: Workspace, key: str, at: datetime) -> None:
    with ws.state.write() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == key)
            .values(status="sent", sent_at=at, updated_at=at)
        )


def grant(ws: Workspace, *users: str, channel: str = "*") -> None:
    for u in users:
        record_consent(ws, u, purpose="marketing", channel=channel, status="granted", source="test")


def test_marketing_needs_granted_consent_and_a_revocation_stops_a_queued_send(
    ws: Workspace,
) -> None:
    grant(ws, "u1")
    put(ws, ("a", "u1", "email", {}), ("b", "u2", "email", {}))
    first = review(ws)
    assert first["a"] == Verdict("send")
    assert first["b"].action == "suppress" and first["b"].reason == "consent"
    assert first["b"].detail == {"purpose": "marketing", "channel": "email", "status": None}
    # revoked after the row was queued, before it is sent: read at send time
    ws.clock.advance(timedelta(minutes=5))
    record_consent(ws, "u1", purpose="marketing", channel="email", status="revoked", source="app")
    again = review(ws)
    assert again["a"].action == "suppress" and again["a"].reason == "consent"
    assert again["a"].detail["status"] == "revoked"


def test_channel_record_and_star_record_latest_wins(ws: Workspace) -> None:
    record_consent(ws, "u1", purpose="marketing", channel="*", status="granted", source="t")
    ws.clock.advance(timedelta(minutes=1))
    record_consent(ws, "u1", purpose="marketing", channel="sms", status="denied", source="t")
    put(ws, ("e", "u1", "email", {}), ("s", "u1", "sms", {}))
    got = review(ws)
    assert got["e"].action == "send"
    assert got["s"].reason == "consent"
    # a later '*' grant overrides the earlier sms denial
    ws.clock.advance(timedelta(minutes=1))
    record_consent(ws, "u1", purpose="marketing", channel="*", status="granted", source="t")
    assert review(ws)["s"].action == "send"


def test_service_and_transactional_need_no_record_but_honour_a_denial(ws: Workspace) -> None:
    put(
        ws,
        ("s1", "u1", "email", {"purpose": "service"}),
        ("t1", "u2", "email", {"purpose": "transactional"}),
        ("t2", "u3", "email", {"purpose": "transactional"}),
    )
    record_consent(ws, "u3", purpose="transactional", channel="email", status="denied", source="t")
    got = review(ws)
    assert got["s1"].action == "send" and got["t1"].action == "send"
    assert got["t2"].reason == "consent"


def test_consent_not_required_setting(ws: Workspace) -> None:
    ws.settings.guards.consent_required = False
    put(ws, ("a", "u1", "push", {}), ("b", "u2", "push", {}))
    record_consent(ws, "u2", purpose="marketing", channel="push", status="denied", source="t")
    got = review(ws)
    assert got["a"].action == "send" and got["b"].reason == "consent"


def test_global_suppression_by_user_and_address_hash(ws: Workspace) -> None:
    grant(ws, "u1", "u2", "u3", "u4")
    with ws.state.write() as s:
        s.add(
            Contact(
                user_id="u2",
                channel="email",
                address_encrypted="x",
                address_hash="h-u2",
                updated_at=T0,
            )
        )
    add_suppression(ws, "u1", channel="*", kind="unsubscribed")
    add_suppression(ws, "h-u2", channel="email", kind="bounced")
    add_suppression(ws, "u3", channel="sms", kind="complaint")
    add_suppression(ws, "u4", channel="*", kind="erased")
    put(
        ws,
        ("1e", "u1", "email", {}),
        ("1c", "u1", "coupon", {"coupon_id": "c"}),
        ("2e", "u2", "email", {}),
        ("2s", "u2", "sms", {}),
        ("3e", "u3", "email", {}),
        ("3s", "u3", "sms", {}),
        ("4t", "u4", "tag", {"tag": "vip"}),
    )
    got = review(ws)
    assert got["1e"].reason == "suppressed:unsubscribed"
    assert got["1c"].action == "send"  # an unsubscribe stops contact, not a coupon
    assert got["2e"].reason == "suppressed:bounced"
    assert got["2e"].detail["subject"] == "address"
    assert got["2s"].action == "send"
    assert got["3e"].action == "send" and got["3s"].reason == "suppressed:complaint"
    assert got["4t"].reason == "suppressed:erased"  # erasure stops everything


def test_daily_cap_counts_sent_rows_in_the_local_day_and_defers_to_local_midnight(
    ws: Workspace,
) -> None:
    ws.settings.guards.max_per_day = 2
    ws.settings.guards.max_per_week = None
    grant(ws, "u1")
    # two sent yesterday evening UTC = today 00:30 and 01:00 in Shanghai
    put(ws, ("old1", "u1", "email", {}), ("old2", "u1", "push", {}))
    mark_sent(ws, "old1", datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    mark_sent(ws, "old2", datetime(2026, 3, 1, 17, 0, tzinfo=UTC))
    put(ws, ("new", "u1", "sms", {}))
    got = review(ws)["new"]
    assert got.action == "defer" and got.reason == "frequency_cap"
    assert got.detail["cap"] == "max_per_day" and got.detail["count"] == 2
    # next Shanghai midnight is 16:00 UTC, inside quiet hours (21–08): held to 08:00 local
    assert got.until == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    # in New York those sends were on 1 March: today (2 March, 21:00 UTC is 16:00 local) is free
    with ws.state.write() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == "new")
            .values(payload='{"purpose": "marketing", "timezone": "America/New_York"}')
        )
    assert review(ws, datetime(2026, 3, 2, 21, tzinfo=UTC))["new"].action == "send"


def test_weekly_cap_waits_until_the_oldest_send_leaves_the_week(ws: Workspace) -> None:
    g = ws.settings.guards
    g.max_per_day, g.max_per_week = None, 3
    grant(ws, "u1")
    days = [datetime(2026, 2, 24, 3, tzinfo=UTC), datetime(2026, 2, 26, 3, tzinfo=UTC)]
    days.append(datetime(2026, 3, 1, 3, tzinfo=UTC))
    for i, at in enumerate(days):
        put(ws, (f"old{i}", "u1", "email", {}))
        mark_sent(ws, f"old{i}", at)
    put(ws, ("new", "u1", "wechat", {}))
    got = review(ws)["new"]
    assert got.reason == "frequency_cap" and got.detail["cap"] == "max_per_week"
    # the week of 2 March counts 24 Feb .. 2 Mar (3 sends); on 3 March it is 25 Feb .. 3 Mar
    # (2): Shanghai midnight of 3 March is in quiet hours, so 08:00 local = 00:00 UTC
    assert got.until == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


def test_channel_cap_and_uncapped_channels(ws: Workspace) -> None:
    g = ws.settings.guards
    g.max_per_day, g.max_per_week, g.channel_max_per_day = 5, None, {"sms": 1}
    grant(ws, "u1")
    put(
        ws,
        ("s1", "u1", "sms", {"value": 2.0}),
        ("s2", "u1", "sms", {"value": 1.0}),
        ("e1", "u1", "email", {}),
        ("t1", "u1", "sms", {"purpose": "transactional"}),
        ("w1", "u1", "webhook", {}),
        ("p1", "u1", "points", {"points": 10}),
    )
    got = review(ws)
    assert got["s1"].action == "send"
    assert got["s2"].action == "defer" and got["s2"].detail["cap"] == "channel_max_per_day.sms"
    assert got["s2"].reason == "arbitration"
    assert {got[k].action for k in ("e1", "t1", "w1", "p1")} == {"send"}


def test_arbitration_by_value_defers_the_rest_naming_the_winner(ws: Workspace) -> None:
    g = ws.settings.guards
    g.max_per_day, g.max_per_week = 1, None
    grant(ws, "u1", "u2")
    put(
        ws,
        ("low", "u1", "email", {"value": 0.5, "journey": "winback"}),
        ("high", "u1", "push", {"value": 3.2, "journey": "birthday"}),
        ("mid", "u1", "sms", {"value": 1.0, "journey": "replenish"}),
        ("other", "u2", "email", {"value": 0.1}),
    )
    got = review(ws)
    assert got["high"].action == "send" and got["other"].action == "send"
    for key in ("low", "mid"):
        assert got[key].action == "defer" and got[key].reason == "arbitration"
        assert got[key].detail["winner"]["journey"] == "birthday"
        assert got[key].until == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    # the winner went out; the deferred rows compete again when due: the best of them wins
    mark_sent(ws, "high", T0)
    with ws.state.write() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.key == "other").values(status="sent"))
    ws.clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    later = review(ws)
    assert later["mid"].action == "send"
    assert later["low"].reason == "arbitration"
    assert later["low"].detail["winner"]["journey"] == "replenish"


def test_coupon_value_cap_over_30_days(ws: Workspace) -> None:
    ws.settings.guards.coupon_value_cap = 30.0
    put(ws, ("c0", "u1", "coupon", {"coupon_id": "x", "face_value": 20}))
    mark_sent(ws, "c0", T0 - timedelta(days=10))
    put(ws, ("c1", "u1", "coupon", {"coupon_id": "x", "face_value": 20}))
    put(ws, ("c2", "u2", "coupon", {"coupon_id": "x", "face_value": 20}))
    put(ws, ("c3", "u2", "coupon", {"coupon_id": "x", "face_value": 15}))
    got = review(ws)
    assert got["c1"].action == "suppress" and got["c1"].reason == "coupon_cap"
    assert got["c1"].detail == {"cap": 30.0, "used_30d": 20.0, "face_value": 20.0}
    # two in one batch: the first fits, the second would make 35
    assert got["c2"].action == "send" and got["c3"].reason == "coupon_cap"
    # 31 days after c0 it no longer counts
    assert review(ws, T0 + timedelta(days=21))["c1"].action == "send"


def test_one_query_per_guard_for_the_whole_batch(ws: Workspace) -> None:
    g = ws.settings.guards
    g.max_per_day, g.coupon_value_cap = 3, 100.0
    users = [f"u{i}" for i in range(300)]
    record_consents(
        ws,
        [
            {
                "user_id": u,
                "purpose": "marketing",
                "channel": "*",
                "status": "granted",
                "source": "t",
            }
            for u in users[:200]
        ],
    )
    put(
        ws,
        *[(f"e{u}", u, "email", {"value": 1.0}) for u in users],
        *[(f"c{u}", u, "coupon", {"coupon_id": "x", "face_value": 5}) for u in users],
    )
    statements: list[str] = []
    engine = ws.state.engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    ws.clock.set(datetime(2026, 3, 2, 4, tzinfo=UTC))  # 12:00 in Shanghai
    with ws.state.write() as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        event.listen(engine, "before_cursor_execute", count)
        try:
            verdicts = review_batch(s, ws, rows, now=ws.clock.now())
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(verdicts) == 600
    assert [v.action for v in verdicts[:200]] == ["send"] * 200
    assert [v.reason for v in verdicts[200:300]] == ["consent"] * 100
    assert [v.action for v in verdicts[300:]] == ["send"] * 300
    # contacts, suppressions, consents, coupons sent, capped rows sent: one each
    assert len(statements) == 5, statements
