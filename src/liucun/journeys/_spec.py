"""A journey definition: the pydantic models a journey file (YAML) is read into.

The shape (docs/journeys.md has the full reference; examples/journeys/ the demo's)::

    name: inactive_push_coupon
    purpose: marketing                   # consent purpose: marketing, service, transactional
    trigger: {type: inactivity, days: 3}
    audience: "customer_type == 'b2c'"   # optional, the segment filter language on profiles
    reentry: {mode: after, days: 30}     # once | once_per_key | after
    control: {share: 0.1}                # automatic control arm (0 needs allow_zero: true)
    goal: {event: order, window_days: 14}
    value: {margin: 0.3, cost: 0.2}      # per-send cost and the order margin (arbitration, ROI)
    start: push
    nodes:
      - {id: push, type: message, channel: push, next: wait4,
         template: {body: {zh-CN: "…", en: "…"}}}
      - {id: wait4, type: wait, duration: 4d, next: coupon}
      - {id: coupon, type: coupon, coupon: comeback10, next: done}
      - {id: done, type: exit}

Every node has an ``id``; ``next`` names the node that follows (none = the journey ends
there). The models check shapes and types only; :func:`liucun.journeys.load_journey`
checks what needs the whole file or the workspace (ids, cycles, event types, fields,
templates) and names each problem's YAML path and its fix.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}


def parse_duration(text: str | int | float) -> timedelta:
    """``'30m'``, ``'12h'``, ``'3d'``, ``'2w'`` (or a number of days) as a timedelta.

    >>> parse_duration("36h"), parse_duration(2)
    (datetime.timedelta(days=1, seconds=43200), datetime.timedelta(days=2))
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration; write e.g. '3d', '12h' or '30m'")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"{text!r} is negative; a duration is at least 0")
        return timedelta(days=text)
    match = _DURATION.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. '3d', '12h' or '30m'")
    return timedelta(minutes=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[str | int | float, Field(description="'3d', '12h', '30m' or days")]
TimeOfDay = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM")]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,99}$")]
Purpose = Literal["marketing", "service", "transactional"]
MessageChannel = Literal["email", "sms", "push", "wechat", "whatsapp", "in_app"]
#: Every channel an outbox row can have (message channels, webhook, internal actions).
CHANNELS: tuple[str, ...] = (
    "email",
    "sms",
    "push",
    "wechat",
    "whatsapp",
    "in_app",
    "webhook",
    "file",
    "coupon",
    "points",
    "task",
    "tag",
    "tier",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(value: str | int | float | None) -> str | int | float | None:
    if value is not None:
        parse_duration(value)
    return value


# -- triggers ----------------------------------------------------------------------------


class EventTrigger(_Model):
    """Enter on an event (``key``: the property or column that makes it once per …,
    e.g. ``order_id``; ``where``: a filter on the event's columns and properties)."""

    type: Literal["event"]
    event: str
    key: str | None = None
    where: str | None = None


class AbandonedCartTrigger(_Model):
    """Enter when an ``add_to_cart`` has no ``order`` in the same session after ``after``."""

    type: Literal["abandoned_cart"]
    after: Duration = "1h"
    _d = field_validator("after")(_check_duration)


class SegmentTrigger(_Model):
    """Enter when a customer starts (``segment_entry``) or stops (``segment_exit``)
    matching ``filter`` over the profile."""

    type: Literal["segment_entry", "segment_exit"]
    filter: str


class StageTrigger(_Model):
    """Enter on a lifecycle-stage transition into ``stage`` (``entered_decline`` …),
    optionally only from one of ``from_stages``."""

    type: Literal["stage_entered"]
    stage: Literal["potential", "new", "growth", "mature", "decline", "churned"]
    from_stages: list[str] | None = None


class RiskTrigger(_Model):
    """Enter when the latest churn risk (``scores``) crosses ``threshold`` upwards;
    ``model`` keeps only the scores of that saved model (``liucun train`` names it
    ``retention``), None = the latest score whichever model wrote it."""

    type: Literal["risk_crossed"]
    threshold: float = Field(gt=0, lt=1)
    model: str | None = None


class InactivityTrigger(_Model):
    """Enter after ``days`` without any activity of the customer's own."""

    type: Literal["inactivity"]
    days: float = Field(gt=0)


class DatePropertyTrigger(_Model):
    """Enter ``days_before`` a yearly date property (``birthday``) or a dated one
    (``membership_renewal``), at ``at`` local time."""

    type: Literal["date_property"]
    property: Literal["birthday", "membership_renewal", "signup_anniversary"]
    days_before: int = Field(0, ge=0, le=60)
    at: TimeOfDay = "10:00"


class HolidayTrigger(_Model):
    """Enter ``days_before`` a public holiday of the customer's country (python
    ``holidays``); ``names`` keeps only holidays whose name contains one of them."""

    type: Literal["holiday"]
    days_before: int = Field(0, ge=0, le=30)
    names: list[str] | None = None
    at: TimeOfDay = "10:00"


class ScheduleTrigger(_Model):
    """Enter every customer of the audience on a schedule: ``every`` (a duration) from
    ``start`` (ISO date), at ``at`` local time."""

    type: Literal["schedule"]
    every: Duration = "7d"
    start: str | None = None
    at: TimeOfDay = "10:00"
    _d = field_validator("every")(_check_duration)


class ServiceFailureTrigger(_Model):
    """Enter after a late delivery (``late_days`` ≥ ``min_late_days``) or a slow ticket
    (``resolution_hours`` or ``first_response_hours`` ≥ ``min_hours``)."""

    type: Literal["service_failure"]
    kind: Literal["late_delivery", "slow_ticket"]
    min_late_days: float = Field(1, gt=0)
    min_hours: float = Field(48, gt=0)


class ReplenishmentTrigger(_Model):
    """B2B: enter ``days_before`` an account's expected next order (last order + its own
    median gap between orders), for accounts with at least ``min_orders`` orders."""

    type: Literal["replenishment_due"]
    days_before: float = Field(2, ge=0)
    min_orders: int = Field(3, ge=2)
    unit: Literal["account", "user"] = "account"


class LoyaltyTrigger(_Model):
    """Enter on a loyalty event: ``tier_changed`` (``direction`` up/down), or
    ``points_expiring`` ``days_before`` points of the customer expire."""

    type: Literal["loyalty"]
    event: Literal[
        "tier_changed",
        "points_expiring",
        "points_silence_warning",
        "membership_renewal_due",
        "membership_lapsed",
    ]
    direction: Literal["up", "down"] | None = None
    days_before: int = Field(7, ge=0)
    program: str | None = None


Trigger = Annotated[
    EventTrigger
    | AbandonedCartTrigger
    | SegmentTrigger
    | StageTrigger
    | RiskTrigger
    | InactivityTrigger
    | DatePropertyTrigger
    | HolidayTrigger
    | ScheduleTrigger
    | ServiceFailureTrigger
    | ReplenishmentTrigger
    | LoyaltyTrigger,
    Field(discriminator="type"),
]


# -- nodes -------------------------------------------------------------------------------


class _Node(_Model):
    id: NodeId
    next: NodeId | None = None


class WaitNode(_Node):
    """Wait a ``duration``, until the next local ``until_time``, or until a date
    property (``until_property``, at ``until_time`` or 10:00 local). Exactly one of
    duration / until_time / until_property (until_property may add until_time)."""

    type: Literal["wait"]
    duration: Duration | None = None
    until_time: TimeOfDay | None = None
    until_property: Literal["birthday", "membership_renewal"] | None = None
    _d = field_validator("duration")(_check_duration)


class WaitForNode(_Model):
    """Wait for an event (``event``, optionally ``where``) or for a profile ``filter``
    to match, at most ``timeout``; go to ``on_event`` or ``on_timeout``."""

    id: NodeId
    type: Literal["wait_for"]
    event: str | None = None
    where: str | None = None
    filter: str | None = None
    timeout: Duration
    on_event: NodeId | None = None
    on_timeout: NodeId | None = None
    _d = field_validator("timeout")(_check_duration)


class Branch(_Model):
    when: str
    next: NodeId | None = None


class BranchNode(_Model):
    """The first branch whose filter (profile fields) matches, else ``otherwise``."""

    id: NodeId
    type: Literal["branch"]
    branches: list[Branch] = Field(min_length=1)
    otherwise: NodeId | None = None


class Variant(_Model):
    name: NodeId
    weight: float = Field(1.0, gt=0)
    next: NodeId | None = None


class SplitNode(_Model):
    """A random split by hashed assignment (logged as an exposure with its probability);
    ``holdout`` is a share that gets nothing from here on (``holdout_next`` or the end)."""

    id: NodeId
    type: Literal["split"]
    variants: list[Variant] = Field(min_length=1)
    holdout: float = Field(0.0, ge=0, lt=1)
    holdout_next: NodeId | None = None


class AdaptiveSplitNode(_Model):
    """Thompson sampling over ``variants`` (Beta posterior of the goal's conversion per
    variant), with a fixed ``holdout`` the bandit never takes."""

    id: NodeId
    type: Literal["adaptive_split"]
    variants: list[Variant] = Field(min_length=2)
    holdout: float = Field(0.1, gt=0, lt=1)
    holdout_next: NodeId | None = None
    prior: tuple[float, float] = (1.0, 1.0)


class Template(_Model):
    """Jinja text per locale (``zh-CN``, ``en``, …); the customer's language, then its
    base language, then ``default_locale`` is used."""

    subject: dict[str, str] | None = None
    body: dict[str, str] = Field(min_length=1)
    default_locale: str = "en"


class MessageNode(_Node):
    """Send a message on ``channel`` from ``template``."""

    type: Literal["message"]
    channel: MessageChannel
    template: Template
    provider_template_id: str | None = None


class CouponNode(_Node):
    """Issue a coupon of the loyalty program (``coupon``), or let the uplift policy pick
    one of ``choose`` (the offer with the highest expected incremental value; none when
    no offer pays for itself)."""

    type: Literal["coupon"]
    coupon: str | None = None
    choose: list[str] | None = None
    policy: Literal["uplift"] | None = None
    program: str | None = None


class PointsNode(_Node):
    type: Literal["points"]
    points: int = Field(gt=0)
    valid_days: int | None = Field(None, gt=0)
    program: str | None = None


class TaskNode(_Node):
    """A customer-service task in ``queue``; SLA ``sla_hours`` (default 2 h for B2B
    accounts, 24 h otherwise)."""

    type: Literal["task"]
    queue: str = "service"
    summary: str
    sla_hours: float | None = Field(None, gt=0)


class WebhookNode(_Node):
    """POST a signed JSON body (Standard Webhooks) to ``[channels.webhook]`` or ``url``."""

    type: Literal["webhook"]
    url: str | None = None
    body: dict[str, object] = Field(default_factory=dict)


class TagNode(_Node):
    type: Literal["tag"]
    tag: str
    value: str | None = None


class TierUpgradeNode(_Node):
    """A temporary tier upgrade (loyalty ``boost_tier``) for ``days``."""

    type: Literal["tier_upgrade"]
    tier: str
    days: int = Field(30, gt=0)
    program: str | None = None


class ExitNode(_Model):
    id: NodeId
    type: Literal["exit"]


Node = Annotated[
    WaitNode
    | WaitForNode
    | BranchNode
    | SplitNode
    | AdaptiveSplitNode
    | MessageNode
    | CouponNode
    | PointsNode
    | TaskNode
    | WebhookNode
    | TagNode
    | TierUpgradeNode
    | ExitNode,
    Field(discriminator="type"),
]
#: Node types that act on the customer (withheld for the control arm; go to the outbox).
ACTION_TYPES: tuple[str, ...] = (
    "message",
    "coupon",
    "points",
    "task",
    "webhook",
    "tag",
    "tier_upgrade",
)
NODE_TYPES: tuple[str, ...] = (
    "wait",
    "wait_for",
    "branch",
    "split",
    "adaptive_split",
    *ACTION_TYPES,
    "exit",
)


# -- the journey -------------------------------------------------------------------------


class Reentry(_Model):
    """``once`` (ever), ``once_per_key`` (per trigger key, e.g. per order), ``after``
    (again ``days`` after the previous entry ended)."""

    mode: Literal["once", "once_per_key", "after"] = "once_per_key"
    days: float | None = Field(None, gt=0)


class Control(_Model):
    """The automatic control arm: ``share`` of entrants get nothing (default 10 %)."""

    share: float = Field(0.1, ge=0, lt=1)
    allow_zero: bool = False


class Goal(_Model):
    """A conversion: ``event`` within ``window_days`` of entry; ``exit`` ends the
    journey for a customer who converts."""

    event: str = "order"
    window_days: float = Field(14, gt=0)
    exit: bool = True


class Value(_Model):
    """Economics: order ``margin`` (share of revenue), ``cost`` per action sent; used to
    rank journeys competing for one customer (uplift × margin − cost) and for ROI."""

    margin: float = Field(0.3, ge=0, le=1)
    cost: float = Field(0.0, ge=0)
    uplift: float | None = Field(
        None, description="Expected incremental conversions per send when known."
    )


class JourneySpec(_Model):
    """One journey, as validated from its file."""

    name: NodeId
    description: str | None = None
    purpose: Purpose = "marketing"
    trigger: Trigger
    audience: str | None = None
    reentry: Reentry = Field(default_factory=Reentry)
    control: Control = Field(default_factory=Control)
    goal: Goal = Field(default_factory=Goal)
    value: Value = Field(default_factory=Value)
    start: NodeId | None = None
    nodes: list[Node] = Field(min_length=1)
    #: On activation, customers inside an older version move to this one.
    migrate: bool = False

    @property
    def first(self) -> str:
        """The node customers enter at: ``start``, else the first node."""
        return self.start or self.nodes[0].id

    def node(self, node_id: str) -> Node:
        """The node ``node_id`` (KeyError when there is none)."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


def successors(node: Node) -> list[str]:
    """The node ids ``node`` can go to next."""
    found: list[str | None]
    if isinstance(node, WaitForNode):
        found = [node.on_event, node.on_timeout]
    elif isinstance(node, BranchNode):
        found = [b.next for b in node.branches] + [node.otherwise]
    elif isinstance(node, SplitNode | AdaptiveSplitNode):
        found = [v.next for v in node.variants] + [node.holdout_next]
    elif isinstance(node, ExitNode):
        found = []
    else:
        found = [node.next]
    return [f for f in found if f is not None]
