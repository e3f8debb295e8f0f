"""Journeys and delivery: the right action for each customer at the right local time.

Definitions as code (:mod:`._spec`, YAML files read by :func:`load_journey`), versioned in
state with a lifecycle; triggers over the warehouse; an engine that walks each enrolment
through its nodes (durable timers are rows); guards (consent, caps, quiet hours,
suppression) and arbitration; a transactional outbox with workers and channel adapters;
measurement against an automatic control arm. See docs/journeys.md and
docs/decisions/0007-journeys.md.
"""

from liucun.journeys._actions import (
    INTERNAL_CHANNELS,
    ActionResult,
    execute_internal,
    publish_action_events,
)
from liucun.journeys._consent import (
    Consent,
    ConsentImport,
    SuppressionEntry,
    add_suppression,
    consent_history,
    consent_in_force,
    import_consents_from_users,
    list_suppressions,
    record_consent,
    remove_suppression,
)
from liucun.journeys._guards import REASONS, Verdict, review_batch
from liucun.journeys._offers import OfferChoice, choose_offers, offer_choices
from liucun.journeys._spec import (
    ACTION_TYPES,
    CHANNELS,
    NODE_TYPES,
    JourneySpec,
    parse_duration,
    successors,
)
from liucun.journeys._tasks import (
    Task,
    breach_due_tasks,
    close_task,
    list_tasks,
    publish_task_events,
    respond_task,
)

__all__ = [
    "ACTION_TYPES",
    "CHANNELS",
    "INTERNAL_CHANNELS",
    "NODE_TYPES",
    "REASONS",
    "ActionResult",
    "Consent",
    "ConsentImport",
    "JourneySpec",
    "OfferChoice",
    "SuppressionEntry",
    "Task",
    "Verdict",
    "add_suppression",
    "breach_due_tasks",
    "choose_offers",
    "close_task",
    "consent_history",
    "consent_in_force",
    "execute_internal",
    "import_consents_from_users",
    "list_suppressions",
    "list_tasks",
    "offer_choices",
    "parse_duration",
    "publish_action_events",
    "publish_task_events",
    "record_consent",
    "remove_suppression",
    "respond_task",
    "review_batch",
    "successors",
]
