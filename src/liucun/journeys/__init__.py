"""Journeys and delivery: the right action for each customer at the right local time.

Definitions as code (:mod:`._spec`, YAML files read by :func:`load_journey`), versioned in
state with a lifecycle; triggers over the warehouse; an engine that walks each enrolment
through its nodes (durable timers are rows); guards (consent, caps, quiet hours,
suppression) and arbitration; a transactional outbox with workers and channel adapters;
measurement against an automatic control arm. See docs/journeys.md and
docs/decisions/0007-journeys.md.
"""

from liucun.journeys._channels import OutgoingMessage, SendResult
from liucun.journeys._contacts import (
    ContactImport,
    contact_for,
    find_by_address,
    import_contacts,
    set_contact,
)
from liucun.journeys._delivery import DeliveryRun, deliver_due
from liucun.journeys._outbox import (
    count_outbox,
    list_outbox,
    publish_delivery_events,
    record_outcome,
    recover_in_doubt,
    retry_outbox,
)
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
    "ContactImport",
    "DeliveryRun",
    "JourneySpec",
    "OutgoingMessage",
    "SendResult",
    "contact_for",
    "count_outbox",
    "deliver_due",
    "find_by_address",
    "import_contacts",
    "list_outbox",
    "parse_duration",
    "publish_delivery_events",
    "record_outcome",
    "recover_in_doubt",
    "retry_outbox",
    "set_contact",
    "successors",
]
