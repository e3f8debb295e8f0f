"""The alert store on SQLite and PostgreSQL: a valuable customer at risk raises one
level-3 alert and one one-to-one service task (whatever the number of runs), resolved
when the risk falls; acknowledge and snooze (a snoozed alert is quiet until its snooze
ends, then open and told again); SLA breaches from the task queue; a rise in daily
coupon cost; and the sentences for bad answers and settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alert_support import toml_lines, write_scores
from journey_support import users
from sqlalchemy import func, select

from liucun.core import ConfigError, InvalidInput, SimulatedClock
from liucun.journeys import (
    acknowledge,
    get_alert,
    list_alerts,
    list_tasks,
    respond_task,
    run_monitors,
    snooze,
)
from liucun.journeys._alert_delivery import staff_id
from liucun.journeys._tasks import open_task
from liucun.state import CouponCode, CouponRedemption, OutboxMessage
from liucun.workspace import Workspace, init_workspace, open_workspace

NOW = datetime(2026, 9, 30, 6, tzinfo=UTC)
SERVICE = "vip-desk@shop.test"


def _ws(tmp_path: Path, state_url: str, settings: dict[str, Any]) -> Workspace:
    clock = SimulatedClock(NOW)
    init_workspace(tmp_path / "ws", state_url=state_url, clock=clock).close()
    with (tmp_path / "ws" / "liucun.toml").open("a", encoding="utf-8") as fh:
        fh.write(toml_lines(settings))
    return open_workspace(tmp_path / "ws", clock=clock)


def _outbox(ws: Workspace) -> list[str]:
    with ws.state.read() as s:
        return list(s.scalars(select(OutboxMessage.key).order_by(OutboxMessage.id)))


VIP = {
    "alerts": {"monitors": ["customer_risk"], "vip_clv": 1000.0, "vip_risk": 0.6},
    "alerts.level3": {"email": [SERVICE]},
}


def _scores(ws: Workspace) -> None:
    users(
        ws,
        [
            {"user_id": "vip", "customer_type": "b2c"},
            {"user_id": "safe", "customer_type": "b2c"},
            {"user_id": "small", "customer_type": "b2c"},
            {"user_id": "firm", "customer_type": "b2b", "account_id": "A1"},
        ],
    )
    earlier = NOW - timedelta(days=7)
    write_scores(
        ws,
        [
            {"user_id": "vip", "churn_risk": 0.3, "clv_365d": 2400.0, "as_of": earlier},
            {
                "user_id": "vip",
                "churn_risk": 0.8,
                "clv_365d": 2500.0,
                "reasons": ["no order in 60 days"],
            },
            {"user_id": "safe", "churn_risk": 0.2, "clv_365d": 3000.0},
            {"user_id": "small", "churn_risk": 0.9, "clv_365d": 100.0},
            {"user_id": "firm", "churn_risk": 0.7, "clv_365d": 9000.0},
        ],
    )


def test_a_valuable_customer_at_risk_raises_one_level3_alert_and_one_task(
    tmp_path: Path, state_url: str
) -> None:
    ws = _ws(tmp_path, state_url, VIP)
    _scores(ws)
    changes = run_monitors(ws)
    assert [(c.change, c.alert.key, c.alert.level, c.alert.subject) for c in changes] == [
        ("new", "customer_risk:firm", 3, "firm"),
        ("new", "customer_risk:vip", 3, "vip"),
    ]
    vip = changes[1]
    assert vip.alert.value == 0.8 and vip.alert.baseline == 0.6
    assert vip.alert.message == (
        "Customer vip, clv 365d 2,500.00, has a churn risk of 0.80 (was 0.30) (scored "
        "2026-09-30): no order in 60 days. Reach out one to one."
    )
    tasks = {t.user_id: t for t in list_tasks(ws)}
    assert set(tasks) == {"vip", "firm"}
    assert (tasks["vip"].id, tasks["vip"].queue, tasks["vip"].key) == (
        vip.task_id,
        "vip",
        f"alert:{vip.alert.id}",
    )
    # the SLA of the journeys' service tasks: 24 h for a consumer, 2 h for a B2B buyer
    assert tasks["vip"].sla_due_at == NOW + timedelta(hours=24)
    assert tasks["firm"].sla_due_at == NOW + timedelta(hours=2)
    assert tasks["firm"].account_id == "A1"
    assert _outbox(ws) == [
        f"alert:{a.alert.id}:raised:email:{staff_id(ws, SERVICE)}" for a in changes
    ]
    # run twice: no second alert, task or message
    again = run_monitors(ws)
    assert [(c.change, c.notified) for c in again] == [("updated", 0), ("updated", 0)]
    assert len(list_alerts(ws)) == 2 and len(list_tasks(ws)) == 2 and len(_outbox(ws)) == 2
    # a new score under the threshold resolves the alert (and tells the service desk)
    ws.clock.advance(timedelta(hours=1))
    write_scores(ws, [{"user_id": "vip", "churn_risk": 0.35, "clv_365d": 2500.0}])
    done = run_monitors(ws)
    assert [(c.change, c.alert.subject) for c in done] == [("updated", "firm"), ("resolved", "vip")]
    assert get_alert(ws, vip.alert.id).status == "resolved"
    assert _outbox(ws)[-1] == f"alert:{vip.alert.id}:resolved:email:{staff_id(ws, SERVICE)}"
    # a later crossing is a new episode: a new alert and a new task
    ws.clock.advance(timedelta(hours=1))
    write_scores(ws, [{"user_id": "vip", "churn_risk": 0.9, "clv_365d": 2500.0}])
    third = [c for c in run_monitors(ws) if c.alert.subject == "vip"]
    assert [c.change for c in third] == ["new"] and third[0].alert.id != vip.alert.id
    assert len(list_tasks(ws, user_id="vip")) == 2
    ws.close()


def test_acknowledged_and_snoozed_alerts_stay_quiet(tmp_path: Path, state_url: str) -> None:
    ws = _ws(tmp_path, state_url, VIP)
    _scores(ws)
    firm, vip = (c.alert for c in run_monitors(ws))
    sent = len(_outbox(ws))
    acked = acknowledge(ws, firm.id, "li.wei")
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (
        "acknowledged",
        "li.wei",
        NOW,
    )
    assert acknowledge(ws, firm.id, "someone.else").acknowledged_by == "li.wei"  # no change
    s = snooze(ws, vip.id, NOW + timedelta(hours=2), "li.wei")
    assert (s.status, s.snoozed_until) == ("snoozed", NOW + timedelta(hours=2))
    ws.clock.advance(timedelta(hours=1))
    quiet = run_monitors(ws)
    assert [(c.change, c.alert.status, c.notified) for c in quiet] == [
        ("updated", "acknowledged", 0),
        ("updated", "snoozed", 0),
    ]
    assert len(_outbox(ws)) == sent
    # the snooze is over and the customer is still at risk: open and told once more
    ws.clock.advance(timedelta(hours=2))
    back = run_monitors(ws)
    assert [(c.change, c.alert.id, c.alert.status, c.notified) for c in back] == [
        ("reopened", vip.id, "open", 1),
        ("updated", firm.id, "acknowledged", 0),
    ]
    assert _outbox(ws)[-1] == (
        f"alert:{vip.id}:reopened:20260930T090000Z:email:{staff_id(ws, SERVICE)}"
    )
    assert [(c.change, c.notified) for c in run_monitors(ws)] == [("updated", 0)] * 2
    # answers that cannot be
    with pytest.raises(InvalidInput, match="is not in the future"):
        snooze(ws, vip.id, NOW, "li.wei")
    with pytest.raises(InvalidInput, match="there is no alert 999; `liucun alerts list`"):
        acknowledge(ws, 999, "li.wei")
    with pytest.raises(InvalidInput, match="say who answers the alert"):
        acknowledge(ws, vip.id, "  ")
    write_scores(ws, [{"user_id": "vip", "churn_risk": 0.1, "clv_365d": 2500.0}])
    run_monitors(ws)
    with pytest.raises(InvalidInput, match=f"alert {vip.id} resolved at .*nothing to acknowledge"):
        acknowledge(ws, vip.id, "li.wei")
    with pytest.raises(InvalidInput, match="only open or acknowledged alerts can be snoozed"):
        snooze(ws, vip.id, NOW + timedelta(days=3), "li.wei")
    assert [a.status for a in list_alerts(ws, status="live")] == ["acknowledged"]
    with ws.state.read() as st:
        from liucun.state import AuditEntry

        actions = list(
            st.scalars(select(AuditEntry.action).where(AuditEntry.action.like("alerts.%")))
        )
    assert actions == ["alerts.acknowledge", "alerts.snooze"]
    ws.close()


def test_a_task_past_its_sla_raises_a_level3_alert_until_answered(
    tmp_path: Path, state_url: str
) -> None:
    ws = _ws(tmp_path, state_url, {"alerts": {"monitors": ["sla_breach"]}})
    with ws.state.write() as s:
        task, _ = open_task(
            s,
            key="t1",
            user_id="u1",
            queue="returns",
            summary="Broken parcel",
            sla_hours=1,
            now=NOW,
        )
        task_id = int(task.id)
    assert run_monitors(ws) == []  # within its SLA
    ws.clock.advance(timedelta(hours=3))
    (c,) = run_monitors(ws)
    assert (c.change, c.alert.key, c.alert.level, c.alert.scope, c.alert.subject) == (
        "new",
        f"sla_breach:task={task_id}",
        3,
        "queue=returns",
        "u1",
    )
    assert c.alert.value == 2.0  # hours past the SLA
    assert c.notified == 0  # nobody configured for level 3: the alert is still kept
    assert list_tasks(ws)[0].status == "breached"
    respond_task(ws, task_id)
    assert [x.change for x in run_monitors(ws)] == ["resolved"]
    ws.close()


def _redemptions(ws: Workspace, per_day: list[int], amount: float = 20.0) -> None:
    """``per_day[i]`` redemptions of ``amount`` CNY on the i-th of the days ending Sep 29."""
    first = datetime(2026, 9, 30, tzinfo=UTC) - timedelta(days=len(per_day))
    n = 0
    with ws.state.write() as s:
        for i, k in enumerate(per_day):
            for j in range(k):
                at = first + timedelta(days=i, hours=10, minutes=j)
                code = CouponCode(
                    code=f"C{n}",
                    key=f"k{n}",
                    request="{}",
                    program="p",
                    coupon_id="c",
                    user_id=f"u{n}",
                    kind="value",
                    amount=amount,
                    min_order=0.0,
                    currency="CNY",
                    valid_from=at,
                    valid_until=at + timedelta(days=30),
                    period_start="2026-09-01",
                    status="redeemed",
                    issued_at=at,
                    redeemed_at=at,
                )
                s.add(code)
                s.flush()
                s.add(
                    CouponRedemption(
                        code_id=code.id,
                        key=f"r{n}",
                        request="{}",
                        order_id=f"o{n}",
                        order_value=100.0,
                        discount=amount,
                        currency="CNY",
                        redeemed_at=at,
                    )
                )
                n += 1


def test_a_rise_in_daily_coupon_cost_alerts(tmp_path: Path, state_url: str) -> None:
    ws = _ws(tmp_path, state_url, {"alerts": {"monitors": ["coupon_cost"]}})
    rng = np.random.default_rng(4)
    weekday = np.array(
        [(datetime(2026, 9, 30) - timedelta(days=91 - i)).weekday() for i in range(91)]
    )
    base = np.where(weekday >= 5, 12, 8)  # busier weekends
    counts = rng.poisson(base).tolist()
    counts[-7:] = [int(v * 1.8) for v in base[-7:]]  # the last week: 80 % more
    _redemptions(ws, counts)
    (c,) = run_monitors(ws)
    assert (c.change, c.alert.key, c.alert.level) == ("new", "coupon_cost:currency=CNY", 1)
    expected_week = 20.0 * float(base[-7:].sum())
    assert c.alert.value == 20.0 * sum(counts[-7:])
    assert c.alert.baseline == pytest.approx(expected_week, rel=0.15)
    assert (
        "Coupon cost in CNY is" in c.alert.message
        and "above its seasonal baseline" in c.alert.message
    )
    ws.close()


def test_an_ordinary_week_of_coupon_cost_does_not_alert(tmp_path: Path, state_url: str) -> None:
    ws = _ws(tmp_path, state_url, {"alerts": {"monitors": ["coupon_cost"]}})
    rng = np.random.default_rng(5)
    _redemptions(ws, rng.poisson(10, 91).tolist())
    assert run_monitors(ws) == []
    with ws.state.read() as s:
        assert s.scalar(select(func.count()).select_from(CouponRedemption)) > 800
    ws.close()


def test_settings_and_targets_are_checked(tmp_path: Path, state_url: str) -> None:
    from liucun.core import Settings

    with pytest.raises(Exception, match="'churn' is not a monitor; use some of retention"):
        Settings(alerts={"monitors": ["churn"]})
    with pytest.raises(Exception, match=r"'li\.wei' is not an e-mail address"):
        Settings(alerts={"level1": {"email": ["li.wei"]}})
    s = Settings(
        alerts={"owners": {"electronics": "li.wei@shop.cn"}}, targets={"weekly_retention": 0.06}
    )
    assert s.alerts.owners == {"electronics": ["li.wei@shop.cn"]}
    assert s.targets.weekly_retention == 0.06
    ws = _ws(
        tmp_path,
        state_url,
        {"alerts": {"monitors": ["sla_breach"]}, "alerts.level1": {"webhook": ["nowhere"]}},
    )
    with pytest.raises(ConfigError, match=r"needs \[channels.nowhere\] with kind = \"webhook\""):
        run_monitors(ws)
    with pytest.raises(ConfigError, match="'churn' is not a monitor"):
        run_monitors(ws, monitors=["churn"])
    with pytest.raises(InvalidInput, match="status must be live or one of open"):
        list_alerts(ws, status="closed")
    assert json.loads(json.dumps([a.to_dict() for a in list_alerts(ws)])) == []
    ws.close()
