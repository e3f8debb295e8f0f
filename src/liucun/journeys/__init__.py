"""Journeys and delivery: the right action for each customer at the right local time.

Definitions as code (:mod:`._spec`, YAML files read by :func:`load_journey`), versioned in
state with a lifecycle; triggers over the warehouse; an engine that walks each enrolment
through its nodes (durable timers are rows); guards (consent, caps, quiet hours,
suppression) and arbitration; a transactional outbox with workers and channel adapters;
measurement against an automatic control arm. See docs/journeys.md and
docs/decisions/0007-journeys.md.
"""

from liucun.journeys._engine import (
    ActiveJourney,
    AdvanceResult,
    EnrolResult,
    active_journeys,
    advance_due,
    check_goals,
    check_waits,
    enrol,
)
from liucun.journeys._run import RunResult, World, run_until
from liucun.journeys._spec import (
    ACTION_TYPES,
    CHANNELS,
    NODE_TYPES,
    JourneySpec,
    parse_duration,
    successors,
)
from liucun.journeys._triggers import Evaluation, Position, evaluate
from liucun.journeys._worker import WorkSummary, work_once

__all__ = [
    "ACTION_TYPES",
    "CHANNELS",
    "NODE_TYPES",
    "ActiveJourney",
    "AdvanceResult",
    "EnrolResult",
    "Evaluation",
    "JourneySpec",
    "Position",
    "RunResult",
    "WorkSummary",
    "World",
    "active_journeys",
    "advance_due",
    "check_goals",
    "check_waits",
    "enrol",
    "evaluate",
    "parse_duration",
    "run_until",
    "successors",
    "work_once",
]
