"""Journeys and delivery: the right action for each customer at the right local time.

Definitions as code (:mod:`._spec`, YAML files read by :func:`load_journey`), versioned in
state with a lifecycle; triggers over the warehouse; an engine that walks each enrolment
through its nodes (durable timers are rows); guards (consent, caps, quiet hours,
suppression) and arbitration; a transactional outbox with workers and channel adapters;
measurement against an automatic control arm. See docs/journeys.md and
docs/decisions/0007-journeys.md.
"""

from liucun.journeys._report import JourneyReport, NodeReport, journey_report
from liucun.journeys._spec import (
    ACTION_TYPES,
    CHANNELS,
    NODE_TYPES,
    JourneySpec,
    parse_duration,
    successors,
)

__all__ = [
    "ACTION_TYPES",
    "CHANNELS",
    "NODE_TYPES",
    "JourneyReport",
    "JourneySpec",
    "NodeReport",
    "journey_report",
    "parse_duration",
    "successors",
]
