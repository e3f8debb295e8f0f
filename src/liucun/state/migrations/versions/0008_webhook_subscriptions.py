"""Partner webhook subscriptions: a churn-risk threshold for ``risk_crossed``, and when a
subscription was disabled and its secret last rotated.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("risk_threshold", sa.Float(), nullable=True))
    op.add_column("webhook_subscriptions", sa.Column("disabled_at", UTCDateTime(), nullable=True))
    op.add_column("webhook_subscriptions", sa.Column("rotated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("rotated_at")
        batch.drop_column("disabled_at")
        batch.drop_column("risk_threshold")
