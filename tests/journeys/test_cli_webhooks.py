"""``liucun webhooks add|list|disable|rotate|delete``: the secret is printed once (and
decrypts to what the worker signs with), list never shows it, errors are one sentence
with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ConfigError
from liucun.journeys._subscriptions import subscription_channel
from liucun.workspace import open_workspace

runner = CliRunner()


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    assert runner.invoke(app, ["init", str(tmp_path / "ws")]).exit_code == 0
    return tmp_path / "ws"


def _run(ws_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["-w", str(ws_path), "webhooks", *args])


def test_add_prints_the_secret_once_and_the_worker_signs_with_it(ws_path: Path) -> None:
    made = _run(
        ws_path,
        "add",
        "crm",
        "--url",
        "https://crm.example/hooks",
        "--event",
        "stage_changed",
        "--event",
        "risk_crossed",
        "--risk-threshold",
        "0.7",
    )
    assert made.exit_code == 0, made.output
    secret = made.output.splitlines()[1]
    assert secret.startswith("whsec_") and "not shown again" in " ".join(made.output.split())
    with open_workspace(ws_path) as ws:
        channel = subscription_channel(ws, "subscription:1")
    assert (channel.url, channel.secret, channel.kind) == (
        "https://crm.example/hooks",
        secret,
        "webhook",
    )
    listed = _run(ws_path, "list")
    assert listed.exit_code == 0 and "crm" in listed.output and "risk ≥ 0.7" in listed.output
    assert secret not in listed.output
    (row,) = [json.loads(line) for line in _run(ws_path, "list", "--json").output.splitlines()]
    assert row["event_types"] == ["stage_changed", "risk_crossed"] and row["active"] is True
    assert "secret" not in row

    rotated = _run(ws_path, "rotate", "crm", "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.output)["secret"]
    assert new.startswith("whsec_") and new != secret
    with open_workspace(ws_path) as ws:
        assert subscription_channel(ws, "subscription:1").secret == new

    off = _run(ws_path, "disable", "crm")
    assert off.exit_code == 0 and "disabled" in off.output
    assert _run(ws_path, "list", "--active").output.startswith("No webhook subscriptions")
    with open_workspace(ws_path) as ws, pytest.raises(ConfigError, match="'crm' is disabled"):
        subscription_channel(ws, "subscription:1")
    assert _run(ws_path, "delete", "crm").exit_code == 0
    assert "No webhook subscriptions" in _run(ws_path, "list").output


def test_errors_are_one_sentence_and_exit_1(ws_path: Path) -> None:
    ok = ["add", "crm", "--url", "https://crm.example/h", "--event", "tier_changed"]
    assert _run(ws_path, *ok).exit_code == 0
    twice = _run(ws_path, *ok)
    assert twice.exit_code == 1 and "exists already" in twice.output
    bad = _run(ws_path, "add", "b", "--url", "https://x.example/", "--event", "points")
    assert bad.exit_code == 1
    assert "--event stage_changed" in " ".join(bad.output.split())  # the flag to fix it
    nope = _run(ws_path, "rotate", "nope")
    assert nope.exit_code == 1 and "webhooks list" in nope.output
    helped = _run(ws_path, "add", "--help")
    assert helped.exit_code == 0 and "Example" in helped.output


def test_the_worker_command_delivers_each_event_once(ws_path: Path) -> None:
    from datetime import UTC, datetime

    from delivery_receivers import HttpReceiver, http_receiver, standard_webhooks_valid
    from journey_support import events, install_journey, spec

    with http_receiver(HttpReceiver(secret=None)) as rec:
        made = _run(ws_path, "add", "crm", "--url", rec.url, "--event", "journey_entered")
        secret = made.output.splitlines()[1]
        with open_workspace(ws_path) as ws:
            install_journey(ws, spec(name="hi", nodes=[{"id": "done", "type": "exit"}]))
            at = datetime.now(UTC)
            events(ws, [{"user_id": f"u{i}", "event_type": "signup", "ts": at} for i in range(3)])
        outs = []
        for _ in range(2):  # the second round finds nothing new
            done = runner.invoke(app, ["-w", str(ws_path), "worker", "--once"])
            assert done.exit_code == 0, done.output
            outs.append(" ".join(done.output.split()))
        assert "partner webhooks: journey_entered 3" in outs[0]
        assert "partner webhooks" not in outs[1]
        assert sorted(h.json()["data"]["user_id"] for h in rec.hits) == ["u0", "u1", "u2"]
        assert set(rec.raw.values()) == {1}
        assert all(standard_webhooks_valid(secret, h.headers, h.body) for h in rec.hits)
