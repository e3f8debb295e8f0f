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
from liucun.journeys._channels import (
    OutgoingMessage,
    SendResult,
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
from liucun.journeys._contacts import (
    ContactImport,
    contact_for,
    find_by_address,
    import_contacts,
    set_contact,
)
from liucun.journeys._customer import (
    CustomerView,
    customer_view,
)
from liucun.journeys._decide import (
    Decider,
    Decision,
)
from liucun.journeys._delivery import (
    DeliveryRun,
    deliver_due,
)
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
from liucun.journeys._guards import (
    REASONS,
    Verdict,
    review_batch,
)
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
from liucun.journeys._offers import (
    OfferChoice,
    choose_offers,
    offer_choices,
)
from liucun.journeys._outbox import (
    count_outbox,
    list_outbox,
    publish_delivery_events,
    record_outcome,
    recover_in_doubt,
    retry_outbox,
)
from liucun.journeys._refresh import (
    RefreshCache,
    RefreshResult,
    refresh_customers,
)
from liucun.journeys._report import (
    JourneyReport,
    NodeReport,
    journey_report,
)
from liucun.journeys._run import (
    RunResult,
    World,
    run_until,
)
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
from liucun.journeys._triggers import (
    Evaluation,
    Position,
    evaluate,
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
from liucun.journeys._worker import (
    WorkSummary,
    work_once,
)

__all__ = [
    "ACTION_TYPES",
    "CHANNELS",
    "EVENT_FIELDS",
    "INTERNAL_CHANNELS",
    "NODE_TYPES",
    "PROFILE_FIELDS",
    "REASONS",
    "STATUSES",
    "TEMPLATE_VARIABLES",
    "TEST_CUSTOMER",
    "TRANSITIONS",
    "ActionResult",
    "ActiveJourney",
    "AdvanceResult",
    "AppliedJourney",
    "Approval",
    "Consent",
    "ConsentImport",
    "ContactImport",
    "CustomerView",
    "Decider",
    "Decision",
    "DeliveryRun",
    "EnrolResult",
    "Evaluation",
    "JourneyError",
    "JourneyReport",
    "JourneySpec",
    "JourneyStatus",
    "NodeReport",
    "OfferChoice",
    "OutgoingMessage",
    "Position",
    "RefreshCache",
    "RefreshResult",
    "Rendered",
    "RunResult",
    "SendResult",
    "SuppressionEntry",
    "Task",
    "Verdict",
    "WorkSummary",
    "World",
    "activate_journey",
    "active_journeys",
    "add_suppression",
    "advance_due",
    "apply_journey",
    "approve_journey",
    "archive_journey",
    "breach_due_tasks",
    "canonical_json",
    "check_goals",
    "check_waits",
    "choose_locale",
    "choose_offers",
    "close_task",
    "consent_history",
    "consent_in_force",
    "contact_for",
    "content_problems",
    "count_outbox",
    "customer_view",
    "deliver_due",
    "enrol",
    "evaluate",
    "event_columns",
    "event_types",
    "execute_internal",
    "find_by_address",
    "import_consents_from_users",
    "import_contacts",
    "journey_digest",
    "journey_problems",
    "journey_report",
    "journey_source",
    "journey_status",
    "journey_version",
    "journey_versions",
    "list_journeys",
    "list_outbox",
    "list_suppressions",
    "list_tasks",
    "load_journey",
    "migrate_enrolments",
    "offer_choices",
    "parse_duration",
    "parse_journey",
    "pause_journey",
    "profile_columns",
    "publish_action_events",
    "publish_delivery_events",
    "publish_task_events",
    "record_consent",
    "record_outcome",
    "recover_in_doubt",
    "refresh_customers",
    "remove_suppression",
    "render_message",
    "requires_unsubscribe",
    "respond_task",
    "resume_journey",
    "retry_outbox",
    "review_batch",
    "run_until",
    "set_contact",
    "successors",
    "work_once",
]
