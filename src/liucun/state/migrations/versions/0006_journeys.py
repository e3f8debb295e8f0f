"""Journeys and delivery: definitions and versions, approvals, enrolments (durable
timers), steps, trigger cursors, bandit counts, the outbox and its delivery events,
encrypted contacts, consent records, suppressions, service tasks and customer tags.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=50), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("proof", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(
        "ix_consents_user_id_purpose_channel",
        "consents",
        ["user_id", "purpose", "channel"],
        unique=False,
    )
    op.create_table(
        "contacts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("address_encrypted", sa.Text(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("user_id", "channel", name="uq_contacts_user_id_channel"),
    )
    op.create_index(op.f("ix_contacts_address_hash"), "contacts", ["address_hash"], unique=False)
    op.create_table(
        "customer_tags",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_tags")),
        sa.UniqueConstraint("user_id", "tag", name="uq_customer_tags_user_id_tag"),
    )
    op.create_index(op.f("ix_customer_tags_tag"), "customer_tags", ["tag"], unique=False)
    op.create_table(
        "delivery_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_delivery_events_event_id")),
    )
    op.create_index(op.f("ix_delivery_events_at"), "delivery_events", ["at"], unique=False)
    op.create_index(
        op.f("ix_delivery_events_outbox_id"), "delivery_events", ["outbox_id"], unique=False
    )
    op.create_index(
        op.f("ix_delivery_events_published"), "delivery_events", ["published"], unique=False
    )
    op.create_table(
        "journey_approvals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_approvals")),
        sa.UniqueConstraint("journey", "version", name="uq_journey_approvals_journey_version"),
    )
    op.create_table(
        "journey_bandit_arms",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("trials", sa.BigInteger(), nullable=False),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_bandit_arms")),
        sa.UniqueConstraint(
            "journey", "node", "variant", name="uq_journey_bandit_arms_journey_node_variant"
        ),
    )
    op.create_table(
        "journey_cursors",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_cursors")),
        sa.UniqueConstraint("name", name=op.f("uq_journey_cursors_name")),
    )
    op.create_table(
        "journey_enrolments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("entry_key", sa.String(length=300), nullable=False),
        sa.Column("arm", sa.String(length=20), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("wake_at", UTCDateTime(), nullable=True),
        sa.Column("waiting_for", sa.String(length=100), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("exited_at", UTCDateTime(), nullable=True),
        sa.Column("exit_reason", sa.String(length=100), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_enrolments")),
        sa.UniqueConstraint(
            "journey", "user_id", "entry_key", name="uq_journey_enrolments_journey_user_entry_key"
        ),
    )
    op.create_index(
        op.f("ix_journey_enrolments_entered_at"), "journey_enrolments", ["entered_at"], unique=False
    )
    op.create_index(
        "ix_journey_enrolments_status_wake_at",
        "journey_enrolments",
        ["status", "wake_at"],
        unique=False,
    )
    op.create_index(
        "ix_journey_enrolments_user_id", "journey_enrolments", ["user_id"], unique=False
    )
    op.create_table(
        "journey_steps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("enrolment_id", sa.BigInteger(), nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_steps")),
        sa.UniqueConstraint("key", name=op.f("uq_journey_steps_key")),
    )
    op.create_index(op.f("ix_journey_steps_at"), "journey_steps", ["at"], unique=False)
    op.create_index(
        "ix_journey_steps_enrolment_id", "journey_steps", ["enrolment_id"], unique=False
    )
    op.create_index(
        "ix_journey_steps_journey_node_kind",
        "journey_steps",
        ["journey", "node", "kind"],
        unique=False,
    )
    op.create_table(
        "journey_versions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("migrate", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_versions")),
        sa.UniqueConstraint("journey", "version", name="uq_journey_versions_journey_version"),
    )
    op.create_index(
        op.f("ix_journey_versions_journey"), "journey_versions", ["journey"], unique=False
    )
    op.create_table(
        "journeys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("name", name=op.f("uq_journeys_name")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=True),
        sa.Column("enrolment_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("hold_reason", sa.String(length=100), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=300), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
    )
    op.create_index(op.f("ix_outbox_created_at"), "outbox", ["created_at"], unique=False)
    op.create_index(
        "ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"], unique=False
    )
    op.create_index("ix_outbox_user_id_channel", "outbox", ["user_id", "channel"], unique=False)
    op.create_table(
        "service_tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("journey", sa.String(length=100), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sla_due_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("responded_at", UTCDateTime(), nullable=True),
        sa.Column("breached_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_tasks")),
        sa.UniqueConstraint("key", name=op.f("uq_service_tasks_key")),
    )
    op.create_index(
        "ix_service_tasks_status_sla_due_at",
        "service_tasks",
        ["status", "sla_due_at"],
        unique=False,
    )
    op.create_index(op.f("ix_service_tasks_user_id"), "service_tasks", ["user_id"], unique=False)
    op.create_table(
        "suppressions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint(
            "subject", "channel", "kind", name="uq_suppressions_subject_channel_kind"
        ),
    )
    op.create_index(op.f("ix_suppressions_subject"), "suppressions", ["subject"], unique=False)


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("service_tasks")
    op.drop_table("outbox")
    op.drop_table("journeys")
    op.drop_table("journey_versions")
    op.drop_table("journey_steps")
    op.drop_table("journey_enrolments")
    op.drop_table("journey_cursors")
    op.drop_table("journey_bandit_arms")
    op.drop_table("journey_approvals")
    op.drop_table("delivery_events")
    op.drop_table("customer_tags")
    op.drop_table("contacts")
    op.drop_table("consents")
