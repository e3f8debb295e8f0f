"""Test support for the responding world and journey measurement: a small simulated shop
in a workspace, and a journey-like scenario written straight into state (enrolments with
a hashed arm, steps, sent outbox rows) — what the engine and the delivery worker write."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from liucun.ingest import ingest_events, ingest_users
from liucun.simulate import simulate_shop
from liucun.state import JourneyEnrolment, JourneyStep, JourneyVersion, OutboxMessage
from liucun.workspace import Workspace, init_workspace

#: The simulated shops end here (simulate_shop's default), so the world starts here.
SHOP_END = datetime(2026, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    sim_dir: Path
    ws_dir: Path


def make_shop(
    root: Path,
    *,
    users: int = 3_000,
    days: int = 180,
    seed: int = 21,
    state_url: str | None = None,
) -> Shop:
    """Simulate a b2c shop and ingest it into a fresh DuckDB workspace under ``root``
    (state in ``state_url``, default SQLite in the workspace)."""
    sim = simulate_shop(root / "sim", preset="b2c", users=users, days=days, seed=seed)
    with init_workspace(root / "ws", state_url=state_url) as ws:
        ingest_users(ws.warehouse, [sim.users_path])
        ingest_events(ws.warehouse, [sim.events_dir])
    return Shop(root / "sim", root / "ws")


def copy_shop(shop: Shop, target: Path) -> Shop:
    """A private copy of the shop's workspace (the simulation files are only read)."""
    shutil.copytree(shop.ws_dir, target)
    return Shop(shop.sim_dir, target)


def arm_of(journey: str, user_id: str, control_share: float) -> str:
    """The arm by a hash of (journey, user), as the engine assigns it."""
    h = int(hashlib.sha256(f"{journey}:{user_id}".encode()).hexdigest()[:15], 16) / 16**15
    return "control" if h < control_share else "treatment"


def buyers(ws: Workspace) -> list[str]:
    """Customers with at least one order in the shop's history (what a trigger can see)."""
    ev = ws.events()
    ev = ev.filter(ev.event_type == "order")
    return sorted(ev.select("user_id").distinct().to_pyarrow().column(0).to_pylist())


def enrol(
    ws: Workspace,
    name: str,
    users: list[str],
    *,
    at: datetime = SHOP_END + timedelta(hours=1),
    control_share: float = 0.5,
    channel: str = "coupon",
    margin: float = 0.4,
    cost: float = 2.0,
    window_days: float = 30,
    second_share: float = 0.0,
) -> dict[str, int]:
    """Write journey ``name`` (nodes ``offer`` → ``remind`` → ``done``) and enrol ``users``
    at ``at``: every enrolment reaches ``offer`` (treatment: an outbox row on ``channel``
    sent an hour later; control: withheld); those whose hash falls below
    ``second_share`` also reach ``remind`` (an email, or withheld). Returns the arm sizes."""
    definition = {
        "name": name,
        "trigger": {"type": "inactivity", "days": 7},
        "control": {"share": control_share},
        "goal": {"event": "order", "window_days": window_days, "exit": False},
        "value": {"margin": margin, "cost": cost},
        "start": "offer",
        "nodes": [
            {"id": "offer", "type": "coupon", "coupon": "comeback10", "next": "remind"},
            {"id": "remind", "type": "message", "channel": "email", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    sizes = {"treatment": 0, "control": 0}
    with ws.state.write() as s:
        s.add(
            JourneyVersion(
                journey=name,
                version=1,
                digest=hashlib.sha256(json.dumps(definition).encode()).hexdigest(),
                definition=json.dumps(definition, sort_keys=True),
                source="",
                migrate=False,
                created_at=at,
                created_by="test",
            )
        )
        rows = []
        for user in users:
            arm = arm_of(name, user, control_share)
            sizes[arm] += 1
            rows.append(
                JourneyEnrolment(
                    journey=name,
                    version=1,
                    user_id=user,
                    entry_key="once",
                    arm=arm,
                    node="done",
                    status="done",
                    context="{}",
                    entered_at=at,
                    updated_at=at,
                )
            )
        s.add_all(rows)
        s.flush()
        for e in rows:
            nodes = ["offer"]
            if arm_of(f"{name}:remind", e.user_id, second_share) == "control":
                nodes.append("remind")
            for node in nodes:
                _step(s, e, node, "entered", at)
                if e.arm == "control":
                    _step(s, e, node, "withheld", at)
                    continue
                _step(s, e, node, "action", at)
                sent = at + timedelta(hours=1 if node == "offer" else 25)
                s.add(
                    OutboxMessage(
                        key=f"j:{name}:{e.id}:{node}:1",
                        journey=name,
                        version=1,
                        node=node,
                        enrolment_id=e.id,
                        user_id=e.user_id,
                        channel=channel if node == "offer" else "email",
                        payload=json.dumps({"coupon_id": "comeback10"}),
                        status="sent",
                        attempts=1,
                        next_attempt_at=at,
                        sent_at=sent,
                        created_at=at,
                        updated_at=sent,
                    )
                )
                _step(s, e, node, "sent", sent)
    return sizes


def suppress(ws: Workspace, name: str, node: str, user_ids: list[str], reason: str) -> None:
    """Mark the sent rows of ``user_ids`` at ``node`` cancelled with a suppressed step."""
    from sqlalchemy import select

    with ws.state.write() as s:
        for row in s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.journey == name,
                OutboxMessage.node == node,
                OutboxMessage.user_id.in_(user_ids),
            )
        ):
            row.status = "cancelled"
            row.sent_at = None
            s.add(
                JourneyStep(
                    key=f"{row.enrolment_id}:{node}:suppressed",
                    enrolment_id=row.enrolment_id,
                    journey=name,
                    version=1,
                    node=node,
                    user_id=row.user_id,
                    kind="suppressed",
                    reason=reason,
                    at=row.created_at,
                )
            )


def _step(s, e: JourneyEnrolment, node: str, kind: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    s.add(
        JourneyStep(
            key=f"{e.id}:{node}:1:{kind}",
            enrolment_id=e.id,
            journey=e.journey,
            version=1,
            node=node,
            user_id=e.user_id,
            kind=kind,
            reason=None,
            at=at,
        )
    )
