"""Journeys and delivery: the right action for each customer at the right local time.

Definitions as code (:mod:`._spec`, YAML files read by :func:`load_journey`), versioned in
state with a lifecycle; triggers over the warehouse; an engine that walks each enrolment
through its nodes (durable timers are rows); guards (consent, caps, quiet hours,
suppression) and arbitration; a transactional outbox with workers and channel adapters;
measurement against an automatic control arm. See docs/journeys.md and
docs/decisions/0007-journeys.md.
"""

from liucun.journeys._load import (
    EVENT_FIELDS,
    JourneyError,
    event_columns,
    event_types,
    journey_problems,
    load_journey,
    parse_journey,
    profile_columns,
)
from liucun.journeys._spec import (
    ACTION_TYPES,
    CHANNELS,
    NODE_TYPES,
    JourneySpec,
    parse_duration,
    successors,
)
from liucun.journeys._templates import (
    PROFILE_FIELDS,
    TEMPLATE_VARIABLES,
    TEST_CUSTOMER,
    Rendered,
    choose_locale,
    content_problems,
    render_message,
    requires_unsubscribe,
)
from liucun.journeys._versions import (
    STATUSES,
    TRANSITIONS,
    AppliedJourney,
    Approval,
    JourneyStatus,
    activate_journey,
    apply_journey,
    approve_journey,
    archive_journey,
    canonical_json,
    journey_digest,
    journey_source,
    journey_status,
    journey_version,
    journey_versions,
    list_journeys,
    migrate_enrolments,
    pause_journey,
    resume_journey,
)

__all__ = [
    "ACTION_TYPES",
    "CHANNELS",
    "EVENT_FIELDS",
    "NODE_TYPES",
    "PROFILE_FIELDS",
    "STATUSES",
    "TEMPLATE_VARIABLES",
    "TEST_CUSTOMER",
    "TRANSITIONS",
    "AppliedJourney",
    "Approval",
    "JourneyError",
    "JourneySpec",
    "JourneyStatus",
    "Rendered",
    "activate_journey",
    "apply_journey",
    "approve_journey",
    "archive_journey",
    "canonical_json",
    "choose_locale",
    "content_problems",
    "event_columns",
    "event_types",
    "journey_digest",
    "journey_problems",
    "journey_source",
    "journey_status",
    "journey_version",
    "journey_versions",
    "list_journeys",
    "load_journey",
    "migrate_enrolments",
    "parse_duration",
    "parse_journey",
    "pause_journey",
    "profile_columns",
    "render_message",
    "requires_unsubscribe",
    "resume_journey",
    "successors",
]
