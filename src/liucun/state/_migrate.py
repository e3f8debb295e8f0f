"""Schema migrations of the state database (Alembic, run in-process).

``liucun init`` creates the database at the latest revision; opening a workspace whose
database is older upgrades it and reports which revisions ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from liucun.state._models import Base
from liucun.state._store import StateStore

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """The latest migration this liucun ships."""
    return str(_scripts().get_current_head())


def current_revision(store: StateStore) -> str | None:
    """The revision the database is at; None for an empty database."""
    with store.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(store: StateStore) -> list[str]:
    """Bring the database to the latest revision; return the revisions that ran (oldest first)."""
    before = current_revision(store)
    head = head_revision()
    if before == head:
        return []
    scripts = _scripts()
    pending = [s.revision for s in scripts.iterate_revisions(head, before)]
    pending.reverse()
    config = _config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return pending


@dataclass(frozen=True)
class StateStatus:
    """What ``liucun state status`` prints."""

    backend: str
    url: str
    revision: str | None
    head: str
    rows: dict[str, int]

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def state_status(store: StateStore) -> StateStatus:
    """Backend, migration revision and row count of every state table."""
    present = set(inspect(store.engine).get_table_names())
    rows: dict[str, int] = {}
    with store.read() as session:
        for name, table in sorted(Base.metadata.tables.items()):
            if name in present:
                rows[name] = int(session.scalar(select(func.count()).select_from(table)) or 0)
    return StateStatus(
        backend=store.backend,
        url=store.url,
        revision=current_revision(store),
        head=head_revision(),
        rows=rows,
    )
