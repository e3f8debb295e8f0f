"""Alembic environment: liucun runs migrations on a connection it opened itself."""

from __future__ import annotations

from alembic import context

from liucun.state._models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
