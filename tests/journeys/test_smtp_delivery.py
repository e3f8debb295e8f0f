"""E-mail delivery end to end against a real aiosmtpd server, on SQLite and PostgreSQL:
the stable Message-ID, the one-click unsubscribe headers, the decrypted address, the
rendered text and HTML bodies; no address (suppressed), SMTP refusals (5xx failed, 4xx
retried), and rows in doubt after a crash (unknown for SMTP, resent for webhooks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from delivery_receivers import SECRET, add_rows, delivery_workspace, http_receiver, smtp_server
from sqlalchemy import select

from liucun.core import SimulatedClock
from liucun.journeys import deliver_due, list_outbox, set_contact
from liucun.journeys._outbox import LEASE_GRACE_S, claim
from liucun.state import DeliveryEvent, JourneyStep

NOW = datetime.now(UTC).replace(microsecond=0)
PAYLOAD = {
    "subject": "我们想念您 / We miss you",
    "body": "<p>Hello Li Wei, here is <b>10% off</b>.</p>",
    "unsubscribe_url": "https://shop.test/unsubscribe?t=abc",
    "locale": "en",
}


def _ws(tmp_path: Path, state_url: str, port: int, **extra: object):  # type: ignore[no-untyped-def]
    email = {"host": "127.0.0.1", "port": port, "sender": "Shop <news@shop.test>"}
    email.update({"backoff_s": 1.0, "max_attempts": 2, "timeout_s": 2.0, **extra})
    return delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), {"email": email})


def test_an_email_arrives_with_its_stable_id_headers_address_and_bodies(
    tmp_path: Path, state_url: str
) -> None:
    with smtp_server() as box:
        ws = _ws(tmp_path, state_url, box.port)
        set_contact(ws, "u0", "email", "Li.Wei@Example.test")
        add_rows(ws, 1, channel="email", prefix="mail", payload=PAYLOAD)
        run = deliver_due(ws, worker_id="w1")
        assert run.sent == 1
        assert len(box.messages) == 1
        rcpt, mail = box.messages[0]
        assert rcpt == ["Li.Wei@Example.test"]
        assert mail["Message-ID"] == "<mail-0@liucun>"
        assert mail["From"] == "Shop <news@shop.test>"
        assert mail["List-Unsubscribe"] == "<https://shop.test/unsubscribe?t=abc>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail.get_content_type() == "multipart/alternative"
        parts = {
            p.get_content_type(): p.get_payload(decode=True).decode()
            for p in mail.walk()
            if not p.is_multipart()
        }
        assert "Hello Li Wei, here is 10% off." in parts["text/plain"]
        assert "<b>10% off</b>" in parts["text/html"]
        from email.header import decode_header, make_header

        assert str(make_header(decode_header(mail["Subject"]))) == PAYLOAD["subject"]
        row = list_outbox(ws)[0]
        assert (row["status"], row["provider_message_id"]) == ("sent", "<mail-0@liucun>")
        ws.close()


def test_without_an_address_the_row_is_suppressed_no_address(
    tmp_path: Path, state_url: str
) -> None:
    with smtp_server() as box:
        ws = _ws(tmp_path, state_url, box.port)
        set_contact(ws, "u1", "email", "second@example.test")
        add_rows(ws, 2, channel="email", prefix="mail", payload=PAYLOAD)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.suppressed) == (1, {"no_address": 1})
        assert [r for r, _ in box.messages] == [["second@example.test"]]
        rows = {r["key"]: r for r in list_outbox(ws)}
        assert (rows["mail-0"]["status"], rows["mail-0"]["last_error"]) == (
            "cancelled",
            "no_address",
        )
        with ws.state.read() as s:
            step = s.scalar(select(JourneyStep).where(JourneyStep.key == "mail-0:suppressed"))
        assert step is not None and (step.kind, step.reason) == ("suppressed", "no_address")
        ws.close()


def test_a_5xx_refusal_fails_the_row_and_a_4xx_is_retried(tmp_path: Path, state_url: str) -> None:
    with smtp_server() as box:
        ws = _ws(tmp_path, state_url, box.port)
        set_contact(ws, "u0", "email", "a@example.test")
        add_rows(ws, 1, channel="email", prefix="mail", payload=PAYLOAD)
        box.refuse = 451
        assert deliver_due(ws, worker_id="w1").retried == 1
        row = list_outbox(ws)[0]
        assert row["status"] == "pending"
        assert row["last_error"] == "SMTP 451: refused by the test server"
        box.refuse = 554
        ws.clock.advance(timedelta(seconds=2))
        assert deliver_due(ws, worker_id="w1").failed == 1
        row = list_outbox(ws)[0]
        assert (row["status"], row["attempts"]) == ("failed", 2)
        assert row["last_error"] == "SMTP 554: refused by the test server"
        assert box.messages == []
        ws.close()


def test_an_unreachable_server_is_retried_then_failed(tmp_path: Path, state_url: str) -> None:
    from delivery_receivers import free_port

    ws = _ws(tmp_path, state_url, free_port())  # nothing listens there
    set_contact(ws, "u0", "email", "a@example.test")
    add_rows(ws, 1, channel="email", prefix="mail", payload=PAYLOAD)
    assert deliver_due(ws, worker_id="w1").retried == 1
    ws.clock.advance(timedelta(seconds=2))
    assert deliver_due(ws, worker_id="w1").failed == 1
    row = list_outbox(ws)[0]
    assert row["status"] == "failed" and row["last_error"].startswith("SMTP connection failed")
    ws.close()


def test_rows_in_doubt_are_unknown_on_smtp_and_resent_on_webhooks(
    tmp_path: Path, state_url: str
) -> None:
    with smtp_server() as box, http_receiver() as rec:
        channels = {
            "email": {"host": "127.0.0.1", "port": box.port, "sender": "news@shop.test"},
            "webhook": {"url": rec.url, "secret": SECRET, "timeout_s": 1.0},
        }
        ws = delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)
        set_contact(ws, "u0", "email", "a@example.test")
        add_rows(ws, 1, channel="email", prefix="mail", payload=PAYLOAD)
        add_rows(ws, 1, prefix="hook")
        # a worker claims both and dies before finishing them
        assert len(claim(ws, worker_id="dead", now=NOW, limit=10).to_send) == 2
        # within the lease nothing happens: the worker may still be sending
        early = deliver_due(ws, worker_id="w2", now=NOW + timedelta(seconds=30))
        assert (early.unknown, early.resent_in_doubt, early.claimed) == (0, 0, 0)
        # email lease: 3 × 10 s + 60 s; webhook lease: 3 × 1 s + 60 s
        run = deliver_due(ws, worker_id="w2", now=NOW + timedelta(seconds=LEASE_GRACE_S + 4))
        assert (run.unknown, run.resent_in_doubt, run.sent) == (0, 1, 1)
        assert rec.raw == {"hook-0": 1}
        run = deliver_due(ws, worker_id="w2", now=NOW + timedelta(seconds=LEASE_GRACE_S + 31))
        assert (run.unknown, run.claimed) == (1, 0)
        rows = {r["key"]: r for r in list_outbox(ws)}
        assert rows["mail-0"]["status"] == "unknown"
        assert "does not deduplicate" in rows["mail-0"]["last_error"]
        assert rows["hook-0"]["status"] == "sent"
        assert box.messages == []  # never resent automatically
        with ws.state.read() as s:
            unknown = s.scalar(select(DeliveryEvent).where(DeliveryEvent.kind == "unknown"))
        assert unknown is not None and json.loads(unknown.detail)["claimed_by"] == "dead"
        ws.close()


def test_an_address_that_does_not_decrypt_fails_its_row_only(
    tmp_path: Path, state_url: str
) -> None:
    from sqlalchemy import update

    from liucun.state import Contact

    with smtp_server() as box:
        ws = _ws(tmp_path, state_url, box.port)
        set_contact(ws, "u0", "email", "a@example.test")
        set_contact(ws, "u1", "email", "b@example.test")
        with ws.state.read() as s:
            token = s.scalar(select(Contact.address_encrypted).where(Contact.user_id == "u0"))
        with ws.state.write() as s:  # u0's ciphertext copied onto u1's row
            s.execute(
                update(Contact).where(Contact.user_id == "u1").values(address_encrypted=token)
            )
        add_rows(ws, 2, channel="email", prefix="mail", payload=PAYLOAD)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.failed) == (1, 1)
        rows = {r["key"]: r for r in list_outbox(ws)}
        assert rows["mail-1"]["status"] == "failed"
        assert "the contact of u1 on email does not decrypt" in rows["mail-1"]["last_error"]
        assert [r for r, _ in box.messages] == [["a@example.test"]]
        ws.close()


def test_the_real_guards_run_in_the_claim_and_a_bounce_stops_the_next_message(
    tmp_path: Path, state_url: str
) -> None:
    from liucun.journeys import record_consent, record_outcome

    with smtp_server() as box:
        email = {"host": "127.0.0.1", "port": box.port, "sender": "news@shop.test"}
        # consent required (the default); no quiet hours, so the test runs at any hour
        guards = {"quiet_start": "00:00", "quiet_end": "00:00"}
        ws = delivery_workspace(
            tmp_path / "ws", state_url, SimulatedClock(NOW), {"email": email}, guards
        )
        for u in ("u0", "u1"):
            set_contact(ws, u, "email", f"{u}@example.test")
        record_consent(
            ws, "u1", purpose="marketing", channel="email", status="granted", source="signup"
        )
        add_rows(ws, 2, channel="email", prefix="mail", payload=PAYLOAD)
        run = deliver_due(ws, worker_id="w1")
        assert (run.sent, run.suppressed) == (1, {"consent": 1})
        assert [r for r, _ in box.messages] == [["u1@example.test"]]
        # the provider reports a bounce: the next message to u1 is suppressed
        record_outcome(ws, "mail-1", "bounced", NOW, {"smtp": "550 no such user"})
        add_rows(ws, 2, channel="email", prefix="again", payload=PAYLOAD)
        run = deliver_due(ws, worker_id="w1")
        assert run.sent == 0
        assert run.suppressed == {"consent": 1, "suppressed:bounced": 1}
        assert len(box.messages) == 1
        ws.close()
