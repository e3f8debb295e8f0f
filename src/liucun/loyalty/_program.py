"""The loyalty program as a file: pydantic models, :func:`load_program` and its digest.

A program file (YAML, see ``examples/loyalty/program.yaml``) holds everything a program
decides: the points policy, earning rules, tiers, loss-aversion settings, coupons and
benefits (definitions only), paid membership plans and referral rewards. Loading checks
all of it and reports every problem at once, each naming its key path, the bad value and
the fix::

    tiers[1].threshold: 500 is below tiers[0]'s 1000; thresholds must increase

Unknown keys are refused with the nearest known key (``tier: did you mean tiers?``).
:attr:`Program.digest` is a content hash that versions a program: the same content gives
the same digest whatever the file's layout, key order or comments.

Tiers are reached by **growth value earned** over a rolling window (成长值) — never by the
spendable points balance, which redemptions lower.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import ibis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liucun.core import ConfigError, check_timezone, read_yaml, validation_problems
from liucun.ingest import ISO_4217
from liucun.segments import FilterSyntaxError, parse_filter

Period = Literal["day", "week", "month", "quarter", "year"]
NonNegative = Annotated[float, Field(ge=0)]

#: Fields a benefit's or coupon's ``unlock`` filter may name: a customer profile
#: (liucun.segments.customer_profiles) plus the loyalty account.
UNLOCK_FIELDS: dict[str, str] = {
    "user_id": "string",
    "stage": "string",
    "orders": "int64",
    "days_since_last": "float64",
    "cadence_days": "float64",
    "recency_days": "float64",
    "frequency": "int64",
    "monetary": "float64",
    "r_score": "int64",
    "f_score": "int64",
    "m_score": "int64",
    "rfm_segment": "string",
    "rfm_class": "string",
    "social_actions": "int64",
    "churn_risk": "float64",
    "customer_type": "string",
    "country": "string",
    "region": "string",
    "language": "string",
    "acquisition_channel": "string",
    "tier": "string",
    "growth_value": "int64",
    "points_balance": "int64",
    "is_member": "boolean",
    "plan": "string",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Model):
    """``amount`` days or months (``{amount: 12, unit: months}``)."""

    amount: int = Field(gt=0)
    unit: Literal["days", "months"]


class Validity(Duration):
    """How long points stay valid, counted from when they become available.

    ``rounding: day`` makes them expire at the end of the last day, ``month`` at the end
    of the last day's month (both in the program's time zone), ``none`` at the instant.
    """

    rounding: Literal["none", "day", "month"] = "day"


class Pending(_Model):
    """When earned points become spendable: ``immediate``, ``after`` ``days`` days, or
    ``on_event``: when an event of that type with the same ``order_id`` arrives
    (``delivery``, the simulator's and the ingest's name for "delivered")."""

    mode: Literal["immediate", "after", "on_event"] = "immediate"
    days: int | None = Field(default=None, gt=0)
    event_type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "immediate":
            return {"mode": "immediate"}
        return value

    @model_validator(mode="after")
    def _complete(self) -> Pending:
        if self.mode == "after" and self.days is None:
            raise ValueError("mode 'after' needs `days`, e.g. {mode: after, days: 7}")
        if self.mode == "on_event" and not self.event_type:
            raise ValueError(
                "mode 'on_event' needs `event_type`, e.g. {mode: on_event, event_type: delivery}"
            )
        if self.mode != "after" and self.days is not None:
            raise ValueError(f"`days` is only read with mode 'after' (the mode is {self.mode!r})")
        if self.mode != "on_event" and self.event_type is not None:
            raise ValueError(
                f"`event_type` is only read with mode 'on_event' (the mode is {self.mode!r})"
            )
        return self


class PointsPolicy(_Model):
    """The points' rules: validity, pending, negative balances, returns and their value.

    ``return_policy`` says what a refund may take back: ``only_pending`` points not yet
    available, ``within_balance`` up to the current balance, ``unlimited`` all of it even
    below zero (allowed only with ``negative_balance: allow``). ``point_value`` is one
    point's worth in the program currency, for the liability (outstanding × value).
    """

    validity: Validity | None = None
    pending: Pending = Pending()
    negative_balance: Literal["forbid", "allow"] = "forbid"
    return_policy: Literal["only_pending", "within_balance", "unlimited"] = "within_balance"
    point_value: NonNegative = 0.01


class Multiplier(_Model):
    """A factor on an order rule's points and/or growth when every given condition holds:
    the member's tier, the order's category or channel, and its local date within
    ``[start, end]`` (inclusive). Several matching multipliers multiply."""

    name: str
    factor: float = Field(gt=0)
    applies_to: Literal["points", "growth", "both"] = "points"
    tiers: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _range(self) -> Multiplier:
        if self.start and self.end and self.end < self.start:
            raise ValueError(
                f"end {self.end} is before start {self.start}; swap them or fix the date"
            )
        return self


class OrderRule(_Model):
    """Points and growth per whole unit of the program currency an order is worth.

    Points and growth are whole numbers: the amount × rate × multipliers, rounded down.
    """

    name: str
    points_per_unit: NonNegative = 1.0
    growth_per_unit: NonNegative = 1.0
    min_amount: NonNegative = 0.0
    multipliers: tuple[Multiplier, ...] = ()


class FirstOrder(_Model):
    """The bonus of a customer's first order worth more than ``min_amount``."""

    growth: int = Field(default=100, ge=0)
    points: int = Field(default=0, ge=0)
    min_amount: NonNegative = 0.0


