"""The responding world: the simulated shop continues past its data end and its customers
react to what liucun sent them, by their true individual effects (docs/simulator.md,
"The responding world").

Each simulated UTC day every live customer places Poisson(μ) orders, ``μ = λ·share`` in
the world without actions and ``μ = λ·share·(1 + eᵢ·s)`` while a treatment of strength
``s`` is active (``eᵢ`` = ``campaign_lift`` of ``truth.parquet``), and after each order
drops out with probability ``p`` (``dropout_prob_effective``). All worlds — the one that
gets every action, the one that gets none, and per journey the one without that
journey's actions — are driven by the *same* random numbers (one stream per day,
``SeedSequence([seed, WORLD_STREAM, day])``, indexed by customer), so they differ only by
the treatments: a day's order count is the inverse Poisson CDF of one uniform, and the
k-th order of a day drops out when that day's k-th dropout uniform is below ``p``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from liucun.core import ConfigError
from liucun.schema import arrow_schema

if TYPE_CHECKING:
    from liucun.workspace import Workspace

#: Separates the world's random streams from the simulator's (``[seed, chunk]``).
WORLD_STREAM: Final = 7_331
#: How long one treatment acts: whole UTC days from the first midnight at or after ``sent_at``.
EFFECT_DAYS: Final = 30.0
#: Strength of each outbox channel: the share of a customer's lift ``eᵢ`` that one
#: treatment on that channel delivers (a coupon is the campaign's own offer: 1.0).
STRENGTHS: Final[Mapping[str, float]] = {
    "coupon": 1.0,
    "points": 0.5,
    "tier": 0.5,
    "task": 0.5,
    "email": 0.35,
    "sms": 0.35,
    "push": 0.35,
    "wechat": 0.35,
    "whatsapp": 0.35,
    "file": 0.35,
    "in_app": 0.2,
    "webhook": 0.0,
    "tag": 0.0,
}
#: Orders a customer can place in one simulated day (the Poisson tail beyond is cut).
MAX_PER_DAY: Final = 6
#: Browsing visits per day of a live customer, per unit of purchase rate (plus a floor).
VISIT_PER_RATE: Final = 1.5
VISIT_FLOOR: Final = 0.01
#: Delivery: days after the order it is promised, and the largest lateness.
PROMISE_DAYS: Final = 2.0
MAX_LATE_DAYS: Final = 4
_US_PER_DAY: Final = 86_400_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NO_DECIMALS: Final = frozenset({"JPY", "KRW"})
_ACTION: Final = "action"
_NONE: Final = "none"
_FORMAT: Final = 1
EVENTS = arrow_schema("events")
#: The columns of :meth:`ResponsiveWorld.truth`.
WORLD_TRUTH_SCHEMA: Final = pa.schema(
    [
        ("user_id", pa.string()),
        ("start", pa.timestamp("us", tz="UTC")),
        ("end", pa.timestamp("us", tz="UTC")),
        *[
            (name, pa.float64())
            for name in (
                "sends",
                "orders",
                "orders_without",
                "incremental_orders",
                "revenue",
                "revenue_without",
                "incremental_revenue",
                "incremental_margin",
            )
        ],
    ]
)


def _us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _as_instant(value: datetime | date | str, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{what} {value!r} is not an ISO date; e.g. 2026-11-29") from None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def without(journey: str) -> str:
    """The name of the world that gets every action except ``journey``'s."""
    return f"without:{journey}"


@dataclass
class _Customers:
    """The customers of the shop, as arrays indexed by their row in ``truth.parquet``."""

    user_id: np.ndarray
    lam: np.ndarray  # orders per day while alive (× order_share)
    p: np.ndarray  # dropout after each order
    lift: np.ndarray  # eᵢ
    shape: np.ndarray  # Gamma-Gamma p
    rate: np.ndarray  # Gamma-Gamma ν
    late: np.ndarray  # chance an order arrives late
    currency: np.ndarray
    country: np.ndarray
    region: np.ndarray
    account: np.ndarray  # B2B account id (None for consumers)
    alive0: np.ndarray  # alive at the shop's end

    @property
    def n(self) -> int:
        return len(self.user_id)


