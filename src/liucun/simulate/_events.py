"""Event blocks and their assembly into one canonical ``events`` table per chunk.

Generators produce :class:`Block` s: numeric columns as numpy arrays (codes, UTC times
in days since the window start) and the ``properties`` JSON text. Blocks hold only
events inside the window; :func:`assemble` sorts them by time and turns codes into the
canonical string columns in a few vectorised takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liucun.schema import MONETARY_EVENT_TYPES, STANDARD_EVENT_TYPES, arrow_schema
from liucun.simulate._calendar import Calendar
from liucun.simulate._population import Population
from liucun.simulate._presets import Preset
from liucun.simulate._strings import choose, numbered

TS = arrow_schema("events").field("ts").type

EVENT_CODE = {name: code for code, name in enumerate(STANDARD_EVENT_TYPES)}
_MONETARY = np.array([t in MONETARY_EVENT_TYPES for t in STANDARD_EVENT_TYPES])
US_PER_DAY = 86_400_000_000

#: Columns of the events files: the canonical ones minus what ingest adds.
EVENT_SCHEMA = pa.schema(
    [f for f in arrow_schema("events") if f.name not in ("ingested_at", "load_id")]
)


@dataclass
class Block:
    """Events of one kind (or one session family) inside the window."""

    row: np.ndarray
    etype: np.ndarray
    t: np.ndarray  # UTC, days since window start
    props: pa.Array
    known: np.ndarray
    anon: np.ndarray
    channel: np.ndarray
    revenue: np.ndarray
    order: np.ndarray
    category: np.ndarray


def block(
    etype: str | np.ndarray,
    row: np.ndarray,
    t: np.ndarray,
    props: pa.Array,
    *,
    known: bool | np.ndarray = True,
    anon: bool | np.ndarray = False,
    channel: int | np.ndarray = -1,
    revenue: float | np.ndarray = np.nan,
    order: int | np.ndarray = -1,
    category: int | np.ndarray = -1,
) -> Block:
    """A :class:`Block`; scalar arguments apply to every event."""
    m = row.size

    def full(value: object, dtype: type) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (m,))

    code = EVENT_CODE[etype] if isinstance(etype, str) else etype
    return Block(
        row=row.astype(np.int64),
        etype=full(code, np.int16),
        t=t.astype(np.float64),
        props=props,
        known=full(known, bool),
        anon=full(anon, bool),
        channel=full(channel, np.int16),
        revenue=full(revenue, np.float64),
        order=full(order, np.int64),
        category=full(category, np.int16),
    )


@dataclass
class Chunk:
    """Everything the event generators of one chunk share."""

    preset: Preset
    pop: Population
    cal: Calendar
    rng: np.random.Generator
    index: int
    days: int
    start_us: int
    start_date: np.datetime64
    fav_category: np.ndarray
    counters: dict[str, int] = field(default_factory=dict)

    def ids(self, kind: str, count: int) -> np.ndarray:
        """``count`` fresh numbers of sequence ``kind``, unique within the chunk."""
        first = self.counters.get(kind, 0)
        self.counters[kind] = first + count
        return self.index * 10**9 + first + np.arange(count, dtype=np.int64)

    def in_window(self, t_utc: np.ndarray) -> np.ndarray:
        return (t_utc >= 0.0) & (t_utc < self.days)

    def to_utc(self, t_local: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return t_local - self.pop.off[rows]

    def channel_names(self) -> list[str]:
        return [c for c, _ in self.preset.sales_channels]

    def session_channel(self, rows: np.ndarray, stick: float = 0.75) -> np.ndarray:
        """Each session's sales channel: the user's usual one, sometimes another."""
        weights = np.array([w for _, w in self.preset.sales_channels])
        cdf = np.cumsum(weights / weights.sum())
        other = np.minimum(np.searchsorted(cdf, self.rng.random(rows.size)), cdf.size - 1)
        return np.where(self.rng.random(rows.size) < stick, self.pop.primary[rows], other)

    def category_of(self, rows: np.ndarray, loyal: float = 0.6) -> np.ndarray:
        """Product category: the user's favourite, sometimes another."""
        other = self.rng.integers(0, len(self.preset.categories), rows.size)
        return np.where(self.rng.random(rows.size) < loyal, self.fav_category[rows], other)

    def seconds_text(self, t_utc: np.ndarray) -> pa.Array:
        """ISO 8601 UTC text (nearest second) of times in days since the window start."""
        secs = self.start_us // 1_000_000 + np.round(t_utc * 86_400.0).astype(np.int64)
        stamps = pa.array(secs, type=pa.timestamp("s", tz="UTC"))
        return pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")


def assemble(ctx: Chunk, blocks: list[Block]) -> pa.Table:
    """Sort the chunk's events by time and build the canonical columns."""
    blocks = [b for b in blocks if b.row.size]
    if not blocks:
        return EVENT_SCHEMA.empty_table()

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in blocks])

    end_us = ctx.start_us + ctx.days * US_PER_DAY
    ts = ctx.start_us + np.round(cat("t") * US_PER_DAY).astype(np.int64)
    ts = np.clip(ts, ctx.start_us, end_us - 1)
    perm = np.argsort(ts, kind="stable")
    ts = ts[perm]
    row, etype = cat("row")[perm], cat("etype")[perm]
    known, anon = cat("known")[perm], cat("anon")[perm]
    revenue, order = cat("revenue")[perm], cat("order")[perm]
    pop, preset = ctx.pop, ctx.preset
    m = ts.size
    geo = pop.geo[row]
    monetary = _MONETARY[etype]
    currency = np.where(monetary, pop.currency[row], -1)
    props = pa.concat_arrays([b.props for b in blocks]).take(pa.array(perm))
    columns = {
        "event_id": numbered("E", ctx.index * 10**10 + np.arange(m, dtype=np.int64), 15),
        "user_id": pop.user_id.take(pa.array(row, mask=~known)),
        "anonymous_id": pop.anon_id.take(pa.array(row, mask=~anon)),
        "account_id": pop.account_id.take(pa.array(row)),
        "event_type": choose(STANDARD_EVENT_TYPES, etype),
        "ts": pa.array(ts, type=TS),
        "channel": choose(ctx.channel_names(), cat("channel")[perm]),
        "region": choose([g.region for g in preset.geos], geo),
        "country": choose([g.country for g in preset.geos], geo),
        "revenue": pa.array(revenue, mask=np.isnan(revenue), type=pa.float64()),
        "currency": choose(pop.currencies, currency),
        "order_id": numbered("O", order, 14, mask=order < 0),
        "category": choose(preset.categories, cat("category")[perm]),
        "properties": props,
    }
    return pa.table(columns, schema=EVENT_SCHEMA)