class Cap(_Model):
    """At most ``events`` rewarded actions and/or ``points`` points per calendar period."""

    per: Period
    events: int | None = Field(default=None, gt=0)
    points: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _something(self) -> Cap:
        if self.events is None and self.points is None:
            raise ValueError("a cap needs `events` or `points`, e.g. {per: month, events: 4}")
        return self


class BehaviourRule(_Model):
    """Points and growth (the action's weight) for each event of ``event_type``."""

    name: str
    event_type: str
    points: int = Field(default=0, ge=0)
    growth: int = Field(default=0, ge=0)
    cap: Cap | None = None


class Earning(_Model):
    """Order rules, the first-order bonus and behaviour rules."""

    orders: tuple[OrderRule, ...] = ()
    first_order: FirstOrder | None = FirstOrder()
    behaviours: tuple[BehaviourRule, ...] = ()


class Tier(_Model):
    """A tier reached with ``threshold`` growth earned in the window."""

    name: str
    threshold: int = Field(ge=0)
    perks: tuple[str, ...] = ()


class TierPolicy(_Model):
    """How tiers are kept: the rolling ``window`` of earned growth, the ``review`` period
    (downgrades happen only at a review; upgrades at once), ``grace_days`` below the
    threshold before a downgrade, and ``downgrade``: ``one_down`` drops one tier per
    review, ``balance_based`` to the tier the window's growth reaches."""

    basis: Literal["earned_growth"] = "earned_growth"
    window: Duration = Duration(amount=12, unit="months")
    review: Period = "month"
    grace_days: int = Field(default=0, ge=0)
    downgrade: Literal["one_down", "balance_based"] = "one_down"


class Decay(_Model):
    """Points lost by an idle member: ``share`` of the balance after ``idle_months``."""

    idle_months: int = Field(default=1, gt=0)
    share: float = Field(default=0.10, gt=0, le=1)


class Recall(_Model):
    """The recall package: a coupon and a temporary tier upgrade."""

    coupon: str | None = None
    tier_upgrade_months: int = Field(default=1, ge=0)


class LossAversion(_Model):
    """The silence warning, the decay and the recall package."""

    silence_warning_days: int = Field(default=30, gt=0)
    decay: Decay | None = Decay()
    recall: Recall | None = None