def _load_customers(shop_dir: Path) -> _Customers:
    truth_path, users_path = shop_dir / "truth.parquet", shop_dir / "users.parquet"
    if not truth_path.exists():
        raise ConfigError(
            f"{shop_dir} has no truth.parquet: pass the directory simulate_shop wrote "
            "(liucun simulate --out DIR), not the workspace"
        )
    t = pq.read_table(truth_path)
    users = pq.read_table(users_path, columns=["user_id", "country", "region", "account_id"])
    geo = {
        u: (c, r, a)
        for u, c, r, a in zip(
            users["user_id"].to_pylist(),
            users["country"].to_pylist(),
            users["region"].to_pylist(),
            users["account_id"].to_pylist(),
            strict=True,
        )
    }
    nothing = (None, None, None)
    ids = np.asarray(t["user_id"].to_pylist(), dtype=object)

    def col(name: str) -> np.ndarray:
        return t[name].to_numpy(zero_copy_only=False).astype(float)

    lam = np.nan_to_num(col("purchase_rate")) * np.nan_to_num(col("order_share"))
    return _Customers(
        user_id=ids,
        lam=lam,
        p=np.clip(np.nan_to_num(col("dropout_prob_effective")), 0.0, 1.0),
        lift=np.nan_to_num(col("campaign_lift")),
        shape=col("spend_shape"),
        rate=col("spend_rate"),
        late=np.clip(np.nan_to_num(col("late_delivery_prob")), 0.0, 1.0),
        currency=np.asarray(t["currency"].to_pylist(), dtype=object),
        country=np.asarray([geo.get(u, nothing)[0] for u in ids], dtype=object),
        region=np.asarray([geo.get(u, nothing)[1] for u in ids], dtype=object),
        account=np.asarray([geo.get(u, nothing)[2] for u in ids], dtype=object),
        alive0=t["alive_at_end"].to_numpy(zero_copy_only=False).astype(bool) & (lam > 0),
    )


def shop_end(shop_dir: Path | str) -> datetime:
    """UTC midnight after the last event of the simulated shop in ``shop_dir`` (where its
    responding world starts)."""
    shop_dir = Path(shop_dir)
    parts = sorted((shop_dir / "events").glob("part-*.parquet"))
    last = max(
        (pc.max(pq.read_table(p, columns=["ts"])["ts"]).as_py() for p in parts), default=None
    )
    if last is None:
        raise ConfigError(f"{shop_dir}/events holds no events; simulate the shop first")
    day = last.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class _Treatments:
    """The sent outbox rows the world knows, as arrays."""

    user: np.ndarray  # customer index
    at: np.ndarray  # sent_at, µs
    strength: np.ndarray
    journey: np.ndarray  # journey name or "" (a send outside journeys)


