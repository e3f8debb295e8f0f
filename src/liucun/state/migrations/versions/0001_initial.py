"""The first operational tables: exposures, audit_log, workspace_secrets.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exposures",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("exposure_id", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("layer", sa.String(200), nullable=True),
        sa.Column("unit_type", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(200), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("load_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exposures"),
        sa.UniqueConstraint("exposure_id", name="uq_exposures_exposure_id"),
    )
    op.create_index(
        "ix_exposures_experiment_unit", "exposures", ["experiment", "unit_type", "unit_id"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(400), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_table(
        "workspace_secrets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workspace_secrets"),
    )
    op.create_index(
        "uq_workspace_secrets_name_version",
        "workspace_secrets",
        ["name", "version"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("workspace_secrets")
    op.drop_table("audit_log")
    op.drop_table("exposures")