class Coupon(_Model):
    """A coupon definition (codes are issued by the ledger)."""

    id: str
    kind: Literal["value", "percent"]
    amount: float = Field(gt=0)
    min_order: NonNegative = 0.0
    categories: tuple[str, ...] | None = None
    validity_days: int = Field(default=30, gt=0)
    per_customer: int | None = Field(default=1, gt=0)
    budget: NonNegative | None = None
    unlock: str | None = None

    @model_validator(mode="after")
    def _percent(self) -> Coupon:
        if self.kind == "percent" and self.amount >= 100:
            raise ValueError(f"a percent coupon takes less than 100 % off, not {self.amount:g}")
        return self


class Benefit(_Model):
    """A right: unlocked by a segment filter, a tier, or bought with points."""

    id: str
    description: str
    unlock: str | None = None
    tiers: tuple[str, ...] | None = None
    points_cost: int | None = Field(default=None, gt=0)
    hidden: bool = False
    per_customer: int | None = Field(default=None, gt=0)
    period: Period = "month"
    budget: NonNegative | None = None


class Plan(_Model):
    """A paid membership plan (付费会员)."""

    id: str
    name: str
    price: NonNegative
    term: Duration
    perks: tuple[str, ...] = ()
    auto_renew: bool = True
    reminder_days: int = Field(default=7, ge=0)


class Reward(_Model):
    """Points, growth and an optional coupon for one side of a referral."""

    points: int = Field(default=0, ge=0)
    growth: int = Field(default=0, ge=0)
    coupon: str | None = None


class Referral(_Model):
    """Rewards when a referee's first order arrives (both sides)."""

    referrer: Reward = Reward()
    referee: Reward = Reward()


class CouponCap(_Model):
    """At most ``amount`` (program currency) of coupon value per customer and period."""

    amount: float = Field(gt=0)
    per: Period = "month"


