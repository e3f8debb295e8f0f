"""Loyalty program versions: each applied program file, as canonical JSON with its digest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_program_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("program", "version", name="uq_loyalty_program_versions_version"),
        sa.UniqueConstraint("program", "digest", name="uq_loyalty_program_versions_digest"),
    )


def downgrade() -> None:
    op.drop_table("loyalty_program_versions")
