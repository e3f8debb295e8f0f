"""Frequency caps and arbitration as properties (hypothesis, SQLite): whatever was sent
before and whatever competes in a batch, the approved rows never take a customer over a
daily, weekly or channel cap in their local calendar; nothing is dropped (every other row
is deferred to an instant after now at which the budget has room); and the approved rows
of a customer are the most valuable of the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from liucun.core import SimulatedClock
from liucun.journeys._consent import record_consent
from liucun.journeys._guards import review_batch
from liucun.journeys._local_time import local_day
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.state import OutboxMessage
from liucun.workspace import init_workspace

NOW = datetime(2026, 3, 8, 15, tzinfo=UTC)  # the day New York springs forward
ZONES = ("Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
CHANNELS = ("email", "sms", "in_app")  # in_app: capped but never held by quiet hours


rows_st = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2"]),
        st.sampled_from(CHANNELS),
        st.integers(0, 9),  # value
    ),
    min_size=1,
    max_size=8,
)
sent_st = st.lists(
    st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(CHANNELS), st.integers(0, 8 * 24)),
    max_size=3,
)


def test_caps_and_arbitration_properties(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", clock=SimulatedClock(NOW))
    for u in ("u1", "u2"):
        record_consent(ws, u, purpose="marketing", channel="*", status="granted", source="t")
    g = ws.settings.guards
    g.quiet_start = g.quiet_end = "00:00"  # no quiet hours: caps alone decide

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        rows=rows_st,
        sent=sent_st,
        tz=st.sampled_from(ZONES),
        per_day=st.integers(1, 3),
        per_week=st.integers(2, 8),
        sms_cap=st.sampled_from([None, 1]),
    )
    def check(rows, sent, tz, per_day, per_week, sms_cap) -> None:  # type: ignore[no-untyped-def]
        g.max_per_day, g.max_per_week = per_day, per_week
        g.channel_max_per_day = {} if sms_cap is None else {"sms": sms_cap}
        payload = {"purpose": "marketing", "timezone": tz}
        with ws.state.write() as s:
            s.execute(delete(OutboxMessage))
            enqueue(
                s,
                [
                    Outgoing(key=f"old{i}", user_id=u, channel=c, payload=payload)
                    for i, (u, c, _) in enumerate(sent)
                ]
                + [
                    Outgoing(key=f"new{i}", user_id=u, channel=c, payload={**payload, "value": v})
                    for i, (u, c, v) in enumerate(rows)
                ],
                now=NOW,
            )
            for i, (_, _, hours) in enumerate(sent):
                at = NOW - timedelta(hours=hours)
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.key == f"old{i}")
                    .values(status="sent", sent_at=at, updated_at=at)
                )
        with ws.state.write() as s:
            batch = s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.key.like("new%"))
                .order_by(OutboxMessage.id)
            ).all()
            verdicts = review_batch(s, ws, batch, now=NOW)
        today = local_day(NOW, tz)

        def counts(events: list[tuple[str, datetime]], day) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
            on_day = [c for c, at in events if local_day(at, tz) == day]
            week = [c for c, at in events if 0 <= (day - local_day(at, tz)).days < 7]
            return len(on_day), len(week), on_day.count("sms")

        for user in ("u1", "u2"):
            before = [(c, NOW - timedelta(hours=h)) for u, c, h in sent if u == user]
            mine = [(r, v) for r, v in zip(rows, verdicts, strict=True) if r[0] == user]
            approved = [(r[1], NOW) for r, v in mine if v.action == "send"]
            day, week, sms = counts(before + approved, today)
            if approved:  # what was approved fits (what was there before may not)
                assert day <= per_day and week <= per_week
                if sms_cap is not None and any(c == "sms" for c, _ in approved):
                    assert sms <= sms_cap
            for r, v in mine:
                assert v.action in ("send", "defer")  # never dropped
                if v.action == "defer":
                    assert v.reason in ("frequency_cap", "arbitration")
                    assert v.until is not None and v.until > NOW
                    # at `until` one more on the row's channel fits
                    d = local_day(v.until, tz)
                    dd, ww, ss = counts(before + approved, d)
                    assert dd < per_day and ww < per_week
                    if sms_cap is not None and r[1] == "sms":
                        assert ss < sms_cap
                    # the budget went to rows worth at least as much: for the day and
                    # week caps every approved row; for a channel cap one on that channel
                    won = [w for w, x in mine if x.action == "send"]
                    if v.detail["cap"].startswith("channel_max_per_day"):
                        won = [w for w in won if w[1] == r[1]]
                    if v.reason == "arbitration":
                        assert won and all(r[2] <= w[2] for w in won)
                        assert v.detail["winner"]["value"] >= r[2]

    check()
    ws.close()
