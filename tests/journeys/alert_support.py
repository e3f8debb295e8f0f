"""A simulated shop for the alert tests, and the changes the tests make to it before it
is ingested: one region's repeat orders removed after a date, one category flooded with
viewers who do not buy, scores of a few customers, coupon redemptions.

The shop (8,000 users over 240 days, seed 5, b2c preset, ending 2026-09-30) is simulated
once per session; each test ingests its own variant into a workspace of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from liucun.core import SimulatedClock
from liucun.ingest import ingest_tables
from liucun.schema import arrow_schema
from liucun.workspace import Workspace, init_workspace, open_workspace

END = date(2026, 9, 30)
#: The monitors run the morning after the shop's last day.
NOW = datetime(2026, 9, 30, 6, tzinfo=UTC)
#: The changes start here: the last 7 complete days (Sep 23 – 29) are the window.
SINCE = datetime(2026, 9, 23, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    users: pa.Table
    events: pa.Table

    def region_users(self, region: str) -> set[str]:
        u = self.users
        return set(u.filter(pc.equal(u["region"], region))["user_id"].to_pylist())


def simulate(root: Path) -> Shop:
    from liucun.simulate import simulate_shop

    sim = simulate_shop(root / "sim", preset="b2c", users=8_000, days=240, seed=5, end=END)
    return Shop(pq.read_table(sim.users_path), ds.dataset(sim.events_dir).to_table())


def without_repeat_orders(shop: Shop, region: str, since: datetime = SINCE) -> pa.Table:
    """The shop's events less the orders at or after ``since`` of ``region``'s customers
    who had ordered before (their first orders stay: new customers still come)."""
    ev = shop.events
    orders = ev.filter(pc.equal(ev["event_type"], "order"))
    first = orders.group_by("user_id").aggregate([("ts", "min")])
    first_ts = dict(zip(first["user_id"].to_pylist(), first["ts_min"].to_pylist(), strict=True))
    people = shop.region_users(region)
    drop = [
        e == "order" and u in people and t >= since and t > first_ts.get(u, t)
        for e, u, t in zip(
            ev["event_type"].to_pylist(),
            ev["user_id"].to_pylist(),
            ev["ts"].to_pylist(),
            strict=True,
        )
    ]
    return ev.filter(pa.array([not d for d in drop]))


def with_idle_viewers(
    shop: Shop, category: str, per_day: int, since: datetime = SINCE, days: int = 7
) -> pa.Table:
    """The shop's events plus ``per_day`` made-up visitors a day viewing ``category``
    from ``since`` for ``days`` days without ever ordering."""
    rows = []
    for d in range(days):
        for i in range(per_day):
            at = since + timedelta(days=d, hours=10, minutes=i)
            rows.append((f"idle-{d}-{i}", f"viewer-{d}-{i}", at))
    extra = pa.table(
        {
            "event_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "event_type": ["view"] * len(rows),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "category": [category] * len(rows),
            "channel": ["app"] * len(rows),
        }
    )
    return pa.concat_tables([shop.events, _conform(extra, shop.events.schema)])


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = {
        f.name: t[f.name].cast(f.type) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
        for f in schema
    }
    return pa.table(cols, schema=schema)


def toml_lines(values: dict[str, Any]) -> str:
    """``{"alerts": {...}, "alerts.level1": {...}}`` as liucun.toml sections."""
    out = []
    for section, fields in values.items():
        out.append(f"\n[{section}]")
        for k, v in fields.items():
            out.append(f"{k} = {json.dumps(v)}")
    return "\n".join(out) + "\n"


def shop_workspace(
    path: Path,
    state_url: str,
    shop: Shop,
    events: pa.Table | None = None,
    settings: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> Workspace:
    """A workspace on ``state_url`` with ``settings`` appended to its liucun.toml, the
    shop's users and ``events`` (default: the shop's own) ingested, clock at ``now``."""
    clock = SimulatedClock(now)
    init_workspace(path, state_url=state_url, clock=clock).close()
    if settings:
        with (path / "liucun.toml").open("a", encoding="utf-8") as fh:
            fh.write(toml_lines(settings))
    ws = open_workspace(path, clock=clock)
    load(ws, events if events is not None else shop.events, shop.users)
    return ws


def load(ws: Workspace, events: pa.Table, users: pa.Table | None = None) -> None:
    from liucun.ingest import IngestOptions

    ingest_tables(ws.warehouse, events=events, users=users, options=IngestOptions(clock=ws.clock))


def write_scores(ws: Workspace, rows: Sequence[dict[str, Any]]) -> None:
    """Append score rows (``user_id, churn_risk, clv_365d`` …; ``as_of`` and
    ``scored_at`` default to the clock's now)."""
    schema = arrow_schema("scores")
    now = ws.clock.now()
    full = []
    for r in rows:
        full.append(
            {
                "as_of": now,
                "scored_at": now,
                "model": "retention",
                "model_version": "1",
                **r,
            }
        )
    cols = {f.name: pa.array([r.get(f.name) for r in full], f.type) for f in schema}
    table = pa.table(cols, schema=schema)
    with ws.writing() as wh, wh.transaction() as tx:
        tx.append("scores", wh.read_arrow(table, name="sc").drop("_line"))


def days(start: date, n: int) -> Iterator[date]:
    for i in range(n):
        yield start + timedelta(days=i)
