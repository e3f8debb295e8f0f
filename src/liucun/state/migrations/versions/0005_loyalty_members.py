"""When a ledger write's growth was earned; tiers in force and their history, accrual
runs, loss-aversion notices, paid membership and referrals.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("loyalty_transactions", sa.Column("earned_at", UTCDateTime(), nullable=True))
    op.create_table(
        "loyalty_member_tiers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("growth_in_window", sa.Float(), nullable=False),
        sa.Column("tier_since", UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("grace_until", UTCDateTime(), nullable=True),
        sa.Column("boost_tier", sa.String(100), nullable=True),
        sa.Column("boost_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_member_tiers"),
        sa.UniqueConstraint("program", "user_id", name="uq_loyalty_member_tiers_program_user"),
    )
    op.create_table(
        "loyalty_tier_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(300), nullable=False),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("from_tier", sa.String(100), nullable=True),
        sa.Column("to_tier", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("growth_in_window", sa.Float(), nullable=False),
        sa.Column("program_digest", sa.String(64), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_tier_history"),
        sa.UniqueConstraint("event_id", name="uq_loyalty_tier_history_event_id"),
    )
    op.create_index("ix_loyalty_tier_history_user_id", "loyalty_tier_history", ["user_id"])
    op.create_index("ix_loyalty_tier_history_changed_at", "loyalty_tier_history", ["changed_at"])
    op.create_table(
        "loyalty_accrual_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("program_digest", sa.String(64), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("events_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_planned", sa.BigInteger(), nullable=False),
        sa.Column("written", sa.BigInteger(), nullable=False),
        sa.Column("replayed", sa.BigInteger(), nullable=False),
        sa.Column("limited", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_accrual_runs"),
    )
    op.create_index("ix_loyalty_accrual_runs_program", "loyalty_accrual_runs", ["program"])
    op.create_table(
        "loyalty_notices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_notices"),
        sa.UniqueConstraint("key", name="uq_loyalty_notices_key"),
    )
    op.create_index(
        "ix_loyalty_notices_program_user_kind", "loyalty_notices", ["program", "user_id", "kind"]
    )
    op.create_index("ix_loyalty_notices_created_at", "loyalty_notices", ["created_at"])
    op.create_table(
        "loyalty_memberships",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("plan_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("term_start", UTCDateTime(), nullable=False),
        sa.Column("term_end", UTCDateTime(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("renewals", sa.Integer(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_memberships"),
        sa.UniqueConstraint(
            "program", "user_id", "plan_id", name="uq_loyalty_memberships_program_user_plan"
        ),
    )
    op.create_index("ix_loyalty_memberships_term_end", "loyalty_memberships", ["term_end"])
    op.create_index("ix_loyalty_memberships_user_id", "loyalty_memberships", ["user_id"])
    op.create_table(
        "loyalty_membership_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("membership_id", BigId, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("term_start", UTCDateTime(), nullable=True),
        sa.Column("term_end", UTCDateTime(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("event_id", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_membership_events"),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["loyalty_memberships.id"],
            name="fk_loyalty_membership_events_membership_id_loyalty_memberships",
        ),
        sa.UniqueConstraint("key", name="uq_loyalty_membership_events_key"),
    )
    op.create_index(
        "ix_loyalty_membership_events_membership_id", "loyalty_membership_events", ["membership_id"]
    )
    op.create_table(
        "loyalty_referral_codes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_referral_codes"),
        sa.UniqueConstraint("code", name="uq_loyalty_referral_codes_code"),
        sa.UniqueConstraint("key", name="uq_loyalty_referral_codes_key"),
    )
    op.create_index("ix_loyalty_referral_codes_user_id", "loyalty_referral_codes", ["user_id"])
    op.create_table(
        "loyalty_referrals",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("referrer_id", sa.String(200), nullable=False),
        sa.Column("referee_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("referred_at", UTCDateTime(), nullable=False),
        sa.Column("first_order_event_id", sa.String(300), nullable=True),
        sa.Column("credited_at", UTCDateTime(), nullable=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_referrals"),
        sa.UniqueConstraint("program", "referee_id", name="uq_loyalty_referrals_program_referee"),
        sa.UniqueConstraint("key", name="uq_loyalty_referrals_key"),
    )
    op.create_index("ix_loyalty_referrals_referrer_id", "loyalty_referrals", ["referrer_id"])
    op.create_index("ix_loyalty_referrals_code", "loyalty_referrals", ["code"])


def downgrade() -> None:
    with op.batch_alter_table("loyalty_transactions") as batch:
        batch.drop_column("earned_at")
    op.drop_table("loyalty_referrals")
    op.drop_table("loyalty_referral_codes")
    op.drop_table("loyalty_membership_events")
    op.drop_table("loyalty_memberships")
    op.drop_table("loyalty_notices")
    op.drop_table("loyalty_accrual_runs")
    op.drop_table("loyalty_tier_history")
    op.drop_table("loyalty_member_tiers")
