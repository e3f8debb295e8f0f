"""Real local receivers for the delivery tests: a Standard Webhooks / JSON HTTP server
(verifies signatures, deduplicates by webhook-id, answers as told) and an aiosmtpd SMTP
server; plus a workspace with channels configured in its liucun.toml."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from liucun.core import Clock
from liucun.journeys._outbox import Outgoing, enqueue
from liucun.workspace import Workspace, init_workspace, open_workspace

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

#: (status, headers, body, delay_s) for the n-th hit (1-based) of a key.
Answer = tuple[int, dict[str, str], str, float]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every request; ``answer(key, n)`` decides the reply (default 200)."""

    secret: str | None = SECRET
    answer: Callable[[str, int], Answer] | None = None
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    @property
    def raw(self) -> Counter[str]:
        """Requests per key (webhook-id or Idempotency-Key)."""
        with self.lock:
            return Counter(_key(h.headers) for h in self.hits)

    @property
    def accepted(self) -> set[str]:
        """Keys taken once (a duplicate is dropped, answered 200 again)."""
        with self.lock:
            return set(self._accepted)

    def __post_init__(self) -> None:
        self._accepted: set[str] = set()
        self._seen: Counter[str] = Counter()


def _key(headers: dict[str, str]) -> str:
    return headers.get("webhook-id") or headers.get("idempotency-key") or ""


@contextmanager
def http_receiver(receiver: HttpReceiver | None = None) -> Iterator[HttpReceiver]:
    rec = receiver or HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = False
            if rec.secret is not None and "webhook-signature" in headers:
                verified = _signed(rec.secret, body, headers)
            key = _key(headers)
            with rec.lock:
                rec.hits.append(Hit(self.path, headers, body, verified))
                rec._seen[key] += 1
                n = rec._seen[key]
            status, extra, text, delay = (
                rec.answer(key, n) if rec.answer else (200, {}, json.dumps({"id": f"m-{n}"}), 0.0)
            )
            if delay:
                time.sleep(delay)
            if 200 <= status < 300:
                if rec.secret is not None and not verified:
                    status, text = 401, "bad signature"
                else:
                    with rec.lock:
                        rec._accepted.add(key)
            payload = text.encode()
            try:
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: int | None = None  # an SMTP code to answer every DATA with
    port: int = 0

    def by_id(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for _, m in self.messages)


@contextmanager
def smtp_server(box: Mailbox | None = None) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    mailbox = box or Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if mailbox.refuse is not None:
                return f"{mailbox.refuse} refused by the test server"
            with mailbox.lock:
                mailbox.messages.append(
                    (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content))
                )
            return "250 OK"

    mailbox.port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def channels_toml(channels: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, values in channels.items():
        lines.append(f"\n[channels.{name}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


#: Guards that let every row through (the delivery tests are about sending; the guards'
#: own tests cover consent, caps and quiet hours), whatever the hour the tests run at.
OPEN_GUARDS = {
    "consent_required": False,
    "quiet_start": "00:00",
    "quiet_end": "00:00",
    "max_per_day": 100_000,
    "max_per_week": 100_000,
}


def delivery_workspace(
    path: Path,
    state_url: str,
    clock: Clock,
    channels: dict[str, dict[str, Any]],
    guards: dict[str, Any] | None = None,
) -> Workspace:
    """A workspace on ``state_url`` whose liucun.toml configures ``channels`` and
    ``guards`` (default :data:`OPEN_GUARDS`)."""
    init_workspace(path, state_url=state_url, clock=clock).close()
    with (path / "liucun.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n[guards]\n")
        for k, v in (OPEN_GUARDS if guards is None else guards).items():
            fh.write(f"{k} = {json.dumps(v)}\n")
        fh.write(channels_toml(channels))
    return open_workspace(path, clock=clock)


def add_rows(
    ws: Workspace,
    n: int,
    *,
    channel: str = "webhook",
    prefix: str = "k",
    now: datetime | None = None,
    payload: dict[str, Any] | None = None,
    enrolment: bool = True,
) -> list[str]:
    """Enqueue ``n`` rows (keys ``prefix-0`` …, users ``u0`` …) and return their keys."""
    at = now or ws.clock.now()
    items = [
        Outgoing(
            key=f"{prefix}-{i}",
            user_id=f"u{i}",
            channel=channel,
            payload=dict(payload or {"subject": f"Hello {i}", "body": f"Body {i}"}),
            journey="winback",
            version=1,
            node="mail",
            enrolment_id=(1000 + i) if enrolment else None,
        )
        for i in range(n)
    ]
    with ws.state.write() as s:
        enqueue(s, items, now=at)
    return [i.key for i in items]


def _signed(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether ``headers`` carry a valid Standard Webhooks signature of ``body``.

    The signature is checked exactly (the ``standardwebhooks`` package signs the same
    id, timestamp and body for comparison) but not the timestamp's age: the sender's
    clock is the workspace's (simulated in these tests), and a run of the suite can
    reach these tests long after the module's instants were taken.
    """
    from datetime import UTC, datetime

    try:
        stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(headers["webhook-id"], stamp, body.decode())
    except (KeyError, ValueError):
        return False
    given = headers.get("webhook-signature", "").split()
    return expected in given


def standard_webhooks_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, from the spec: the signed content is
    ``{webhook-id}.{webhook-timestamp}.{body}``, the key the base64 after ``whsec_``,
    and ``webhook-signature`` a space-separated list of ``v1,<base64 HMAC-SHA256>``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [
        part.split(",", 1)[1]
        for part in headers["webhook-signature"].split()
        if part.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, g) for g in given)
