"""``liucun alerts …``: run (with --deliver through a real aiosmtpd server), list, ack,
snooze (a duration or an instant), weekly (the real report builder, once per week), in
table and JSON; every command's help ends with an example; errors are one sentence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alert_support import toml_lines, write_scores
from delivery_receivers import OPEN_GUARDS, smtp_server
from journey_support import events, users
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import SimulatedClock
from liucun.workspace import init_workspace, open_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOW = "2026-09-30T06:00:00Z"
AT = datetime(2026, 9, 30, 6, tzinfo=UTC)


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["--now", NOW, *args], env={"COLUMNS": "220"})
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.mark.parametrize("command", ["run", "list", "ack", "snooze", "weekly"])
def test_every_alerts_command_has_help_with_an_example(command: str) -> None:
    code, out, _ = run("alerts", command, "--help")
    assert code == 0
    assert f"Example: liucun -w shop alerts {command}" in " ".join(out.split())


def test_the_alerts_commands(tmp_path: Path) -> None:
    with smtp_server() as box:
        path = tmp_path / "ws"
        clock = SimulatedClock(AT)
        init_workspace(path, clock=clock).close()
        with (path / "liucun.toml").open("a", encoding="utf-8") as fh:
            fh.write(
                toml_lines(
                    {
                        "alerts": {
                            "monitors": ["customer_risk"],
                            "vip_clv": 1000.0,
                            "weekly": ["boss@shop.test"],
                        },
                        "alerts.level3": {"email": ["vip-desk@shop.test"]},
                        "guards": OPEN_GUARDS,
                        "channels.email": {
                            "host": "127.0.0.1",
                            "port": box.port,
                            "sender": "liucun@shop.test",
                        },
                    }
                )
            )
        with open_workspace(path, clock=clock) as ws:
            users(ws, [{"user_id": "vip", "customer_type": "b2c"}])
            day = AT - timedelta(days=40)
            events(
                ws,
                [
                    {"user_id": "vip", "event_type": "order", "ts": day + timedelta(days=i),
                     "revenue": 300.0, "order_id": f"o{i}"}
                    for i in range(0, 30, 5)
                ],
            )  # fmt: skip
            write_scores(ws, [{"user_id": "vip", "churn_risk": 0.75, "clv_365d": 1800.0}])
        ws_arg = str(path)

        code, out, _ = run("-w", ws_arg, "alerts", "run", "--deliver")
        assert code == 0, out
        assert (
            "Alerts: 1 new, 0 reopened, 0 still firing, 0 resolved; 1 notification(s) queued."
            in out
        )
        assert "Opened service task 1 for customer vip" in out
        assert "Delivered: 1 sent, 0 to retry, 0 failed." in out
        assert [r for r, _ in box.messages] == [["vip-desk@shop.test"]]
        code, out, _ = run("-w", ws_arg, "alerts", "run", "--format", "json")
        assert [c["change"] for c in json.loads(out)["changes"]] == ["updated"]

        code, out, _ = run("-w", ws_arg, "alerts", "list", "--status", "open", "--format", "json")
        (alert,) = json.loads(out)
        assert (alert["id"], alert["level"], alert["subject"]) == (1, 3, "vip")
        code, out, _ = run("-w", ws_arg, "alerts", "list", "--status", "open")
        assert code == 0 and "1 alert(s)" in out and "3 service" in out

        code, out, _ = run("-w", ws_arg, "alerts", "snooze", "1", "--until", "2h", "--by", "li.wei")
        assert code == 0 and "Alert 1 snoozed until 2026-09-30 08:00 UTC" in out
        code, out, _ = run(
            "-w", ws_arg, "alerts", "snooze", "1", "--until", "2026-10-01T09:00:00+08:00",
            "--by", "li.wei", "--format", "json",
        )  # fmt: skip
        assert json.loads(out)["snoozed_until"] == "2026-10-01T01:00:00+00:00"
        code, _, err = run("-w", ws_arg, "alerts", "snooze", "1", "--until", "soon", "--by", "x")
        assert code == 1 and "--until 'soon' is neither a duration" in err
        code, out, _ = run("-w", ws_arg, "alerts", "ack", "1", "--by", "li.wei")
        assert code == 0 and "Alert 1 acknowledged by li.wei at 2026-09-30 06:00 UTC" in out
        code, _, err = run("-w", ws_arg, "alerts", "ack", "7", "--by", "li.wei")
        assert code == 1 and "there is no alert 7" in err

        code, out, _ = run("-w", ws_arg, "alerts", "weekly", "--deliver")
        assert code == 0, out
        assert "Weekly report 2026-W39:" in out and "1 e-mail(s) queued" in out
        assert "Delivered: 1 sent, 0 failed." in out
        assert (path / "reports" / "weekly-2026-W39.html").stat().st_size > 100_000
        assert box.messages[-1][0] == ["boss@shop.test"]
        code, out, _ = run("-w", ws_arg, "alerts", "weekly")
        assert "went to all 1 recipient(s) already; nothing sent." in out
