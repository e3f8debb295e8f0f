"""Real-time decisions: the next best action for a customer in a context, from memory.

A :class:`Decider` holds a snapshot of everything a decision reads — each customer's
profile (stage, segment, scores, tier, time zone), the offer the uplift policy chose
for them (:func:`liucun.journeys.offer_choices`), their holdout arm, consents in force,
suppressions, the messages counted by the frequency caps, the coupon value already
committed under the caps, the coupons and benefits their profile unlocks, and the next
action of each journey they are in. :meth:`Decider.refresh` rebuilds the snapshot (a
few queries over the whole population; run it in the background with
:meth:`Decider.start`) and swaps it in at once; :meth:`Decider.refresh_users` rebuilds
the entries of a few customers (after their new events were loaded) and swaps in the
snapshot with them replaced; :meth:`Decider.decide` reads only the snapshot — no
database, no warehouse, no file on the request path.

A decision (:class:`Decision`) gives:

- **benefits**: the rights the customer's tier or profile unlocks (as
  :func:`liucun.loyalty.benefits_for`), and **coupons** the customer may be issued now:
  unlocked by their profile, under the coupon's ``per_customer`` count and the value
  caps (the program's ``coupon_cap`` for its period, ``[guards] coupon_value_cap`` over
  30 days), and a ``min_order`` the cart reaches;
- **offer**: the uplift policy's coupon for the customer when it is one of those
  coupons, else none (the reason says why);
- **actions**: the next action of each journey the customer is in, after the send-time
  guards of :mod:`._guards` applied in memory in the same order — suppression,
  consent, coupon cap, quiet hours, frequency caps (``allowed``, else ``suppressed``,
  ``held`` or ``deferred`` with the guard's reason; ``withheld`` in a journey's control
  arm);
- **holdout**: a fixed share of customers (hashed assignment,
  :func:`liucun.experiments.assign`, experiment ``decide``) is never treated: no offer
  and no action, whatever the context.

Each decision for a known customer is logged as an exposure (experiment
``decide:<placement>``, variant the offer id, ``none`` or ``holdout``, with the
probability of the customer's arm: the policy is deterministic given the arm) — held in
memory and written by :meth:`Decider.flush` in one transaction, by the background
thread every second or as soon as ``flush_at`` are waiting. Decisions do not reserve
anything: issuing the coupon (:func:`liucun.loyalty.issue_coupon`) enforces the caps
under its lock, and a journey's message still passes the guards when it is sent.

A customer the snapshot does not know gets a default decision (no offer, no action,
reason ``unknown customer``) and no exposure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select

from liucun.core import LiucunError, as_utc
from liucun.journeys._consent import ANY_CHANNEL, consent_allows
from liucun.journeys._guards import (
    CAPPED_CHANNELS,
    COUPON_CAP,
    COUPON_WINDOW,
    FREQUENCY_CAP,
    INTERNAL,
    MESSAGE_CHANNELS,
    QUIET_CHANNELS,
    QUIET_HOURS,
    _broken,
    _day_counts,
    coupon_face_value,
    payload_of,
)
from liucun.journeys._local_time import customer_zone, local_day, quiet_until

log = logging.getLogger("liucun.journeys.decide")

#: The experiment of the decision holdout (its hash seed).
DECIDE_EXPERIMENT = "decide"
UNKNOWN = "unknown customer"
HOLDOUT = "holdout"
_STOP_ALL = ("erased", "manual")
_ACTION_CHANNEL = {
    "coupon": "coupon",
    "points": "points",
    "task": "task",
    "webhook": "webhook",
    "tag": "tag",
    "tier_upgrade": "tier",
}


@dataclass(frozen=True)
class Decision:
    """What :meth:`Decider.decide` answered (see the module docstring)."""

    user_id: str
    placement: str
    channel: str | None
    known: bool
    arm: str | None
    probability: float | None
    offer: str | None
    offer_value: float | None
    basis: str
    coupons: tuple[str, ...]
    benefits: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]
    reasons: tuple[str, ...]
    profile: Mapping[str, Any]
    decided_at: datetime
    snapshot_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "user_id": self.user_id,
            "placement": self.placement,
            "channel": self.channel,
            "known": self.known,
            "arm": self.arm,
            "probability": self.probability,
            "offer": self.offer,
            "offer_value": self.offer_value,
            "basis": self.basis,
            "coupons": list(self.coupons),
            "benefits": [dict(b) for b in self.benefits],
            "actions": [dict(a) for a in self.actions],
            "reasons": list(self.reasons),
            "profile": dict(self.profile),
            "decided_at": self.decided_at.isoformat(),
            "snapshot_at": None if self.snapshot_at is None else self.snapshot_at.isoformat(),
        }


@dataclass
class _Customer:
    """One customer's part of the snapshot."""

    tz: str
    profile: dict[str, Any]
    tier: str | None
    arm: str
    probability: float
    offer: str | None
    offer_value: float | None
    basis: str
    unlocked: frozenset[str] = frozenset()  # coupon and benefit ids whose unlock passes
    held: Mapping[str, int] = field(default_factory=dict)  # codes held per coupon
    used_period: float = 0.0  # coupon value committed in the program's cap period
    used_30d: float = 0.0  # coupon face value sent in 30 days (guards' cap)
    suppressed: tuple[tuple[str, str, str], ...] = ()  # (channel, kind, subject kind)
    consents: Mapping[tuple[str, str], tuple[datetime, int, str]] = field(default_factory=dict)
    sent: list[tuple[datetime, str]] = field(default_factory=list)
    actions: tuple[Mapping[str, Any], ...] = ()


