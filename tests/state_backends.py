"""State-database URLs for tests: SQLite in tmp_path, or a fresh PostgreSQL schema.

Every test that touches state runs on both backends (the ``state_url`` fixture). The
PostgreSQL server is the machine's (127.0.0.1:5432, trust auth, database ``test``); each
test gets a schema of its own, dropped afterwards. In CI a missing server fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from helpers import need

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _connect_pg():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        need(False, f"PostgreSQL is not reachable at {PG_DSN}: {exc}")
        raise  # pragma: no cover - need() skipped or failed


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A SQLAlchemy URL whose connections live in a new, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _connect_pg() as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with _connect_pg() as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')


STATE_BACKENDS = ("sqlite", "postgresql")
