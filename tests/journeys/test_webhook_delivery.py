"""Webhook delivery end to end against a real local HTTP server that verifies the
Standard Webhooks signature and deduplicates by webhook-id, on SQLite and PostgreSQL:
retries with backoff (500 then 200, a timeout, 429 with Retry-After), failure with the
provider's answer after max_attempts with the fallback provider tried, guard verdicts,
a channel without settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from delivery_receivers import SECRET, HttpReceiver, add_rows, delivery_workspace, http_receiver
from sqlalchemy import select

from liucun.core import SimulatedClock
from liucun.journeys import deliver_due, list_outbox
from liucun.journeys._guards import Verdict
from liucun.state import DeliveryEvent, JourneyStep, OutboxMessage

# the receiver checks each signature exactly (not the timestamp's age: see delivery_receivers)
NOW = datetime.now(UTC).replace(microsecond=0)


def _ws(tmp_path: Path, state_url: str, url: str, **extra: object):  # type: ignore[no-untyped-def]
    hook = {"url": url, "secret": SECRET, "timeout_s": 0.5, "backoff_s": 1.0, "max_attempts": 3}
    hook.update(extra)
    channels = {"webhook": hook}
    if "fallback" in extra:
        channels["webhook_backup"] = {
            "kind": "webhook",
            "url": url.replace("/hook", "/backup"),
            "secret": SECRET,
            "max_attempts": 1,
        }
    return delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)


def _rows(ws) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["key"]: r for r in list_outbox(ws)}


def test_signed_webhooks_arrive_once_each_and_are_marked_sent(
    tmp_path: Path, state_url: str
) -> None:
    with http_receiver() as rec:
        ws = _ws(tmp_path, state_url, rec.url)
        keys = add_rows(ws, 5, payload={"body": {"offer": "comeback10"}})
        run = deliver_due(ws, worker_id="w1")
        assert (run.claimed, run.sent, run.retried, run.failed) == (5, 5, 0, 0)
        assert all(h.verified for h in rec.hits)
        assert rec.raw == {k: 1 for k in keys}
        first = rec.hits[0].json()
        assert first["type"] == "liucun.journey.webhook"
        assert first["data"]["offer"] == "comeback10"
        assert first["data"]["key"] in keys and first["data"]["journey"] == "winback"
        rows = _rows(ws)
        assert {r["status"] for r in rows.values()} == {"sent"}
        assert rows["k-0"]["provider_message_id"] == "m-1"
        with ws.state.read() as s:
            kinds = sorted(s.scalars(select(DeliveryEvent.kind)))
            steps = sorted(s.scalars(select(JourneyStep.key)))
        assert kinds == ["sent"] * 5
        assert steps == sorted(f"{k}:sent" for k in keys)
        # nothing is due any more: a second pass sends nothing
        assert deliver_due(ws, worker_id="w1").claimed == 0
        assert len(rec.hits) == 5
        ws.close()


def test_a_500_then_200_is_retried_after_the_backoff_then_sent(
    tmp_path: Path, state_url: str
) -> None:
    answers = {1: (500, {}, "upstream broke", 0.0)}
    rec = HttpReceiver(answer=lambda key, n: answers.get(n, (200, {}, "{}", 0.0)))
    with http_receiver(rec):
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 1)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.retried) == (0, 1)
        row = _rows(ws)["k-0"]
        assert row["status"] == "pending" and row["attempts"] == 1
        assert row["last_error"] == "HTTP 500: upstream broke"
        due = datetime.fromisoformat(row["next_attempt_at"])
        assert NOW <= due <= NOW + timedelta(seconds=1.0)  # full jitter over backoff_s
        ws.clock.set(NOW + timedelta(seconds=1.01))
        run = deliver_due(ws, worker_id="w1")
        assert run.sent == 1
        assert _rows(ws)["k-0"]["status"] == "sent"
        assert rec.raw == {"k-0": 2}
        ws.close()


def test_always_500_fails_with_the_answer_after_max_attempts_and_the_fallback(
    tmp_path: Path, state_url: str
) -> None:
    rec = HttpReceiver(answer=lambda key, n: (500, {}, '{"error": "db down"}', 0.0))
    with http_receiver(rec):
        ws = _ws(tmp_path, state_url, rec.url, fallback="webhook_backup")
        add_rows(ws, 2)
        statuses = []
        for _ in range(10):
            run = deliver_due(ws, worker_id="w1")
            statuses.append((run.retried, run.fallbacks, run.failed))
            ws.clock.advance(timedelta(minutes=5))
        # two rows: 3 attempts each on the primary (2 retries, then the fallback), then
        # the backup's single attempt fails them
        assert statuses[:4] == [(2, 0, 0), (2, 0, 0), (0, 2, 0), (0, 0, 2)]
        rows = _rows(ws)
        for key in ("k-0", "k-1"):
            assert rows[key]["status"] == "failed"
            assert rows[key]["attempts"] == 4
            assert rows[key]["provider"] == "webhook_backup"
            assert rows[key]["last_error"] == 'HTTP 500: {"error": "db down"}'
        paths = [h.path for h in rec.hits if h.headers["webhook-id"] == "k-0"]
        assert paths == ["/hook", "/hook", "/hook", "/backup"]
        with ws.state.read() as s:
            failed = s.scalars(select(DeliveryEvent).where(DeliveryEvent.kind == "failed")).all()
        assert len(failed) == 2
        assert json.loads(failed[0].detail)["answer"] == 'HTTP 500: {"error": "db down"}'
        ws.close()


def test_a_timeout_is_retried(tmp_path: Path, state_url: str) -> None:
    rec = HttpReceiver(
        answer=lambda key, n: (200, {}, "{}", 1.5) if n == 1 else (200, {}, "{}", 0.0)
    )
    with http_receiver(rec):
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 1)
        run = deliver_due(ws, worker_id="w1")
        assert run.retried == 1
        assert _rows(ws)["k-0"]["last_error"].startswith("timed out after 0.5s")
        ws.clock.advance(timedelta(seconds=2))
        assert deliver_due(ws, worker_id="w1").sent == 1
        # the receiver took the first (late) request too, and dropped the repeat by id
        assert rec.raw == {"k-0": 2}
        assert rec.accepted == {"k-0"}
        ws.close()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_with_retry_after_is_not_tried_before_it(
    tmp_path: Path, state_url: str, form: str
) -> None:
    wait = 120
    value = str(wait)
    if form == "http-date":
        from email.utils import format_datetime

        value = format_datetime(NOW + timedelta(seconds=wait), usegmt=True)
    rec = HttpReceiver(
        answer=lambda key, n: (
            (429, {"Retry-After": value}, "slow down", 0.0) if n == 1 else (200, {}, "{}", 0.0)
        )
    )
    with http_receiver(rec):
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 1)
        deliver_due(ws, worker_id="w1")
        row = _rows(ws)["k-0"]
        due = datetime.fromisoformat(row["next_attempt_at"])
        assert due >= NOW + timedelta(seconds=wait)  # backoff_s (1 s) alone would be sooner
        ws.clock.set(NOW + timedelta(seconds=wait - 1))
        assert deliver_due(ws, worker_id="w1").claimed == 0
        ws.clock.set(due)
        assert deliver_due(ws, worker_id="w1").sent == 1
        ws.close()


def test_a_4xx_fails_at_once_and_one_bad_row_does_not_stop_the_batch(
    tmp_path: Path, state_url: str
) -> None:
    rec = HttpReceiver(
        answer=lambda key, n: (422, {}, "bad body", 0.0) if key == "k-1" else (200, {}, "{}", 0.0)
    )
    with http_receiver(rec):
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 3)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.failed) == (2, 1)
        rows = _rows(ws)
        assert rows["k-1"]["status"] == "failed"
        assert rows["k-1"]["last_error"] == "HTTP 422: bad body"
        assert rows["k-1"]["attempts"] == 1
        ws.close()


def test_guard_verdicts_cancel_hold_and_defer(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = NOW + timedelta(minutes=2)  # within the receiver's timestamp tolerance
    verdicts = {
        "k-0": Verdict("send"),
        "k-1": Verdict("suppress", reason="consent"),
        "k-2": Verdict("hold", reason="quiet_hours", until=later),
        "k-3": Verdict("defer", reason="frequency_cap", until=later + timedelta(days=1)),
    }

    def review(s, ws, rows, *, now):  # type: ignore[no-untyped-def]
        return [verdicts.get(r.key, Verdict("send")) for r in rows]

    monkeypatch.setattr("liucun.journeys._guards.review_batch", review)
    with http_receiver() as rec:
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 4)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.suppressed, run.held, run.deferred) == (1, {"consent": 1}, 1, 1)
        rows = _rows(ws)
        assert rows["k-1"]["status"] == "cancelled" and rows["k-1"]["last_error"] == "consent"
        assert rows["k-2"]["status"] == "pending" and rows["k-2"]["hold_reason"] == "quiet_hours"
        assert datetime.fromisoformat(rows["k-2"]["next_attempt_at"]) == later
        assert rows["k-2"]["attempts"] == 0 and rows["k-3"]["attempts"] == 0
        with ws.state.read() as s:
            steps = {(st.key, st.kind, st.reason) for st in s.scalars(select(JourneyStep))}
        assert ("k-1:suppressed", "suppressed", "consent") in steps
        assert (f"k-2:held:{later.isoformat()}", "held", "quiet_hours") in steps
        assert rec.raw == {"k-0": 1}
        # the held row is due at the end of the quiet hours and goes then
        verdicts.clear()
        ws.clock.set(later)
        run = deliver_due(ws, worker_id="w1")
        assert run.sent == 1 and rec.raw["k-2"] == 1
        ws.close()


def test_a_channel_without_settings_fails_its_rows_with_a_sentence(
    tmp_path: Path, state_url: str
) -> None:
    with http_receiver() as rec:
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 1, channel="in_app", prefix="app")
        add_rows(ws, 1)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.failed) == (1, 1)
        row = _rows(ws)["app-0"]
        assert row["status"] == "failed"
        assert "no [channels.in_app] in liucun.toml" in row["last_error"]
        assert 'kind = "file"' in row["last_error"]
        ws.close()


def test_a_claimed_row_is_sending_until_it_is_finished(tmp_path: Path, state_url: str) -> None:
    from liucun.journeys._outbox import claim

    with http_receiver() as rec:
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 3)
        batch = claim(ws, worker_id="w1", now=NOW, limit=2)
        assert [c.key for c in batch.to_send] == ["k-0", "k-1"]
        with ws.state.read() as s:
            rows = {r.key: r for r in s.scalars(select(OutboxMessage))}
        assert (rows["k-0"].status, rows["k-0"].claimed_by, rows["k-0"].attempts) == (
            "sending",
            "w1",
            1,
        )
        assert rows["k-2"].status == "pending"
        # another worker gets only the row left
        other = claim(ws, worker_id="w2", now=NOW, limit=10)
        assert [c.key for c in other.to_send] == ["k-2"]
        ws.close()
