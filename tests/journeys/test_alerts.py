"""Alerts on a simulated shop (8,000 customers, 240 days; tests/journeys/alert_support.py)
with known changes injected before ingest: one region's repeat orders removed for the
last week raises exactly that region's level-1 alert (none for the untouched regions,
none at all on the untouched shop), e-mailed through a real aiosmtpd server and posted
to a real local webhook receiver, once however often the monitors run, and resolved when
the orders arrive after all; a category flooded with viewers who do not buy raises a
level-2 alert to its owner; the retention forecast alerts below its target; the weekly
report goes out once per ISO week. The heavy shop tests run on SQLite; the store's
behaviour on both backends is in test_alert_store.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alert_support import (
    NOW,
    Shop,
    load,
    shop_workspace,
    simulate,
    with_idle_viewers,
    without_repeat_orders,
)
from delivery_receivers import OPEN_GUARDS, SECRET, http_receiver, smtp_server
from sqlalchemy import select

from liucun.journeys import (
    check_monitors,
    deliver_due,
    forecast_series,
    list_alerts,
    list_outbox,
    run_monitors,
    send_weekly_report,
)
from liucun.journeys._alert_delivery import staff_id
from liucun.journeys._alert_monitors import context, weekly_retention
from liucun.journeys._channels import message_id
from liucun.state import OutboxMessage

pytestmark = pytest.mark.slow
TEAM = "growth-team@shop.test"
OWNER = "li.wei@shop.test"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return simulate(tmp_path_factory.mktemp("alert-shop"))


def _sqlite(tmp_path: Path, name: str = "ws") -> tuple[Path, str]:
    return tmp_path / name, f"sqlite:///{tmp_path / (name + '.sqlite')}"


def _delivery(smtp_port: int, hook_url: str) -> dict[str, dict[str, object]]:
    return {
        "guards": OPEN_GUARDS,
        "channels.email": {"host": "127.0.0.1", "port": smtp_port, "sender": "liucun@shop.test"},
        "channels.team_hook": {"kind": "webhook", "url": hook_url, "secret": SECRET},
    }


def test_a_regions_drop_raises_its_level1_alert_once_delivered_and_resolved(
    shop: Shop, tmp_path: Path
) -> None:
    events = without_repeat_orders(shop, "east")
    removed = shop.events.num_rows - events.num_rows
    assert removed > 40  # the east's repeat orders of Sep 23 – 29
    with smtp_server() as box, http_receiver() as rec:
        path, url = _sqlite(tmp_path)
        settings = {
            "alerts": {"monitors": ["retention"]},
            "alerts.level1": {"email": [TEAM], "webhook": ["team_hook"]},
            **_delivery(box.port, rec.url),
        }
        ws = shop_workspace(path, url, shop, events, settings)

        changes = run_monitors(ws)
        assert [(c.change, c.alert.key, c.alert.level) for c in changes] == [
            ("new", "retention:region=east", 1)
        ]
        alert = changes[0].alert
        assert alert.value == 0.0  # nobody of the east's active customers came back
        assert 0.005 < alert.baseline < 0.03  # about 1.5 % a day come back normally
        assert (
            "Daily retention region east is 100% below its seasonal baseline over "
            "2026-09-23 – 2026-09-29: 0 customers came back" in alert.message
        )
        assert changes[0].notified == 2  # the team's address and its webhook
        # the overall retention fell by a quarter, short of significance after Bonferroni
        found = {f.key: f for r in check_monitors(ws) for f in r.findings}
        assert found["retention:overall"].details["change"] == pytest.approx(-0.26, abs=0.03)
        assert found["retention:overall"].state == "holding"
        untouched = {k for k, f in found.items() if k.startswith("retention:region=")} - {
            "retention:region=east"
        }
        assert len(untouched) >= 5 and all(found[k].state == "clear" for k in untouched)

        run = deliver_due(ws, worker_id="w1")
        assert run.sent == 2
        ((rcpt, mail),) = box.messages
        assert rcpt == [TEAM]
        assert mail["Subject"].startswith("[liucun L1] Daily retention region east is 100% below")
        key = f"alert:{alert.id}:raised:email:{staff_id(ws, TEAM)}"
        assert mail["Message-ID"] == message_id(key)  # whole: distinct per alert and event
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        ack = f"liucun alerts ack {alert.id} --by YOUR_NAME"
        assert ack in text.get_payload(decode=True).decode()
        (hit,) = rec.hits
        assert hit.verified
        body = hit.json()
        assert body["data"]["event"] == "alert.raised"
        assert body["data"]["alert"]["key"] == "retention:region=east"
        assert body["data"]["alert"]["value"] == 0.0

        # dedupe: running again refreshes the alert, tells nobody, opens no second one
        again = run_monitors(ws)
        assert [(c.change, c.alert.id, c.notified) for c in again] == [("updated", alert.id, 0)]
        assert deliver_due(ws, worker_id="w1").sent == 0
        assert len(list_alerts(ws)) == 1

        # the orders arrive after all: the metric recovers and the alert resolves
        load(ws, shop.events)
        done = run_monitors(ws)
        assert [(c.change, c.alert.id) for c in done] == [("resolved", alert.id)]
        assert done[0].alert.key == f"retention:region=east#{alert.id}"
        assert deliver_due(ws, worker_id="w1").sent == 2
        assert box.messages[-1][1]["Subject"].startswith("[liucun L1 resolved]")
        assert rec.hits[-1].json()["data"]["event"] == "alert.resolved"
        assert [a.status for a in list_alerts(ws)] == ["resolved"]
        ws.close()


def test_the_untouched_shop_raises_no_retention_or_conversion_alert(
    shop: Shop, tmp_path: Path
) -> None:
    """The false-positive check: eight region scopes and eight categories, judged on
    five consecutive mornings, and nothing fires."""
    path, url = _sqlite(tmp_path)
    ws = shop_workspace(
        path, url, shop, settings={"alerts": {"monitors": ["retention", "conversion"]}}
    )
    judged = 0
    for back in range(5):
        results = check_monitors(ws, NOW - timedelta(days=back))
        findings = [f for r in results for f in r.findings]
        judged += len(findings)
        assert [f.key for f in findings if f.state == "firing"] == []
    assert judged >= 5 * 14
    assert run_monitors(ws) == []
    ws.close()


def test_a_category_conversion_drop_goes_to_its_owner(shop: Shop, tmp_path: Path) -> None:
    events = with_idle_viewers(shop, "electronics", per_day=10)
    with smtp_server() as box, http_receiver() as rec:
        path, url = _sqlite(tmp_path)
        settings = {
            "alerts": {"monitors": ["conversion"]},
            "alerts.owners": {"electronics": OWNER, "home": "other.owner@shop.test"},
            **_delivery(box.port, rec.url),
        }
        ws = shop_workspace(path, url, shop, events, settings)
        changes = run_monitors(ws)
        assert [(c.change, c.alert.key, c.alert.level) for c in changes] == [
            ("new", "conversion:category=electronics", 2)
        ]
        a = changes[0].alert
        # 70 idle viewers on top of about 70 real ones: conversion about halves
        assert a.value / a.baseline == pytest.approx(0.5, abs=0.15)
        assert "Conversion (view → order) in category electronics is" in a.message
        assert changes[0].notified == 1
        assert deliver_due(ws, worker_id="w1").sent == 1
        assert [r for r, _ in box.messages] == [[OWNER]]
        assert box.messages[0][1]["Subject"].startswith("[liucun L2] Conversion")
        assert rec.hits == []  # level 2 has no webhook configured
        ws.close()


def test_the_retention_forecast_below_target_alerts(shop: Shop, tmp_path: Path) -> None:
    path, url = _sqlite(tmp_path)
    ws = shop_workspace(
        path,
        url,
        shop,
        settings={
            "alerts": {"monitors": ["retention_forecast"]},
            "targets": {"weekly_retention": 0.5},
        },
    )
    weekly = weekly_retention(context(ws, NOW), 52)
    # the shop is 34 weeks old; its first weeks have no active customers yet
    assert 25 <= len(weekly) <= 34
    assert weekly["rate"].iloc[-1] == pytest.approx(
        weekly["returning"].iloc[-1] / weekly["active"].iloc[-1]
    )
    expected = forecast_series(weekly["rate"].to_numpy(), 9)
    changes = run_monitors(ws)
    assert [(c.change, c.alert.key, c.alert.level) for c in changes] == [
        ("new", "retention_forecast:overall", 1)
    ]
    a = changes[0].alert
    assert a.value == pytest.approx(expected.last)
    assert 0.02 < a.value < 0.2 and a.baseline == 0.5
    assert (
        "Weekly retention is forecast at" in a.message and "below the target of 50.0%" in a.message
    )
    # a target under the forecast: the alert resolves
    ws.settings.targets.weekly_retention = round(expected.last * 0.5, 4)
    assert [c.change for c in run_monitors(ws)] == ["resolved"]
    ws.close()


def test_the_weekly_report_goes_out_once_per_iso_week(shop: Shop, tmp_path: Path) -> None:
    from liucun.reports import build_report

    builds: list[Path] = []

    def build(ws, out, as_of):  # type: ignore[no-untyped-def]
        builds.append(out)
        return build_report(ws, out, as_of=as_of, sections=())

    with smtp_server() as box:
        path, url = _sqlite(tmp_path)
        settings = {
            "alerts": {"weekly": [TEAM, OWNER], "report_url": "https://cockpit.shop.test/reports"},
            "guards": OPEN_GUARDS,
            "channels.email": {"host": "127.0.0.1", "port": box.port, "sender": "liucun@shop.test"},
        }
        ws = shop_workspace(path, url, shop, settings=settings)
        first = send_weekly_report(ws, build)
        # Wednesday Sep 30: the last complete ISO week is Mon Sep 21 – Sun Sep 27
        assert (first.week, first.recipients, first.enqueued, first.already_sent) == (
            "2026-W39",
            2,
            2,
            False,
        )
        assert first.path == ws.reports_dir / "weekly-2026-W39.html"
        assert first.link == "https://cockpit.shop.test/reports/weekly-2026-W39.html"
        html = first.path.read_text(encoding="utf-8")
        assert "2026-09-28" in html  # the report is as of the week's end
        again = send_weekly_report(ws, build)
        assert (again.enqueued, again.already_sent) == (0, True)
        ws.clock.advance(timedelta(days=4))  # Sunday Oct 4: still the same report week
        assert send_weekly_report(ws, build).already_sent
        assert len(builds) == 1
        assert deliver_due(ws, worker_id="w1").sent == 2
        assert sorted(r[0] for r, _ in box.messages) == sorted([TEAM, OWNER])
        mail = box.messages[0][1]
        assert mail["Subject"] == "liucun weekly report 2026-W39"
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        assert first.link in text.get_payload(decode=True).decode()
        with ws.state.read() as s:
            keys = sorted(s.scalars(select(OutboxMessage.key)))
        assert keys == sorted(
            f"alerts:weekly:2026-W39:email:{staff_id(ws, a)}" for a in (TEAM, OWNER)
        )
        # the next Monday starts the next report week
        ws.clock.advance(timedelta(days=1))
        assert send_weekly_report(ws, build).week == "2026-W40"
        assert len(builds) == 2
        assert len(list_outbox(ws)) == 4
        ws.close()
