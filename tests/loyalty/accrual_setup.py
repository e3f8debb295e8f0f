"""A workspace for accrual tests: events and users ingested from CSV text, a program
applied from keys given as JSON flow values, a simulated clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_events, ingest_users, load_fx_rates
from liucun.state import LoyaltyAccrualRun, LoyaltyTransaction
from liucun.workspace import Workspace, init_workspace

EVENT_COLUMNS = "event_id,user_id,event_type,ts,revenue,currency,order_id,channel"
#: The loads' own time (ingest refuses events after it), later than every test's events.
LOADED = IngestOptions(now=datetime(2026, 12, 1, tzinfo=UTC))


def at(day: int, hour: int = 10) -> datetime:
    """``day`` of March 2026 at ``hour`` UTC."""
    return datetime(2026, 3, 1, hour, tzinfo=UTC) + timedelta(days=day - 1)


class Shop:
    """A workspace, its clock, and helpers to ingest, apply and read."""

    def __init__(self, root: Path, state_url: str, *, now: datetime) -> None:
        self.root = root
        self.ws: Workspace = init_workspace(
            root / "ws", state_url=state_url, clock=SimulatedClock(now)
        )
        self.loads = 0

    def close(self) -> None:
        self.ws.close()

    def program(self, **keys: Any) -> None:
        """Apply a program named ``t`` in CNY with ``keys`` (each a JSON flow value)."""
        data: dict[str, Any] = {
            "name": "t",
            "currency": "CNY",
            "earning": {
                "orders": [{"name": "spend", "points_per_unit": 1, "growth_per_unit": 1}],
                "first_order": None,
            },
        }
        data.update(keys)
        lines = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items()]
        self.loads += 1
        path = self.root / f"program{self.loads}.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        loyalty.apply_program(self.ws, path)

    def events(self, rows: str) -> None:
        """Ingest events given as CSV lines of :data:`EVENT_COLUMNS`."""
        self.loads += 1
        path = self.root / f"events{self.loads}.csv"
        body = "\n".join(line.strip() for line in rows.strip().splitlines())
        path.write_text(f"{EVENT_COLUMNS}\n{body}\n", encoding="utf-8")
        ingest_events(self.ws.warehouse, [path], LOADED)

    def users(self, text: str) -> None:
        self.loads += 1
        path = self.root / f"users{self.loads}.csv"
        path.write_text(text.strip() + "\n", encoding="utf-8")
        ingest_users(self.ws.warehouse, [path], LOADED)

    def fx(self, text: str) -> None:
        path = self.root / "fx.csv"
        path.write_text(text.strip() + "\n", encoding="utf-8")
        load_fx_rates(self.ws.warehouse, path, quote="CNY")

    def at(self, when: datetime) -> None:
        """Move the clock to ``when``."""
        self.ws.clock.advance(when - self.ws.clock.now())

    def acct(self, user: str) -> loyalty.Account:
        return loyalty.account(self.ws, user)

    def runs(self) -> list[LoyaltyAccrualRun]:
        """The recorded accrual runs, oldest first."""
        with self.ws.state.read() as s:
            return list(s.scalars(select(LoyaltyAccrualRun).order_by(LoyaltyAccrualRun.id)))

    def transactions(self) -> int:
        with self.ws.state.read() as s:
            return int(s.scalar(select(func.count()).select_from(LoyaltyTransaction)) or 0)
