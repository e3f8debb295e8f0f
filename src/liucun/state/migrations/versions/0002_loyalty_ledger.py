"""The loyalty ledger: programs' policies, member accounts, transactions, lots, entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from liucun.state._models import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_programs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_programs"),
        sa.UniqueConstraint("name", name="uq_loyalty_programs_name"),
    )
    op.create_table(
        "loyalty_accounts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("growth_value", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_accounts"),
    )
    op.create_index(
        "uq_loyalty_accounts_program_user",
        "loyalty_accounts",
        ["program", "user_id"],
        unique=True,
    )
    op.create_table(
        "loyalty_transactions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("program", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("reverses_id", BigId, nullable=True),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_transactions"),
        sa.UniqueConstraint("key", name="uq_loyalty_transactions_key"),
        sa.UniqueConstraint("reverses_id", name="uq_loyalty_transactions_reverses_id"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["loyalty_accounts.id"],
            name="fk_loyalty_transactions_account_id_loyalty_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["loyalty_transactions.id"],
            name="fk_loyalty_transactions_reverses_id_loyalty_transactions",
        ),
    )
    op.create_index("ix_loyalty_transactions_account_id", "loyalty_transactions", ["account_id"])
    op.create_table(
        "loyalty_lots",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_lots"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["loyalty_accounts.id"],
            name="fk_loyalty_lots_account_id_loyalty_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["loyalty_transactions.id"],
            name="fk_loyalty_lots_transaction_id_loyalty_transactions",
        ),
    )
    op.create_index("ix_loyalty_lots_expires_at", "loyalty_lots", ["expires_at"])
    op.create_index(
        "ix_loyalty_lots_account_remaining", "loyalty_lots", ["account_id", "remaining"]
    )
    op.create_table(
        "loyalty_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=True),
        sa.Column("lot_id", BigId, nullable=True),
        sa.Column("program_account", sa.String(40), nullable=True),
        sa.Column("unit", sa.String(10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_entries"),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["loyalty_transactions.id"],
            name="fk_loyalty_entries_transaction_id_loyalty_transactions",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["loyalty_accounts.id"],
            name="fk_loyalty_entries_account_id_loyalty_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["loyalty_lots.id"], name="fk_loyalty_entries_lot_id_loyalty_lots"
        ),
    )
    op.create_index("ix_loyalty_entries_transaction_id", "loyalty_entries", ["transaction_id"])
    op.create_index("ix_loyalty_entries_account_id", "loyalty_entries", ["account_id"])
    op.create_index("ix_loyalty_entries_lot_id", "loyalty_entries", ["lot_id"])


def downgrade() -> None:
    op.drop_table("loyalty_entries")
    op.drop_table("loyalty_lots")
    op.drop_table("loyalty_transactions")
    op.drop_table("loyalty_accounts")
    op.drop_table("loyalty_programs")
