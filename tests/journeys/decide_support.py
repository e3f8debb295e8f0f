"""A small shop the decider tests share (tests/journeys/test_decide.py and
tests/api/test_api_decide.py): four customers in Shanghai with orders, a loyalty program
with tiers, coupons (one unlocked by frequency), a monthly coupon cap and benefits,
marketing consent for all, and a journey whose next action is an e-mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from journeys.journey_support import enrol, events, spec, users
from liucun import loyalty
from liucun.journeys._consent import record_consent
from liucun.workspace import Workspace

# 10:00 in Shanghai on a Monday
T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
PROGRAM = """
name: shop
currency: CNY
tiers:
  - {name: silver, threshold: 0, perks: [free_shipping]}
  - {name: gold, threshold: 500}
coupons:
  - {id: ten, kind: value, amount: 10, min_order: 50}
  - {id: forty, kind: value, amount: 40}
  - {id: loyal5, kind: value, amount: 5, unlock: "frequency >= 3"}
coupon_cap: {amount: 45, per: month}
benefits:
  - {id: free_shipping, description: Free shipping}
  - {id: lounge, description: VIP lounge, unlock: "frequency >= 3"}
"""
SH = {"timezone": "Asia/Shanghai", "country": "CN"}
#: Orders per customer, 10 days apart from T0 - 10 days backwards, 80 CNY each.
ORDERS = (("u1", 3), ("u2", 1), ("u3", 1), ("u4", 2))


def decide_shop(ws: Workspace, tmp_path: Path) -> None:
    """Fill ``ws`` (its clock at :data:`T0`) with the shop of the module docstring."""
    users(ws, [{"user_id": f"u{i}", **SH} for i in range(1, 5)])
    rows = []
    for u, n in ORDERS:
        for k in range(n):
            rows.append(
                {
                    "user_id": u,
                    "event_type": "order",
                    "ts": T0 - timedelta(days=10 + 7 * k),
                    "revenue": 80.0,
                    "order_id": f"{u}-{k}",
                }
            )
    events(ws, rows)
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    loyalty.apply_program(ws, path)
    for u, _ in ORDERS:
        record_consent(ws, u, purpose="marketing", channel="*", status="granted", source="t")


def mail_journey(ws: Workspace, user_ids: tuple[str, ...] = ("u1", "u2", "u3", "u4")) -> None:
    """Everyone waits one day, then gets an e-mail: the e-mail is the next action."""
    from liucun.journeys import advance_due

    j = spec(
        name="winback",
        control={"share": 0.0, "allow_zero": True},
        nodes=[
            {"id": "w", "type": "wait", "duration": "1d", "next": "mail"},
            {
                "id": "mail",
                "type": "message",
                "channel": "email",
                "next": "done",
                "template": {"body": {"en": "Come back"}},
            },
            {"id": "done", "type": "exit"},
        ],
    )
    enrol(ws, j, [(u, "k", T0) for u in user_ids])
    advance_due(ws, worker_id="t", now=T0)