@dataclass
class _Snapshot:
    at: datetime
    customers: dict[str, _Customer]
    program: Any | None
    period: str | None


class Decider:
    """In-memory next-best-action decisions (see the module docstring).

    Parameters
    ----------
    ws
        The workspace. The background thread reads its warehouse and state; give the
        decider a workspace of its own when other threads use the same one, or an
        ``access`` that serialises them.
    offers
        Coupon ids the uplift policy chooses among (default: every coupon of the
        program in force).
    margin, cost
        The order margin and per-offer cost of the policy's value (``uplift × margin −
        (face + cost)``).
    holdout
        Share of customers never treated (hashed on the user id).
    flush_at
        Buffered exposures that wake the background writer.
    access
        A context manager factory yielding the workspace a refresh reads (default: ``ws``
        itself); a service passes its warehouse lock (``Service.warehouse``) so that a
        refresh never reads the warehouse while another thread uses it.
    """

    def __init__(
        self,
        ws: Any,
        *,
        offers: Sequence[str] | None = None,
        margin: float = 0.3,
        cost: float = 0.0,
        holdout: float = 0.1,
        flush_at: int = 1_000,
        access: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> None:
        from liucun.experiments import Experiment

        self.ws = ws
        self.offers = None if offers is None else list(offers)
        self.margin = margin
        self.cost = cost
        self.holdout = holdout
        self.flush_at = flush_at
        self._access = access or (lambda: contextlib.nullcontext(ws))
        self.experiment = Experiment(DECIDE_EXPERIMENT, variants=("treatment",), holdout=holdout)
        self._snap = _Snapshot(datetime.min.replace(tzinfo=UTC), {}, None, None)
        self._buffer: list[tuple[str, str, str, float, bool, datetime]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed_at: datetime | None = None
        self.last_error: str | None = None

    # -- the request path --------------------------------------------------------------

    def decide(
        self,
        user_id: str,
        placement: str,
        channel: str | None = None,
        cart_value: float | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """The decision for ``user_id`` at ``placement`` (``channel``: the channel the
        answer will reach the customer by, when it is a message; ``cart_value``: the
        basket, for ``min_order`` and percent coupons). Reads memory only."""
        snap = self._snap
        at = self.ws.clock.now() if now is None else now
        uid = str(user_id)
        c = snap.customers.get(uid)
        if c is None:
            return Decision(
                uid, placement, channel, False, None, None, None, None, UNKNOWN, (), (), (),
                (UNKNOWN,), {}, at, self.refreshed_at,
            )  # fmt: skip
        g = self.ws.settings.guards
        reasons: list[str] = []
        stop = self._stop_all(c)
        benefits = self._benefits(snap.program, c)
        coupons = () if stop else self._coupons(snap.program, c, cart_value, g)
        offer, value, basis = c.offer, c.offer_value, c.basis
        if c.arm == HOLDOUT:
            offer, value, basis = None, None, HOLDOUT
            reasons.append("holdout: this customer is never treated")
        elif stop is not None:
            offer, value, basis = None, None, stop
            reasons.append(f"{stop}: nothing is offered to this customer")
        elif offer is not None and offer not in coupons:
            reasons.append(f"offer {offer}: not eligible now (unlock, per-customer count or cap)")
            offer, value, basis = None, None, COUPON_CAP
        elif offer is not None and channel in MESSAGE_CHANNELS:
            blocked = self._message_block(c, channel, "marketing", g)
            if blocked is not None:
                reasons.append(f"offer {offer}: {blocked} on {channel}")
                offer, value, basis = None, None, blocked
        if offer is None and basis not in (HOLDOUT,) and not reasons:
            reasons.append(f"no offer: {basis}")
        actions = tuple(self._action(c, a, channel, at, g) for a in c.actions)
        if channel is not None:
            actions = tuple(a for a in actions if a["channel"] == channel)
        if c.arm == HOLDOUT:
            actions = tuple({**a, "status": "withheld", "reason": HOLDOUT} for a in actions)
        variant = HOLDOUT if c.arm == HOLDOUT else (offer or "none")
        with self._lock:
            self._buffer.append(
                (
                    f"{DECIDE_EXPERIMENT}:{placement}",
                    uid,
                    variant,
                    c.probability,
                    c.arm == HOLDOUT,
                    at,
                )
            )
            full = len(self._buffer) >= self.flush_at
        if full:
            self._wake.set()
        return Decision(
            uid, placement, channel, True, c.arm, c.probability, offer, value, basis, coupons,
            benefits, actions, tuple(reasons), c.profile, at, self.refreshed_at,
        )  # fmt: skip

    @staticmethod
    def _stop_all(c: _Customer) -> str | None:
        for ch, kind, _ in c.suppressed:
            if ch == ANY_CHANNEL and kind in _STOP_ALL:
                return f"suppressed:{kind}"
        return None

    @staticmethod
    def _suppression(c: _Customer, channel: str) -> str | None:
        internal = channel in INTERNAL
        for ch, kind, _ in c.suppressed:
            if ch == channel or (ch == ANY_CHANNEL and (not internal or kind in _STOP_ALL)):
                return f"suppressed:{kind}"
        return None

    def _message_block(self, c: _Customer, channel: str, purpose: str, g: Any) -> str | None:
        """Suppression or consent on a message channel (as :func:`review_batch`)."""
        hit = self._suppression(c, channel)
        if hit is not None:
            return hit
        own = c.consents.get((purpose, channel))
        anywhere = c.consents.get((purpose, ANY_CHANNEL))
        best = max((m for m in (own, anywhere) if m is not None), default=None)
        status = None if best is None else best[2]
        if not consent_allows(status, purpose, required=g.consent_required):
            return "consent"
        return None

    def _benefits(self, program: Any, c: _Customer) -> tuple[Mapping[str, Any], ...]:
        """:func:`liucun.loyalty.benefits_for` with the unlock filters evaluated at
        refresh."""
        if program is None:
            return ()
        tier = c.tier
        perks = {p for t in program.tiers if t.name == tier for p in t.perks}
        out = []
        for b in program.benefits:
            by_tier = tier is not None and (
                b.id in perks or (b.tiers is not None and tier in b.tiers)
            )
            reasons: list[str] = []
            if b.tiers is not None or b.unlock is not None:
                if b.tiers is not None and not by_tier:
                    continue
                if b.unlock is not None and b.id not in c.unlocked:
                    continue
                if b.tiers is not None:
                    reasons.append(f"tier {tier}")
                if b.unlock is not None:
                    reasons.append(f"unlock: {b.unlock}")
            elif by_tier:
                reasons.append(f"tier {tier} perk")
            elif b.points_cost is not None:
                reasons.append(f"points ({b.points_cost:,})")
            else:
                continue
            out.append(
                {
                    "benefit_id": b.id,
                    "description": b.description,
                    "unlocked_by": "; ".join(reasons),
                    "hidden": b.hidden,
                    "points_cost": b.points_cost,
                }
            )
        return tuple(out)

    def _coupons(
        self, program: Any, c: _Customer, cart_value: float | None, g: Any
    ) -> tuple[str, ...]:
        if program is None:
            return ()
        cap = program.coupon_cap
        out = []
        for cp in program.coupons:
            if cp.unlock is not None and cp.id not in c.unlocked:
                continue
            if cp.per_customer is not None and c.held.get(cp.id, 0) >= cp.per_customer:
                continue
            if cart_value is not None and cart_value < cp.min_order:
                continue
            value = float(cp.amount) if cp.kind == "value" else 0.0
            if cap is not None and (
                c.used_period + value > cap.amount + 1e-9
                or (value == 0 and c.used_period >= cap.amount)
            ):
                continue
            if g.coupon_value_cap is not None and c.used_30d + value > g.coupon_value_cap + 1e-9:
                continue
            out.append(cp.id)
        return tuple(out)

    def _action(
        self, c: _Customer, a: Mapping[str, Any], channel: str | None, at: datetime, g: Any
    ) -> dict[str, Any]:
        """One journey action after the guards, in :func:`review_batch`'s order."""
        out = dict(a)
        ch, purpose = a["channel"], a["purpose"]
        if a["arm"] == "control":
            return {**out, "status": "withheld", "reason": "control"}
        hit = self._suppression(c, ch) if (ch in MESSAGE_CHANNELS or ch == "webhook") else None
        if hit is None and ch in INTERNAL:
            hit = self._stop_all(c)
        if hit is not None:
            return {**out, "status": "suppressed", "reason": hit}
        if ch in MESSAGE_CHANNELS and self._message_block(c, ch, purpose, g) == "consent":
            return {**out, "status": "suppressed", "reason": "consent"}
        if (
            ch == "coupon"
            and a.get("coupon") is not None
            and a["coupon"] not in self._coupons(self._snap.program, c, None, g)
        ):
            return {**out, "status": "suppressed", "reason": COUPON_CAP}
        transactional = purpose == "transactional"
        if ch in QUIET_CHANNELS and not transactional:
            until = quiet_until(at, c.tz, g.quiet_start, g.quiet_end)
            if until is not None:
                return {**out, "status": "held", "reason": QUIET_HOURS, "until": until.isoformat()}
        if ch in CAPPED_CHANNELS and not transactional:
            counts = _day_counts(c.sent, c.tz)
            broken = _broken(counts, local_day(at, c.tz), ch, g)
            if broken is not None:
                return {**out, "status": "deferred", "reason": FREQUENCY_CAP, "cap": broken[0]}
        return {**out, "status": "allowed", "reason": None}

    # -- the background part -----------------------------------------------------------

    def flush(self) -> int:
        """Write the buffered exposures in one transaction; returns how many were new."""
        from liucun.journeys._engine import exposure_id
        from liucun.state import EXPOSURE_COLUMNS, insert_exposures

        with self._flush_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            seen: dict[str, int] = {}
            for i, (exp, uid, _, _, _, at) in enumerate(rows):
                seen.setdefault(exposure_id(exp, "user", uid, at), i)
            idx = list(seen.values())
            table = pa.table(
                {
                    "exposure_id": pa.array(list(seen), pa.string()),
                    "experiment": pa.array([rows[i][0] for i in idx], pa.string()),
                    "layer": pa.nulls(len(idx), pa.string()),
                    "unit_type": pa.array(["user"] * len(idx), pa.string()),
                    "unit_id": pa.array([rows[i][1] for i in idx], pa.string()),
                    "variant": pa.array([rows[i][2] for i in idx], pa.string()),
                    "probability": pa.array([rows[i][3] for i in idx], pa.float64()),
                    "holdout": pa.array([rows[i][4] for i in idx], pa.bool_()),
                    "ts": pa.array([as_utc(rows[i][5]) for i in idx], pa.timestamp("us", tz="UTC")),
                    "load_id": pa.array(["decide"] * len(idx), pa.string()),
                }
            ).select(list(EXPOSURE_COLUMNS))
            try:
                with self.ws.state.write() as s:
                    return insert_exposures(s, table)
            except Exception:
                with self._lock:  # keep them for the next flush: none is lost
                    self._buffer[:0] = rows
                raise

    @property
    def customers(self) -> int:
        """Customers in the snapshot."""
        return len(self._snap.customers)

    @property
    def pending(self) -> int:
        """Exposures waiting for :meth:`flush`."""
        return len(self._buffer)

    def start(self, *, refresh_every: float = 60.0, flush_every: float = 1.0) -> None:
        """Refresh (now, then every ``refresh_every`` s) and flush (every
        ``flush_every`` s, or at ``flush_at`` exposures) in a daemon thread."""
        if self._thread is not None:
            return
        if self.refreshed_at is None:
            try:
                self.refresh()
            except Exception as exc:  # serve default decisions until a refresh works
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("the first decider refresh failed; retrying in the background")
        self._stop.clear()

        def loop() -> None:
            last = time.monotonic() if self.refreshed_at is not None else -refresh_every
            while not self._stop.is_set():
                self._wake.wait(flush_every)
                self._wake.clear()
                try:
                    self.flush()
                    if time.monotonic() - last >= refresh_every:
                        last = time.monotonic()
                        self.refresh()
                    self.last_error = None
                except Exception as exc:  # keep serving the last snapshot
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("decider background work failed; the last snapshot stays")
            self.flush()

        self._thread = threading.Thread(target=loop, name="liucun-decider", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (after a last flush)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self._thread = None

    # -- the snapshot ------------------------------------------------------------------

    def refresh(self) -> int:
        """Rebuild the snapshot from the workspace and swap it in; returns the number of
        customers in it."""
        with self._access() as ws:
            snap = build_snapshot(
                ws,
                experiment=self.experiment,
                offers=self.offers,
                margin=self.margin,
                cost=self.cost,
            )
            self._snap = snap
        self.refreshed_at = snap.at
        return len(snap.customers)

    def refresh_users(self, user_ids: Iterable[str]) -> int:
        """Rebuild the entries of ``user_ids`` only (after their new events or records
        were loaded) and swap in the snapshot with them replaced; the other customers'
        entries, the program and the cap period stay until the next :meth:`refresh`.
        Returns the number of entries rebuilt."""
        wanted = sorted({str(u) for u in user_ids if u is not None and str(u).strip()})
        if not wanted:
            return 0
        with self._access() as ws:
            part = build_snapshot(
                ws,
                experiment=self.experiment,
                offers=self.offers,
                margin=self.margin,
                cost=self.cost,
                users=wanted,
            )
            old = self._snap
            self._snap = _Snapshot(
                old.at, {**old.customers, **part.customers}, old.program, old.period
            )
        return len(part.customers)


def build_snapshot(
    ws: Any,
    *,
    experiment: Any,
    offers: Sequence[str] | None,
    margin: float,
    cost: float,
    now: datetime | None = None,
    users: Sequence[str] | None = None,
) -> _Snapshot:
    """Everything :meth:`Decider.decide` reads, for every customer (a handful of
    whole-population queries) or for ``users`` only (the state queries restricted to
    them; the profile ranks them among everyone as the full refresh does)."""
    from liucun.experiments import assign
    from liucun.journeys._offers import offer_choices
    from liucun.journeys._profiles import matching, profiles
    from liucun.loyalty import DEFAULT_PROGRAM, active_program

    at = as_utc(now if now is not None else ws.clock.now())
    only = None if users is None else sorted({str(u) for u in users})
    prof = profiles(ws, at, only, full=True)
    users = [str(u) for u in prof.column("user_id").to_pylist()]
    try:
        program = active_program(ws, DEFAULT_PROGRAM)
    except LiucunError:
        program = None
    balances = _balances(ws, at, only)
    prof = _with_loyalty_fields(prof, balances)
    unlocked: dict[str, set[str]] = {}
    period = None
    held: dict[str, dict[str, int]] = {}
    used_period: dict[str, float] = {}
    choices: dict[str, Any] = {}
    if program is not None:
        for item in (*program.coupons, *program.benefits):
            if item.unlock is not None:
                for u in matching(prof, item.unlock):
                    unlocked.setdefault(u, set()).add(item.id)
        from liucun.loyalty._coupons import _period_start

        cap = program.coupon_cap
        period = _period_start(at, cap.per if cap else "month", program.timezone)
        held, used_period = _coupon_usage(ws, program, at, period, only)
        chosen = offers if offers is not None else [c.id for c in program.coupons]
        if chosen and users:
            for ch in offer_choices(ws, users, chosen, margin=margin, cost=cost, as_of=at):
                choices[ch.user_id] = ch
    arms = assign(experiment, users) if users else None
    with ws.state.read() as s:
        used_30d = _coupons_sent(ws, s, at, only)
        consents = _consents(s, only)
        suppressed = _suppressions(s, only)
        sent = _sent(s, at, only)
    actions = _journey_actions(ws, only)
    default_tz = ws.settings.reporting_timezone
    keep = ("stage", "rfm_segment", "churn_risk", "p_alive", "clv_365d", "tier", "customer_type")
    cols = {
        k: prof.column(k).to_pylist()
        for k in (*keep, "timezone", "country")
        if k in prof.column_names
    }
    variants = arms.column("variant").to_pylist() if arms is not None else []
    probs = arms.column("probability").to_pylist() if arms is not None else []
    customers: dict[str, _Customer] = {}
    for i, u in enumerate(users):
        choice = choices.get(u)
        tz = customer_zone(
            cols["timezone"][i], cols["country"][i] if "country" in cols else None, default_tz
        )
        customers[u] = _Customer(
            tz=tz,
            profile={k: cols[k][i] for k in keep if k in cols},
            tier=cols["tier"][i] if "tier" in cols else None,
            arm=str(variants[i]),
            probability=float(probs[i]),
            offer=None if choice is None else choice.offer,
            offer_value=None if choice is None else choice.value,
            basis="no_offers" if choice is None else choice.basis,
            unlocked=frozenset(unlocked.get(u, ())),
            held=held.get(u, {}),
            used_period=used_period.get(u, 0.0),
            used_30d=used_30d.get(u, 0.0),
            suppressed=tuple(suppressed.get(u, ())),
            consents=consents.get(u, {}),
            sent=sent.get(u, []),
            actions=tuple(actions.get(u, ())),
        )
    return _Snapshot(at, customers, program, period)


def _only(stmt: Any, column: Any, users: Sequence[str] | None) -> Any:
    """``stmt`` restricted to ``users`` (every user when None)."""
    return stmt if users is None else stmt.where(column.in_(users))


def _balances(
    ws: Any, at: datetime, users: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Per user of the default program: (spendable points, growth value)."""
    from liucun.loyalty import DEFAULT_PROGRAM
    from liucun.state import LoyaltyAccount, LoyaltyLot

    A, L = LoyaltyAccount, LoyaltyLot
    with ws.state.read() as s:
        lots = select(L.account_id, func.sum(L.remaining)).where(
            L.remaining > 0, (L.available_at > at) | (L.expires_at <= at)
        )
        if users is not None:
            lots = lots.join(A, A.id == L.account_id).where(A.user_id.in_(users))
        held = dict(s.execute(lots.group_by(L.account_id)).all())
        return {
            u: (int(bal) - int(held.get(aid, 0) or 0), int(growth))
            for aid, u, bal, growth in s.execute(
                _only(
                    select(A.id, A.user_id, A.balance, A.growth_value).where(
                        A.program == DEFAULT_PROGRAM
                    ),
                    A.user_id,
                    users,
                )
            )
        }


def _with_loyalty_fields(prof: pa.Table, balances: Mapping[str, tuple[int, int]]) -> pa.Table:
    """The profile with every field the unlock filters may name
    (:data:`liucun.loyalty._program.UNLOCK_FIELDS`)."""
    from liucun.loyalty._program import UNLOCK_FIELDS

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
    }
    ids = prof.column("user_id").to_pylist()
    extra = {
        "points_balance": [balances.get(u, (0, 0))[0] for u in ids],
        "growth_value": [balances.get(u, (0, 0))[1] for u in ids],
    }
    for name, kind in UNLOCK_FIELDS.items():
        if name in extra:
            prof = prof.append_column(name, pa.array(extra[name], types[kind]))
        elif name not in prof.column_names:
            prof = prof.append_column(name, pa.nulls(len(ids), types[kind]))
    return prof


def _coupon_usage(
    ws: Any, program: Any, at: datetime, period: str, users: Sequence[str] | None = None
) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """Codes held per user and coupon, and the value committed in the cap period (as
    :func:`liucun.loyalty._coupons._committed_sum`)."""
    from liucun.state import CouponCode, CouponRedemption

    C, R = CouponCode, CouponRedemption
    held: dict[str, dict[str, int]] = {}
    used: dict[str, float] = {}
    with ws.state.read() as s:
        rows = s.execute(_only(
            select(C.user_id, C.coupon_id, C.kind, C.amount, C.status, C.valid_until,
                   C.period_start, R.discount)
            .outerjoin(R, R.code_id == C.id)
            .where(C.program == program.name), C.user_id, users)
        ).all()  # fmt: skip
    for user, coupon, kind, amount, status, until, start, discount in rows:
        mine = held.setdefault(user, {})
        mine[coupon] = mine.get(coupon, 0) + 1
        if start != period:
            continue
        if discount is not None:
            used[user] = used.get(user, 0.0) + float(discount)
        elif status == "issued" and kind == "value" and as_utc(until) > at:
            used[user] = used.get(user, 0.0) + float(amount)
    return held, used


def _coupons_sent(
    ws: Any, s: Any, at: datetime, users: Sequence[str] | None = None
) -> dict[str, float]:
    """Coupon face value sent per user in the guards' 30-day window."""
    from liucun.state import OutboxMessage as O

    programs: dict[str, Any] = {}
    out: dict[str, float] = {}
    for user, text in s.execute(
        _only(
            select(O.user_id, O.payload).where(
                O.channel == "coupon", O.status == "sent", O.sent_at >= at - COUPON_WINDOW
            ),
            O.user_id,
            users,
        )
    ):
        p = payload_of(type("Row", (), {"payload": text})())
        out[user] = out.get(user, 0.0) + coupon_face_value(ws, p, programs)
    return out


def _consents(
    s: Any, users: Sequence[str] | None = None
) -> dict[str, dict[tuple[str, str], tuple[datetime, int, str]]]:
    from liucun.state import ConsentRecord as C

    out: dict[str, dict[tuple[str, str], tuple[datetime, int, str]]] = {}
    for user, purpose, channel, at, id_, status in s.execute(
        _only(select(C.user_id, C.purpose, C.channel, C.at, C.id, C.status), C.user_id, users)
    ):
        mine = out.setdefault(user, {})
        mark = (as_utc(at), id_, status)
        key = (purpose, channel)
        if key not in mine or mark[:2] > mine[key][:2]:
            mine[key] = mark
    return out


def _suppressions(
    s: Any, users: Sequence[str] | None = None
) -> dict[str, list[tuple[str, str, str]]]:
    """Per user (of ``users``, or all): suppressions of their id, and of the address
    hash of their contact on the suppression's channel (or any channel for ``'*'``)."""
    from liucun.journeys._consent import SUPPRESSION_KINDS
    from liucun.state import Contact, Suppression

    by_subject: dict[str, list[tuple[str, str]]] = {}
    for subject, channel, kind in s.execute(
        select(Suppression.subject, Suppression.channel, Suppression.kind)
    ):
        by_subject.setdefault(subject, []).append((channel, kind))
    out: dict[str, list[tuple[str, str, str]]] = {}
    mine = None if users is None else set(users)
    for subject, found in by_subject.items():
        if mine is not None and subject not in mine:
            continue
        for channel, kind in found:
            out.setdefault(subject, []).append((channel, kind, "user"))
    if by_subject:
        for user, channel, digest in s.execute(
            _only(
                select(Contact.user_id, Contact.channel, Contact.address_hash),
                Contact.user_id,
                users,
            )
        ):
            for ch, kind in by_subject.get(digest, ()):
                if ch in (channel, ANY_CHANNEL):
                    # an address suppression stops that address's channel
                    out.setdefault(user, []).append((channel, kind, "address"))
    rank = {k: i for i, k in enumerate(SUPPRESSION_KINDS)}
    for found in out.values():
        found.sort(key=lambda t: rank.get(t[1], 9))
    return out


def _sent(
    s: Any, at: datetime, users: Sequence[str] | None = None
) -> dict[str, list[tuple[datetime, str]]]:
    """What the frequency caps count, per user: messages sent or being sent in the last
    8 days (transactional ones left out), as the guards read them."""
    from liucun.state import OutboxMessage as O

    since = at - timedelta(days=8)
    when = func.coalesce(O.sent_at, O.updated_at)
    out: dict[str, list[tuple[datetime, str]]] = {}
    for user, channel, sent_at, updated_at, text in s.execute(
        _only(
            select(O.user_id, O.channel, O.sent_at, O.updated_at, O.payload).where(
                O.channel.in_(CAPPED_CHANNELS), O.status.in_(("sent", "sending")), when >= since
            ),
            O.user_id,
            users,
        )
    ):
        if (
            text
            and '"transactional"' in text
            and payload_of(type("Row", (), {"payload": text})()).get("purpose") == "transactional"
        ):
            continue
        out.setdefault(user, []).append((as_utc(sent_at or updated_at), channel))
    return out


def _journey_actions(
    ws: Any, users: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per user, the next action of each live enrolment: the current node when it acts,
    else the first action after it along ``next`` (through waits)."""
    from liucun.journeys._engine import LIVE, spec_versions
    from liucun.journeys._spec import ACTION_TYPES
    from liucun.state import JourneyEnrolment as E

    with ws.state.read() as s:
        rows = s.execute(
            _only(
                select(E.user_id, E.journey, E.version, E.node, E.arm).where(E.status.in_(LIVE)),
                E.user_id,
                users,
            )
        ).all()
    specs = spec_versions(ws, {r[1] for r in rows})
    memo: dict[tuple[str, int, str], dict[str, Any] | None] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for user, journey, version, node, arm in rows:
        key = (journey, int(version), node)
        if key not in memo:
            memo[key] = _next_action(specs.get((journey, int(version))), node, ACTION_TYPES)
        found = memo[key]
        if found is not None:
            out.setdefault(user, []).append(
                {**found, "journey": journey, "version": int(version), "arm": arm}
            )
    return out


def _next_action(spec: Any, node_id: str, action_types: Sequence[str]) -> dict[str, Any] | None:
    if spec is None:
        return None
    current = node_id
    for _ in range(10):
        try:
            node = spec.node(current)
        except KeyError:
            return None
        if node.type in action_types:
            channel = getattr(node, "channel", None) or _ACTION_CHANNEL.get(node.type, node.type)
            return {
                "node": node.id,
                "type": node.type,
                "channel": channel,
                "purpose": spec.purpose,
                "coupon": getattr(node, "coupon", None),
                "value": float(spec.value.margin) if hasattr(spec.value, "margin") else None,
            }
        if node.type != "wait" or node.next is None:
            return None
        current = node.next
    return None