class Program(_Model):
    """One loyalty program (see the module docstring)."""

    name: str = Field(min_length=1)
    currency: str
    timezone: str = "UTC"
    points: PointsPolicy = PointsPolicy()
    earning: Earning = Earning()
    tiers: tuple[Tier, ...] = ()
    tier_policy: TierPolicy = TierPolicy()
    loss_aversion: LossAversion = LossAversion()
    coupons: tuple[Coupon, ...] = ()
    coupon_cap: CouponCap | None = None
    #: Program-wide budget for coupon value (in the program currency), None = no limit.
    coupon_budget: NonNegative | None = None
    benefits: tuple[Benefit, ...] = ()
    plans: tuple[Plan, ...] = ()
    referral: Referral | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in ISO_4217:
            near = difflib.get_close_matches(value.upper(), sorted(ISO_4217), n=1)
            tip = f"; did you mean {near[0]}?" if near else ""
            raise ValueError(f"not an ISO 4217 code (three capital letters, e.g. CNY){tip}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            check_timezone(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def digest(self) -> str:
        """SHA-256 of the program's canonical JSON (defaults filled, keys sorted)."""
        return hashlib.sha256(canonical_json(self).encode("utf-8")).hexdigest()

    def tier_names(self) -> list[str]:
        """Tier names from the lowest to the highest."""
        return [t.name for t in self.tiers]


def canonical_json(program: Program) -> str:
    """The program as JSON with sorted keys and no whitespace: the input of the digest."""
    return json.dumps(
        program.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


class ProgramError(ConfigError):
    """A program file is invalid; ``problems`` lists every one, each a sentence."""

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")
        self.problems = problems


def load_program(path: Path | str) -> Program:
    """The program in the YAML file ``path``, validated (see the module docstring).

    Raises
    ------
    ProgramError
        Any key or value is invalid; the message lists every problem.
    ConfigError
        The file does not exist.
    InvalidInput
        The file is not YAML that program files may use (the message gives the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass the program's YAML file")
    text = path.read_text(encoding="utf-8")
    return parse_program(read_yaml(text, source=str(path)), source=str(path))


def parse_program(data: Any, *, source: str = "program") -> Program:
    """:func:`load_program` on data already read: a dict as YAML gives it, or
    ``json.loads(canonical_json(program))`` — a program stored as its canonical JSON
    reads back with the same digest."""
    if not isinstance(data, dict):
        raise ProgramError(source, ["the file must be a mapping of keys such as name, currency"])
    try:
        program = Program.model_validate(data)
    except ValidationError as exc:
        raise ProgramError(source, validation_problems(Program, exc)) from None
    problems = _cross_checks(program)
    if problems:
        raise ProgramError(source, problems)
    return program


def _cross_checks(p: Program) -> list[str]:
    """Problems no single field shows: order, references, policies that contradict."""
    out: list[str] = []
    out += _unique("tiers", [t.name for t in p.tiers])
    for i, (low, high) in enumerate(zip(p.tiers, p.tiers[1:], strict=False)):
        if high.threshold <= low.threshold:
            word = "below" if high.threshold < low.threshold else "equal to"
            out.append(
                f"tiers[{i + 1}].threshold: {high.threshold} is {word} tiers[{i}]'s "
                f"{low.threshold}; thresholds must increase"
            )
    if p.tiers and p.tiers[0].threshold != 0:
        out.append(
            f"tiers[0].threshold: {p.tiers[0].threshold} leaves new members without a tier; "
            "the first tier's threshold must be 0"
        )
    tiers = set(p.tier_names())
    for i, rule in enumerate(p.earning.orders):
        for j, m in enumerate(rule.multipliers):
            for name in m.tiers or ():
                if name not in tiers:
                    out.append(
                        f"earning.orders[{i}].multipliers[{j}].tiers: {name!r} is not a tier; "
                        f"use one of {sorted(tiers) or 'the tiers (none are defined)'}"
                    )
    out += _unique("earning.orders", [r.name for r in p.earning.orders])
    rule_names = [r.name for r in p.earning.orders] + [r.name for r in p.earning.behaviours]
    out += _unique("earning (order and behaviour rule names)", rule_names)
    if "first_order" in rule_names:
        out.append("earning: the rule name 'first_order' is reserved for the first-order bonus")
    coupons = {c.id for c in p.coupons}
    out += _unique("coupons", [c.id for c in p.coupons])
    out += _unique("benefits", [b.id for b in p.benefits])
    out += _unique("plans", [pl.id for pl in p.plans])
    recall = p.loss_aversion.recall
    refs: list[tuple[str, str | None]] = [
        ("loss_aversion.recall.coupon", recall.coupon if recall else None)
    ]
    if p.referral:
        refs += [
            ("referral.referrer.coupon", p.referral.referrer.coupon),
            ("referral.referee.coupon", p.referral.referee.coupon),
        ]
    for where, ref in refs:
        if ref is not None and ref not in coupons:
            out.append(
                f"{where}: {ref!r} is not a coupon id; define it under coupons "
                f"(ids: {sorted(coupons) or 'none yet'})"
            )
    for i, b in enumerate(p.benefits):
        for name in b.tiers or ():
            if name not in tiers:
                out.append(
                    f"benefits[{i}].tiers: {name!r} is not a tier; use one of {sorted(tiers)}"
                )
    filters = [(f"coupons[{i}].unlock", c.unlock) for i, c in enumerate(p.coupons)]
    filters += [(f"benefits[{i}].unlock", b.unlock) for i, b in enumerate(p.benefits)]
    for where, text in filters:
        if text is not None:
            out += _check_filter(where, text)
    if p.points.return_policy == "unlimited" and p.points.negative_balance == "forbid":
        out.append(
            "points.return_policy: 'unlimited' may take a balance below zero, which "
            "negative_balance 'forbid' refuses; allow negative balances or use within_balance"
        )
    return out


def _unique(where: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    twice = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    return [f"{where}: {name!r} is defined twice; names must be unique" for name in twice]


def _check_filter(where: str, text: str) -> list[str]:
    table = ibis.table(UNLOCK_FIELDS, name="loyalty_profiles")
    try:
        parse_filter(text, table)
    except FilterSyntaxError as exc:
        return [f"{where}: {text!r} is not a valid segment filter: {exc}"]
    return []
