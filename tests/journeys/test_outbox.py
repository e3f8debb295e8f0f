"""The outbox beyond sending, on SQLite and PostgreSQL: enqueue is idempotent by key;
backoff with full jitter under Retry-After; provider callbacks (record_outcome) and
their suppressions; outcomes published to the warehouse with stable ids; operators'
list / retry / unknown (library and CLI); internal channels go to execute_internal."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from delivery_receivers import SECRET, HttpReceiver, add_rows, delivery_workspace, http_receiver
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ChannelSettings, InvalidInput, SimulatedClock
from liucun.journeys import (
    deliver_due,
    list_outbox,
    publish_delivery_events,
    record_outcome,
    retry_outbox,
)
from liucun.journeys._outbox import MAX_BACKOFF_S, backoff, claim
from liucun.state import Suppression

NOW = datetime.now(UTC).replace(microsecond=0)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _ws(tmp_path: Path, state_url: str, url: str):  # type: ignore[no-untyped-def]
    channels = {"webhook": {"url": url, "secret": SECRET, "max_attempts": 1}}
    return delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)


@given(
    base=st.floats(0.01, 600),
    attempt=st.integers(1, 40),
    retry_after=st.none() | st.floats(0, 10_000),
)
def test_backoff_is_full_jitter_under_a_doubling_ceiling_and_honours_retry_after(
    base: float, attempt: int, retry_after: float | None
) -> None:
    delay = backoff(ChannelSettings(backoff_s=base), attempt, retry_after)
    ceiling = min(MAX_BACKOFF_S, base * 2 ** (attempt - 1))
    assert delay >= 0
    assert delay <= max(ceiling, retry_after or 0)
    if retry_after is not None:
        assert delay >= retry_after


def test_enqueue_is_idempotent_by_key(tmp_path: Path, state_url: str) -> None:
    ws = _ws(tmp_path, state_url, "http://127.0.0.1:9/none")
    add_rows(ws, 3)
    add_rows(ws, 3)  # the same keys again: nothing added
    assert [r["key"] for r in list_outbox(ws)] == ["k-0", "k-1", "k-2"]
    ws.close()


def test_outcomes_reach_the_warehouse_once_with_stable_ids_and_bounces_suppress(
    tmp_path: Path, state_url: str
) -> None:
    with http_receiver() as rec:
        ws = _ws(tmp_path, state_url, rec.url)
        add_rows(ws, 2)
        deliver_due(ws, worker_id="w1")
        later = NOW + timedelta(hours=1)
        assert record_outcome(ws, "k-0", "opened", later, event_id="evt-1")
        assert not record_outcome(ws, "k-0", "opened", later, event_id="evt-1")  # a repeat
        assert record_outcome(ws, "k-0", "clicked", later + timedelta(minutes=1))
        assert record_outcome(ws, "k-1", "bounced", later, {"detail": "550 to x@y.test"})
        with pytest.raises(InvalidInput, match="no outbox row has key 'nope'"):
            record_outcome(ws, "nope", "opened", later)
        with pytest.raises(InvalidInput, match="'read' is not a delivery outcome"):
            record_outcome(ws, "k-0", "read", later)
        assert publish_delivery_events(ws) == 5
        assert publish_delivery_events(ws) == 0  # all published
        t = ws.table("events")
        got = t.filter(t.event_type.startswith("message_")).order_by(["event_id"]).execute()
        assert sorted(got["event_type"]) == [
            "message_bounced",
            "message_clicked",
            "message_opened",
            "message_sent",
            "message_sent",
        ]
        assert got["event_id"].str.startswith("liucun:delivery:").all()
        props = json.loads(got[got["event_type"] == "message_opened"]["properties"].iloc[0])
        assert props["source"] == "liucun"
        assert (props["journey"], props["node"], props["channel"], props["key"]) == (
            "winback",
            "mail",
            "webhook",
            "k-0",
        )
        with ws.state.read() as s:
            sup = s.scalars(select(Suppression)).all()
        assert [(x.subject, x.channel, x.kind) for x in sup] == [("u1", "webhook", "bounced")]
        assert "x@y.test" not in (sup[0].reason or "")
        # a crash after loading but before marking published loads nothing twice
        from sqlalchemy import update

        from liucun.state import DeliveryEvent

        with ws.state.write() as s:
            s.execute(update(DeliveryEvent).values(published=False))
        assert publish_delivery_events(ws) == 5
        t = ws.table("events")
        assert t.filter(t.event_type.startswith("message_")).count().execute() == 5
        ws.close()


def test_retry_failed_rows_and_the_outbox_commands(tmp_path: Path, state_url: str) -> None:
    from liucun.workspace import open_workspace

    answers = {"n": 500}
    rec = HttpReceiver(answer=lambda key, n: (answers["n"], {}, "down", 0.0))
    with http_receiver(rec):
        channels = {
            "webhook": {"url": rec.url, "secret": SECRET, "max_attempts": 1},
            "email": {"kind": "file"},  # a dry run: does not deduplicate
        }
        ws = delivery_workspace(tmp_path / "ws", state_url, SimulatedClock(NOW), channels)
        from liucun.journeys import set_contact

        set_contact(ws, "u0", "email", "a@example.test")
        add_rows(ws, 1, channel="email", prefix="mail")
        add_rows(ws, 2)
        # the email row is claimed by a worker that dies: it is in doubt after the lease
        assert [c.key for c in claim(ws, worker_id="dead", now=NOW, limit=1).to_send] == ["mail-0"]
        run_ = deliver_due(ws, worker_id="w1")
        assert (run_.failed, run_.unknown) == (2, 0)
        ws.close()
        path = str(tmp_path / "ws")

        def run(*args: str, at: datetime = NOW) -> tuple[int, str, str]:
            res = CliRunner().invoke(app, ["--now", at.isoformat(), "-w", path, *args])
            return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)

        code, out, _ = run("outbox", "list", "--status", "failed", "--format", "json")
        data = json.loads(out)
        assert [r["key"] for r in data["rows"]] == ["k-0", "k-1"]
        assert data["counts"] == {"failed": 2, "sending": 1}
        assert data["rows"][0]["last_error"] == "HTTP 500: down"
        code, out, _ = run("outbox", "list")
        assert code == 0 and "Outbox: 2 failed, 1 sending." in out and "HTTP 500: down" in out
        answers["n"] = 200  # the receiver is back
        code, out, _ = run("outbox", "retry", "--failed")
        assert (code, out.strip()) == (0, "Queued 2 rows to be sent again.")
        later = NOW + timedelta(seconds=91)  # past the file channel's lease (3 × 10 s + 60 s)
        with open_workspace(path, clock=SimulatedClock(later)) as w:
            run_ = deliver_due(w, worker_id="w1")
            assert (run_.sent, run_.unknown) == (2, 1)
            rows = {r["key"]: r for r in list_outbox(w)}
        assert (rows["k-0"]["status"], rows["k-0"]["attempts"]) == ("sent", 2)
        assert rows["mail-0"]["status"] == "unknown"
        code, out, _ = run("outbox", "unknown", "--format", "json", at=later)
        data = json.loads(out)
        assert (data["unknown"], data["rows"][0]["key"]) == (1, "mail-0")
        code, out, _ = run("outbox", "unknown", at=later)
        assert "1 rows in doubt" in out and "mail-0" in out
        code, _, err = run("outbox", "retry", str(rows["k-0"]["id"]), at=later)
        assert code == 1 and "is sent; only failed or unknown rows can be retried" in err
        code, _, err = run("outbox", "retry", "99999", at=later)
        assert code == 1 and "no outbox row has id 99999" in err
        code, _, err = run("outbox", "retry", at=later)
        assert code == 1 and "name the outbox rows to retry" in err
        code, out, _ = run("outbox", "retry", str(rows["mail-0"]["id"]), "--format", "json")
        assert json.loads(out) == {"queued": 1}
        code, _, err = run("outbox", "list", "--status", "bogus")
        assert code == 1 and "'bogus' is not an outbox status" in err


def test_internal_channels_go_to_execute_internal(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liucun.journeys._actions import ActionResult

    ws = _ws(tmp_path, state_url, "http://127.0.0.1:9/none")
    add_rows(ws, 1, channel="tag", prefix="tag", payload={"tag": "vip", "value": "gold"})
    add_rows(ws, 1, channel="coupon", prefix="coupon", payload={"purpose": "marketing"})
    # the real actions: the tag is set; a coupon row without its coupon_id fails at once
    # (retrying cannot help) with the action's sentence
    run = deliver_due(ws, worker_id="w")
    assert (run.sent, run.failed, run.retried) == (1, 1, 0)
    rows = {r["key"]: r for r in list_outbox(ws)}
    assert (rows["tag-0"]["status"], rows["tag-0"]["provider_message_id"]) == (
        "sent",
        "vip=gold",
    )
    assert rows["coupon-0"]["status"] == "failed" and "coupon" in rows["coupon-0"]["last_error"]
    from liucun.state import CustomerTag

    with ws.state.read() as s:
        assert [(t.user_id, t.tag, t.value) for t in s.scalars(select(CustomerTag))] == [
            ("u0", "vip", "gold")
        ]
    events = ws.table("events")
    assert events.filter(events.event_type == "tag_set").count().execute() == 1
    # a refusal is final: cancelled with the action's reason code and sentence
    seen = []

    def execute(w, row, *, publish=True):  # type: ignore[no-untyped-def]
        seen.append((row.key, publish))
        return ActionResult(
            ok=False, refused=True, detail="coupon_cap", message="u0 holds 3 coupons already"
        )

    monkeypatch.setattr("liucun.journeys._delivery.execute_internal", execute)
    assert retry_outbox(ws, failed=True) == 1
    run = deliver_due(ws, worker_id="w")
    assert run.cancelled == 1
    row = {r["key"]: r for r in list_outbox(ws)}["coupon-0"]
    assert (row["status"], row["last_error"]) == (
        "cancelled",
        "coupon_cap: u0 holds 3 coupons already",
    )
    assert seen == [("coupon-0", False)]  # events are published once per batch
    from liucun.state import JourneyStep

    with ws.state.read() as s:
        step = s.scalar(select(JourneyStep).where(JourneyStep.key == "coupon-0:suppressed"))
    assert step is not None and step.reason == "coupon_cap"
    ws.close()


def test_released_claims_are_pending_again_with_the_attempt_not_counted(
    tmp_path: Path, state_url: str
) -> None:
    from liucun.journeys._outbox import release

    ws = _ws(tmp_path, state_url, "http://127.0.0.1:9/none")
    add_rows(ws, 3)
    batch = claim(ws, worker_id="w1", now=NOW, limit=3)
    later = NOW + timedelta(seconds=50)
    assert release(ws, batch.to_send[1:], worker_id="w1", now=later) == 2
    assert release(ws, batch.to_send[1:], worker_id="w1", now=later) == 0  # not ours now
    rows = {r["key"]: r for r in list_outbox(ws)}
    assert [(rows[k]["status"], rows[k]["attempts"]) for k in ("k-0", "k-1", "k-2")] == [
        ("sending", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert datetime.fromisoformat(rows["k-1"]["next_attempt_at"]) == later
    ws.close()


@pytest.mark.parametrize(
    "command",
    [
        ["contacts"],
        ["contacts", "import"],
        ["outbox"],
        ["outbox", "list"],
        ["outbox", "retry"],
        ["outbox", "unknown"],
    ],
    ids=" ".join,
)
def test_every_delivery_command_has_help_with_an_example(command: list[str]) -> None:
    res = CliRunner().invoke(app, [*command, "--help"], terminal_width=100)
    out = _ANSI.sub("", res.stdout)
    assert res.exit_code == 0, out
    assert "Example" in out
    assert "liucun -w shop " + " ".join(command[:1]) in " ".join(
        out[out.index("Example") :].split()
    )
