"""Coupons and benefits: issued codes, their redemptions, benefits bought with points.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_coupon_codes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("program", sa.String(200), nullable=False),
        sa.Column("coupon_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("min_order", sa.Float(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=False),
        sa.Column("per_customer", sa.Integer(), nullable=True),
        sa.Column("cap_amount", sa.Float(), nullable=True),
        sa.Column("cap_per", sa.String(10), nullable=True),
        sa.Column("coupon_budget", sa.Float(), nullable=True),
        sa.Column("program_budget", sa.Float(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("expired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_coupon_codes"),
        sa.UniqueConstraint("code", name="uq_loyalty_coupon_codes_code"),
        sa.UniqueConstraint("key", name="uq_loyalty_coupon_codes_key"),
    )
    op.create_index("ix_loyalty_coupon_codes_valid_until", "loyalty_coupon_codes", ["valid_until"])
    op.create_index(
        "ix_loyalty_coupon_codes_program_user",
        "loyalty_coupon_codes",
        ["program", "user_id", "coupon_id"],
    )
    op.create_index("ix_loyalty_coupon_codes_status", "loyalty_coupon_codes", ["status"])
    op.create_table(
        "loyalty_coupon_redemptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code_id", BigId, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("order_value", sa.Float(), nullable=False),
        sa.Column("discount", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("source_event_id", sa.String(200), nullable=True),
        sa.Column("redeemed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_coupon_redemptions"),
        sa.UniqueConstraint("code_id", name="uq_loyalty_coupon_redemptions_code_id"),
        sa.UniqueConstraint("key", name="uq_loyalty_coupon_redemptions_key"),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["loyalty_coupon_codes.id"],
            name="fk_loyalty_coupon_redemptions_code_id_loyalty_coupon_codes",
        ),
    )
    op.create_table(
        "loyalty_benefit_grants",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("program", sa.String(200), nullable=False),
        sa.Column("benefit_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("ledger_key", sa.String(200), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=False),
        sa.Column("per_customer", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_benefit_grants"),
        sa.UniqueConstraint("key", name="uq_loyalty_benefit_grants_key"),
    )
    op.create_index(
        "ix_loyalty_benefit_grants_program_user",
        "loyalty_benefit_grants",
        ["program", "user_id", "benefit_id"],
    )


def downgrade() -> None:
    op.drop_table("loyalty_benefit_grants")
    op.drop_table("loyalty_coupon_redemptions")
    op.drop_table("loyalty_coupon_codes")
