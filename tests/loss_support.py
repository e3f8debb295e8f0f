"""Shared set-up of the loss-aversion tests (tests/loyalty/test_loss_aversion*.py): a
workspace with the example program applied, a simulated clock, events ingested into its
warehouse, and row counts of every table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import func, select

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.ingest import IngestOptions, ingest_tables
from liucun.schema import TABLES
from liucun.state import Base, LoyaltyNotice
from liucun.workspace import Workspace, init_workspace

EXAMPLE = Path(__file__).parents[1] / "examples" / "loyalty" / "program.yaml"
SH = ZoneInfo("Asia/Shanghai")
# 1 January 2026, 10:00 in Shanghai
T0 = datetime(2026, 1, 1, 2, tzinfo=UTC)


def local(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=SH).astimezone(UTC)


@contextmanager
def program_workspace(path: Path, state_url: str) -> Iterator[Workspace]:
    """A workspace at ``path`` on ``state_url``, the clock at T0, the example applied."""
    with init_workspace(path, state_url=state_url, clock=SimulatedClock(T0)) as w:
        loyalty.apply_program(w, EXAMPLE)
        yield w


def events(ws: Workspace, *rows: tuple[str, str, datetime, float | None]) -> None:
    """Ingest ``(user, event_type, ts, revenue)`` rows into the workspace's warehouse."""
    n = _count_events(ws)
    ingest_tables(
        ws.warehouse,
        events=pa.table(
            {
                "event_id": [f"e{n + i}" for i in range(len(rows))],
                "user_id": [r[0] for r in rows],
                "event_type": [r[1] for r in rows],
                "ts": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
                "revenue": pa.array([r[3] for r in rows], pa.float64()),
                "currency": ["CNY" if r[3] is not None else None for r in rows],
            }
        ),
        options=IngestOptions(clock=ws.clock),
    )


def _count_events(ws: Workspace) -> int:
    return int(ws.table("events").count().to_pyarrow().as_py())


def run(ws: Workspace, day: date, **kw: Any) -> loyalty.LossAversionResult:
    """Move the clock to noon of ``day`` in Shanghai and run the rules as of that day
    (its local midnight)."""
    ws.clock.set(local(day.year, day.month, day.day, 12))
    return loyalty.loss_aversion(ws, as_of=day, **kw)


def table_rows(ws: Workspace) -> dict[str, int]:
    """Rows of every state table and every warehouse table."""
    with ws.state.read() as s:
        out = {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }
    for name in TABLES:
        out[f"warehouse.{name}"] = int(ws.table(name).count().to_pyarrow().as_py())
    return out


def notices(ws: Workspace, kind: str | None = None) -> list[LoyaltyNotice]:
    with ws.state.read() as s:
        q = select(LoyaltyNotice).order_by(LoyaltyNotice.id)
        if kind is not None:
            q = q.where(LoyaltyNotice.kind == kind)
        return list(s.scalars(q).all())


def warnings_in_warehouse(ws: Workspace) -> list[dict[str, Any]]:
    ev = ws.events()
    rows = ev.filter(ev.event_type == loyalty.SILENCE_WARNING).order_by("ts").to_pyarrow()
    return rows.to_pylist()


def lots(ws: Workspace, user: str) -> dict[str, int]:
    return {lot.key: lot.remaining for lot in loyalty.account(ws, user).lots}