@dataclass
class ResponsiveWorld:
    """The simulated shop, continued past its data end, responding to what was sent.

    Build it with :func:`responsive_world`. :meth:`advance` simulates whole UTC days from
    the world's time to ``until``, writes the customers' events to the workspace's
    warehouse and keeps its state under ``<workspace>/world/`` (so a later run resumes).
    :meth:`truth` gives the true incremental orders, revenue and margin of what was sent.
    """

    shop_dir: Path
    seed: int = 0
    strengths: Mapping[str, float] = field(default_factory=lambda: dict(STRENGTHS))
    effect_days: float = EFFECT_DAYS
    start: datetime | None = None
    workspace_path: Path | None = None
    _customers: _Customers | None = field(default=None, repr=False)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _now: datetime | None = field(default=None, repr=False)
    _alive: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _orders: dict[str, list[pa.Table]] = field(default_factory=dict, repr=False)
    _pending: pa.Table | None = field(default=None, repr=False)

    # -- set-up ------------------------------------------------------------------------

    @property
    def customers(self) -> _Customers:
        if self._customers is None:
            self._customers = _load_customers(self.shop_dir)
            self._index = {u: i for i, u in enumerate(self._customers.user_id)}
        return self._customers

    @property
    def now(self) -> datetime | None:
        """The world's time: every day before it is simulated (None before the first run)."""
        return self._now

    @property
    def worlds(self) -> tuple[str, ...]:
        """The worlds kept: ``action``, ``none`` and ``without:<journey>`` per journey."""
        return tuple(self._alive)

    def _dir(self, ws_path: Path) -> Path:
        return ws_path / "world"

    def _fresh(self) -> None:
        c = self.customers
        self._now = self.start or shop_end(self.shop_dir)
        self._alive = {_ACTION: c.alive0.copy(), _NONE: c.alive0.copy()}
        self._orders = {_ACTION: [], _NONE: []}
        self._pending = _pending_table([], [], [], [], [])

    def _load(self, ws_path: Path) -> None:
        """Resume from ``<ws>/world/`` when it holds a state, else start at the shop's end."""
        if self._now is not None and self.workspace_path == ws_path:
            return
        self.workspace_path = ws_path
        meta_path = self._dir(ws_path) / "meta.json"
        if not meta_path.exists():
            self._fresh()
            return
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("seed") != self.seed or Path(meta["shop_dir"]) != self.shop_dir.resolve():
            raise ConfigError(
                f"the world in {self._dir(ws_path)} was started from {meta['shop_dir']} with "
                f"seed {meta.get('seed')}; pass the same shop directory and seed, or delete "
                "that directory to start the world again"
            )
        if meta["strengths"] != dict(self.strengths) or meta["effect_days"] != self.effect_days:
            raise ConfigError(
                f"the world in {self._dir(ws_path)} runs with strengths {meta['strengths']} and "
                f"effect_days {meta['effect_days']:g}; resume it with the same options "
                "(liucun.simulate.load_world(ws) reopens it as it was)"
            )
        c = self.customers
        state = pq.read_table(self._dir(ws_path) / meta["state"])
        if state.num_rows != c.n:
            raise ConfigError(f"{meta['state']} does not match {self.shop_dir}/truth.parquet")
        self._alive = {
            w: np.array(state[f"alive:{w}"].to_numpy(zero_copy_only=False), dtype=bool)
            for w in meta["worlds"]
        }
        orders = pq.read_table(self._dir(ws_path) / meta["orders"])
        self._orders = {
            w: [orders.filter(pc.equal(orders["world"], w)).drop(["world"])] for w in meta["worlds"]
        }
        self._pending = pq.read_table(self._dir(ws_path) / meta["pending"])
        self._now = datetime.fromisoformat(meta["now"])

    def _save(self, ws_path: Path) -> None:
        """Write the state files, then ``meta.json`` naming them (the commit point)."""
        d = self._dir(ws_path)
        d.mkdir(parents=True, exist_ok=True)
        assert self._now is not None
        stamp = self._now.strftime("%Y%m%dT%H%M%S")
        state = pa.table(
            {"user_id": self.customers.user_id.tolist()}
            | {f"alive:{w}": pa.array(a) for w, a in self._alive.items()}
        )
        names = {"state": f"state-{stamp}.parquet", "orders": f"orders-{stamp}.parquet"}
        names["pending"] = f"pending-{stamp}.parquet"
        pq.write_table(state, d / names["state"])
        pq.write_table(self.orders(), d / names["orders"])
        pq.write_table(self._pending, d / names["pending"])
        meta = {
            "format": _FORMAT,
            "shop_dir": str(self.shop_dir.resolve()),
            "seed": self.seed,
            "strengths": dict(self.strengths),
            "effect_days": self.effect_days,
            "now": self._now.isoformat(),
            "worlds": list(self._alive),
            **names,
        }
        tmp = d / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(d / "meta.json")
        for old in d.glob("*.parquet"):
            if old.name not in names.values():
                old.unlink()

    # -- treatments --------------------------------------------------------------------

    def _treatments(self, ws: Workspace, until: datetime) -> _Treatments:
        """Every outbox row with status ``sent`` before ``until``, for a customer of the shop."""
        from sqlalchemy import select

        from liucun.state import OutboxMessage

        with ws.state.read() as s:
            rows = s.execute(
                select(
                    OutboxMessage.user_id,
                    OutboxMessage.sent_at,
                    OutboxMessage.channel,
                    OutboxMessage.journey,
                ).where(
                    OutboxMessage.status == "sent",
                    OutboxMessage.sent_at.is_not(None),
                    OutboxMessage.sent_at < until,
                )
            ).all()
        index = self._index or {}
        keep = [r for r in rows if r[0] in index]
        return _Treatments(
            user=np.asarray([index[r[0]] for r in keep], dtype=np.int64),
            at=np.asarray([_us(r[1].replace(tzinfo=UTC)) for r in keep], dtype=np.int64),
            strength=np.asarray([float(self.strengths.get(r[2], 0.0)) for r in keep]),
            journey=np.asarray([r[3] or "" for r in keep], dtype=object),
        )

    def _strength(self, tr: _Treatments, mask: np.ndarray, day_us: int) -> np.ndarray:
        """Per customer, the strongest treatment active on the day: a treatment acts on
        the ``effect_days`` whole UTC days from the first midnight at or after its send."""
        out = np.zeros(self.customers.n)
        first = -(-tr.at // _US_PER_DAY) * _US_PER_DAY
        end = first + round(self.effect_days) * _US_PER_DAY
        on = mask & (first <= day_us) & (day_us < end)
        if on.any():
            np.maximum.at(out, tr.user[on], tr.strength[on])
        return out

    # -- the simulation ----------------------------------------------------------------

    def advance(self, ws: Workspace, until: datetime | date | str) -> int:
        """Simulate every whole UTC day from the world's time to ``until`` and ingest the
        customers' events; returns how many events were added to the warehouse.

        Treatments are the outbox rows ``sent`` before ``until`` (see :data:`STRENGTHS`); a
        day already simulated is never simulated again, so a repeated step adds nothing.
        """
        from liucun.ingest import ingest_tables

        until = _as_instant(until, "until")
        self._load(Path(ws.path))
        assert self._now is not None
        days = math.floor((until - self._now) / timedelta(days=1))
        if days <= 0:
            return 0
        tr = self._treatments(ws, self._now + timedelta(days=days))
        for j in sorted(set(tr.journey) - {""}):
            if without(j) not in self._alive:  # no send of j acted yet: same as the action world
                self._alive[without(j)] = self._alive[_ACTION].copy()
                self._orders[without(j)] = list(self._orders[_ACTION])
        masks = {w: self._mask(w, tr) for w in self._alive}
        written: list[pa.Table] = []
        for _ in range(days):
            written.append(self._day(_us(self._now), tr, masks))
            self._now += timedelta(days=1)
        written.append(self._due_deliveries(_us(self._now)))
        events = pa.concat_tables(written).sort_by("ts")
        added = 0
        if events.num_rows:
            results = ingest_tables(ws.warehouse, events=events, source="simulated world")
            added = sum(r.accepted for r in results)
        self._save(Path(ws.path))
        return added

    def _mask(self, world: str, tr: _Treatments) -> np.ndarray:
        if world == _ACTION:
            return np.ones(len(tr.user), dtype=bool)
        if world == _NONE:
            return np.zeros(len(tr.user), dtype=bool)
        return tr.journey != world.removeprefix("without:")

    def _day(self, day_us: int, tr: _Treatments, masks: dict[str, np.ndarray]) -> pa.Table:
        """One UTC day in every world; returns the action world's events of the day."""
        c, k = self.customers, MAX_PER_DAY
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, WORLD_STREAM, day_us]))
        u_count = rng.random(c.n)
        u_drop = rng.random((c.n, k))
        times = np.sort(rng.random((c.n, k)), axis=1)
        values = rng.gamma(c.shape[:, None], size=(c.n, k)) / c.rate[:, None]
        u_visit = rng.random(c.n)
        u_late = rng.random((c.n, k))
        late_days = rng.integers(1, MAX_LATE_DAYS + 1, size=(c.n, k))
        visit_times = rng.random((c.n, 3))
        action_counts = np.zeros(c.n, dtype=np.int64)
        for world, alive in self._alive.items():
            mult = 1.0 + c.lift * self._strength(tr, masks[world], day_us)
            mu = np.where(alive, c.lam * np.maximum(mult, 0.0), 0.0)
            count = _poisson_inverse(u_count, mu, k)
            dropped = (u_drop < c.p[:, None]) & (np.arange(k)[None, :] < count[:, None])
            first = np.where(dropped.any(axis=1), dropped.argmax(axis=1) + 1, k + 1)
            count = np.minimum(count, first)
            alive &= first > k
            placed = np.arange(k)[None, :] < count[:, None]
            who, nth = np.nonzero(placed)
            self._orders[world].append(
                pa.table(
                    {
                        "user_index": pa.array(who.astype(np.int32)),
                        "nth": pa.array(nth.astype(np.int8)),
                        "ts": pa.array(day_us + (times[who, nth] * _US_PER_DAY).astype(np.int64)),
                        "revenue": pa.array(_rounded(values[who, nth], c.currency[who])),
                    }
                )
            )
            if world == _ACTION:
                action_counts = count
        alive = self._alive[_ACTION]
        n_visits = _poisson_inverse(u_visit, np.where(alive, VISIT_PER_RATE * c.lam, 0.0), 3)
        n_visits += (alive & (u_visit < VISIT_FLOOR)).astype(np.int64)
        return self._events(
            day_us,
            action_counts,
            (times, values, u_late, late_days),
            np.minimum(n_visits, 3),
            visit_times,
        )

    def _events(
        self,
        day_us: int,
        counts: np.ndarray,
        draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        n_visits: np.ndarray,
        visit_times: np.ndarray,
    ) -> pa.Table:
        """The action world's events of one day: visits, orders (each after a visit),
        and the orders' deliveries (kept pending until their time)."""
        c, (times, values, u_late, late_days) = self.customers, draws
        day = (day_us // _US_PER_DAY) % 100_000
        who, nth = np.nonzero(np.arange(MAX_PER_DAY)[None, :] < counts[:, None])
        order_ts = day_us + (times[who, nth] * _US_PER_DAY).astype(np.int64)
        order_ids = [f"OW{self.seed}-{day:05d}-{i:08d}-{n}" for i, n in zip(who, nth, strict=True)]
        vwho, vnth = np.nonzero(np.arange(3)[None, :] < n_visits[:, None])
        visit_ts = day_us + (visit_times[vwho, vnth] * _US_PER_DAY).astype(np.int64)
        pre = np.maximum(order_ts - 600_000_000, day_us)
        late = u_late[who, nth] < c.late[who]
        lateness = np.where(late, late_days[who, nth], 0)
        self._pending = pa.concat_tables(
            [
                self._pending,
                _pending_table(
                    who.tolist(),
                    order_ids,
                    (order_ts + int(PROMISE_DAYS * _US_PER_DAY)).tolist(),
                    lateness.tolist(),
                    order_ts.tolist(),
                ),
            ]
        )
        rows = _rows(
            kind="order",
            ids=[f"EW{self.seed}-{o}" for o in order_ids],
            users=who,
            ts=order_ts,
            c=c,
            revenue=_rounded(values[who, nth], c.currency[who]),
            order_ids=order_ids,
            properties=['{"items":1,"source":"simulated_world"}'] * len(who),
        )
        before = _rows(
            kind="visit",
            ids=[f"EW{self.seed}-V{o}" for o in order_ids],
            users=who,
            ts=pre,
            c=c,
        )
        browse = _rows(
            kind="visit",
            ids=[f"EW{self.seed}-B{day:05d}-{i:08d}-{n}" for i, n in zip(vwho, vnth, strict=True)],
            users=vwho,
            ts=visit_ts,
            c=c,
        )
        return pa.concat_tables([rows, before, browse])

    def _due_deliveries(self, now_us: int) -> pa.Table:
        """The pending deliveries due before ``now_us`` as events (the rest stay pending)."""
        c, pend = self.customers, self._pending
        assert pend is not None
        delivered = pc.add(pend["promised_ts"], pc.multiply(pend["late_days"], _US_PER_DAY))
        due = pc.less(delivered, now_us).to_numpy(zero_copy_only=False)
        self._pending = pend.filter(pa.array(~due))
        d = pend.filter(pa.array(due))
        users = d["user_index"].to_numpy()
        promised = d["promised_ts"].to_numpy()
        late = d["late_days"].to_numpy()
        ts = promised + late * _US_PER_DAY
        props = [
            json.dumps(
                {
                    "promised_ts": _at(p).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "delivered_ts": _at(t).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "late_days": int(lt),
                },
                separators=(",", ":"),
            )
            for p, t, lt in zip(promised, ts, late, strict=True)
        ]
        ids = d["order_id"].to_pylist()
        return _rows(
            kind="delivery",
            ids=[f"EW{self.seed}-D{o}" for o in ids],
            users=users,
            ts=ts,
            c=c,
            order_ids=ids,
            properties=props,
        )

    # -- what it knows -----------------------------------------------------------------

    def orders(self) -> pa.Table:
        """Every order the world placed since it started, in every world: ``user_index``
        (the row in ``truth.parquet``), ``nth`` (its place in the day), ``ts`` (µs since
        the epoch), ``revenue`` and ``world``."""
        parts = []
        for w, tables in self._orders.items():
            t = pa.concat_tables(tables) if tables else _empty_orders()
            parts.append(t.append_column("world", pa.array([w] * t.num_rows, pa.string())))
        return pa.concat_tables(parts) if parts else _empty_orders()

    def truth(
        self,
        journey: str | None = None,
        *,
        windows: Any | None = None,
        margin: float = 1.0,
        cost: float = 0.0,
        ws: Workspace | None = None,
    ) -> pa.Table:
        """True incremental orders, revenue and margin per treated customer.

        The difference is the action world minus the world without the treatments:
        without any (``journey=None``) or without ``journey``'s own (the journey's
        customers also get the other journeys' actions in both). A row per customer who
        received a ``sent`` outbox row (of ``journey``, when given), summing their orders
        from their first such send to the world's time — or, with ``windows`` (a table or
        frame of ``user_id``, ``start``, ``end``), one row per window, over that window.
        ``incremental_margin = margin × incremental_revenue − cost × sends`` (sends
        counted within the row's span).

        Columns: ``user_id``, ``start``, ``end``, ``sends``, ``orders``,
        ``orders_without``, ``incremental_orders``, ``revenue``, ``revenue_without``,
        ``incremental_revenue``, ``incremental_margin``.
        """
        ws_path = Path(ws.path) if ws is not None else self.workspace_path
        if ws_path is None:
            raise ConfigError("the world has not run in a workspace yet; call advance(ws, …)")
        self._load(ws_path)
        assert self._now is not None
        other = _NONE if journey is None else without(journey)
        if other not in self._alive:
            other = _ACTION  # the journey never sent anything the world saw
        tr = self._treatments_from(ws, ws_path)
        pick = np.ones(len(tr.user), dtype=bool) if journey is None else tr.journey == journey
        spans = self._spans(tr, pick, windows)
        import pandas as pd

        orders = self.orders().to_pandas()
        out = spans.copy()
        for name, world in (("", _ACTION), ("_without", other)):
            o = orders[orders["world"] == world]
            out[f"orders{name}"], out[f"revenue{name}"] = _sum_in_spans(spans, o)
        sends = pd.DataFrame({"user_index": tr.user[pick], "ts": tr.at[pick], "revenue": 0.0})
        out["sends"], _ = _sum_in_spans(spans, sends)
        out["incremental_orders"] = out["orders"] - out["orders_without"]
        out["incremental_revenue"] = out["revenue"] - out["revenue_without"]
        out["incremental_margin"] = margin * out["incremental_revenue"] - cost * out["sends"]
        out["user_id"] = self.customers.user_id[out["user_index"].to_numpy()]
        out["start"] = pd.to_datetime(out["start"], unit="us", utc=True)
        out["end"] = pd.to_datetime(out["end"], unit="us", utc=True)
        cols = WORLD_TRUTH_SCHEMA.names
        table = pa.Table.from_pandas(out[cols], schema=WORLD_TRUTH_SCHEMA, preserve_index=False)
        return table.replace_schema_metadata(None)

    def _treatments_from(self, ws: Workspace | None, ws_path: Path) -> _Treatments:
        if ws is not None:
            return self._treatments(ws, self._now or _EPOCH)
        from liucun.workspace import open_workspace

        with open_workspace(ws_path) as opened:
            return self._treatments(opened, self._now or _EPOCH)

    def _spans(self, tr: _Treatments, pick: np.ndarray, windows: Any | None) -> Any:
        import pandas as pd

        now_us = _us(self._now or _EPOCH)
        if windows is None:
            first = pd.DataFrame({"user_index": tr.user[pick], "start": tr.at[pick]})
            first = first.groupby("user_index", as_index=False)["start"].min()
            first["end"] = now_us
            return first
        w = windows.to_pandas() if isinstance(windows, pa.Table) else pd.DataFrame(windows)
        index = self._index or {}
        known = w["user_id"].isin(index.keys())
        w = w[known]
        return pd.DataFrame(
            {
                "user_index": w["user_id"].map(index).astype(np.int64).to_numpy(),
                "start": [_us(_as_instant(x, "start")) for x in w["start"]],
                "end": [min(_us(_as_instant(x, "end")), now_us) for x in w["end"]],
            }
        )


def _sum_in_spans(spans: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per span (``user_index``, ``start``, ``end`` µs): how many ``rows`` of that customer
    fall in ``[start, end)``, and the sum of their ``revenue``."""
    if spans.empty:
        return np.zeros(0), np.zeros(0)
    left = spans[["user_index", "start", "end"]].reset_index(drop=True)
    left["span"] = np.arange(len(left))
    m = left.merge(rows[["user_index", "ts", "revenue"]], on="user_index", how="inner")
    m = m[(m["ts"] >= m["start"]) & (m["ts"] < m["end"])]
    counts = np.bincount(m["span"], minlength=len(left)).astype(float)
    revenue = np.bincount(m["span"], weights=m["revenue"], minlength=len(left))
    return counts, revenue


def _poisson_inverse(u: np.ndarray, mu: np.ndarray, cap: int) -> np.ndarray:
    """The Poisson(mu) count whose CDF first exceeds ``u`` (at most ``cap``): monotone in
    ``mu`` for a fixed ``u``, which is what makes the worlds comparable."""
    pmf = np.exp(-mu)
    cdf = pmf.copy()
    count = np.zeros(len(u), dtype=np.int64)
    for k in range(1, cap + 1):
        count += u >= cdf
        pmf = pmf * mu / k
        cdf = cdf + pmf
    return count


def _rounded(values: np.ndarray, currency: np.ndarray) -> np.ndarray:
    whole = np.isin(currency, list(_NO_DECIMALS))
    return np.where(whole, np.round(values), np.round(values, 2))


def _pending_table(
    users: list[int], order_ids: list[str], promised: list[int], late: list[int], at: list[int]
) -> pa.Table:
    return pa.table(
        {
            "user_index": pa.array(users, pa.int64()),
            "order_id": pa.array(order_ids, pa.string()),
            "promised_ts": pa.array(promised, pa.int64()),
            "late_days": pa.array(late, pa.int64()),
            "ordered_ts": pa.array(at, pa.int64()),
        }
    )


def _empty_orders() -> pa.Table:
    return pa.table(
        {
            "user_index": pa.array([], pa.int32()),
            "nth": pa.array([], pa.int8()),
            "ts": pa.array([], pa.int64()),
            "revenue": pa.array([], pa.float64()),
        }
    )


def _rows(
    *,
    kind: str,
    ids: list[str],
    users: np.ndarray,
    ts: np.ndarray,
    c: _Customers,
    revenue: np.ndarray | None = None,
    order_ids: list[str] | None = None,
    properties: list[str] | None = None,
) -> pa.Table:
    """Canonical ``events`` rows (without ``ingested_at``/``load_id``)."""
    n = len(ids)
    users = np.asarray(users, dtype=np.int64)
    nothing = pa.nulls(n, pa.string())
    has_money = revenue is not None
    return pa.table(
        {
            "event_id": pa.array(ids, pa.string()),
            "user_id": pa.array(c.user_id[users].tolist(), pa.string()),
            "anonymous_id": nothing,
            "account_id": pa.array(c.account[users].tolist(), pa.string()),
            "event_type": pa.array([kind] * n, pa.string()),
            "ts": pa.array(np.asarray(ts, dtype=np.int64), EVENTS.field("ts").type),
            "channel": nothing,
            "region": pa.array(c.region[users].tolist(), pa.string()),
            "country": pa.array(c.country[users].tolist(), pa.string()),
            "revenue": pa.array(revenue if has_money else [None] * n, pa.float64()),
            "currency": pa.array(c.currency[users].tolist(), pa.string()) if has_money else nothing,
            "order_id": pa.array(order_ids, pa.string()) if order_ids is not None else nothing,
            "category": nothing,
            "properties": pa.array(properties, pa.string()) if properties is not None else nothing,
        }
    )


def responsive_world(shop_dir: Path | str, **options: Any) -> ResponsiveWorld:
    """The responding world of the simulated shop in ``shop_dir`` (what
    :func:`simulate_shop` wrote: ``truth.parquet``, ``users.parquet``, ``events/``).

    Options: ``seed`` (int, default 0), ``strengths`` (a mapping channel → strength
    merged over :data:`STRENGTHS`, or one number for every channel; 0 = no effect),
    ``effect_days`` (default 30), ``start`` (the world's first day; default the UTC
    midnight after the shop's last event).

    Examples
    --------
    >>> world = responsive_world("shop", seed=1, strengths={"email": 0.5})
    >>> world.strengths["email"], world.strengths["coupon"]
    (0.5, 1.0)
    """
    unknown = set(options) - {"seed", "strengths", "effect_days", "start"}
    if unknown:
        raise ConfigError(
            f"responsive_world has no option {', '.join(sorted(unknown))}; "
            "its options are seed, strengths, effect_days and start"
        )
    given = options.get("strengths")
    if given is None:
        strengths = dict(STRENGTHS)
    elif isinstance(given, int | float):
        strengths = {ch: float(given) for ch in STRENGTHS}
    else:
        strengths = {**STRENGTHS, **{k: float(v) for k, v in dict(given).items()}}
    effect_days = float(options.get("effect_days", EFFECT_DAYS))
    if effect_days <= 0:
        raise ConfigError(f"effect_days must be positive, got {effect_days}; e.g. 30")
    start = options.get("start")
    return ResponsiveWorld(
        shop_dir=Path(shop_dir).resolve(),
        seed=int(options.get("seed", 0)),
        strengths=strengths,
        effect_days=effect_days,
        start=None if start is None else _as_instant(start, "start"),
    )


def load_world(ws: Workspace) -> ResponsiveWorld | None:
    """The world that ran in ``ws`` (from ``<ws>/world/meta.json``), or None."""
    meta_path = Path(ws.path) / "world" / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    world = ResponsiveWorld(
        shop_dir=Path(meta["shop_dir"]),
        seed=int(meta["seed"]),
        strengths=dict(meta["strengths"]),
        effect_days=float(meta["effect_days"]),
    )
    world._load(Path(ws.path))
    return world
