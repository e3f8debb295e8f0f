"""The state database: one SQLAlchemy engine and its sessions.

SQLite (a file in the workspace) by default, PostgreSQL by URL. Writers are serialized
the way each backend needs it:

- **SQLite**: WAL journal (readers never block the writer), ``busy_timeout`` so a second
  writer waits instead of failing, and ``BEGIN IMMEDIATE`` for write transactions.
  SQLAlchemy *silently drops* ``with_for_update()`` on SQLite, so the write lock is
  taken when the transaction begins; the pysqlite driver's own transaction handling is
  switched off so that SQLAlchemy's ``BEGIN`` is the one that runs.
- **PostgreSQL**: ordinary transactions; code that claims rows uses ``SELECT … FOR
  UPDATE [SKIP LOCKED]``, locking in sorted id order.

>>> store = connect_state("sqlite://")          # an in-memory database, for a doctest
>>> store.backend
'sqlite'
>>> with store.write() as session:
...     _ = session.execute(text("SELECT 1"))
>>> store.close()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DisconnectionError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from liucun.core import ConfigError, StateError

#: The state database's file in a workspace when no URL is configured.
STATE_FILE = "state.sqlite"
#: How long a SQLite writer waits for another one (milliseconds).
BUSY_TIMEOUT_MS = 30_000
_WRITE = "liucun_write"
#: A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_S = 2.0


class StateStore:
    """The state database of one workspace.

    ``store.write()`` is a write transaction (committed on success, rolled back on
    error); ``store.read()`` a read-only one; ``store()`` a plain session, as from a
    :class:`~sqlalchemy.orm.sessionmaker`. ``store.engine`` is the SQLAlchemy engine.
    """

    def __init__(self, engine: Engine, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.engine = engine
        self.busy_timeout_ms = busy_timeout_ms
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(**{_WRITE: True}), expire_on_commit=False
        )

    @property
    def backend(self) -> str:
        """``'sqlite'`` or ``'postgresql'``."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The URL, without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    def __call__(self) -> Session:
        """A new session (the caller commits), like a ``sessionmaker``."""
        return self._sessions()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: one use case, committed at the end or rolled back.

        On SQLite it starts with ``BEGIN IMMEDIATE`` (waits up to ``busy_timeout`` for
        another writer).
        """
        with _translated_errors(self), self._writes() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; objects loaded in it stay usable after the block."""
        with _translated_errors(self), self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"


@contextlib.contextmanager
def _translated_errors(store: StateStore) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        message = " ".join(str(exc.orig).split())
        if "locked" in message.lower():
            raise StateError(
                f"the state database {store.url} stayed locked by another writer for "
                f"{store.busy_timeout_ms / 1000:g} s; retry when the other liucun process has "
                "finished"
            ) from None
        raise StateError(
            f"the state database {store.url} refused the operation: {message}"
        ) from None
    except DatabaseError as exc:
        if type(exc) is not DatabaseError:  # integrity and programming errors are the caller's
            raise
        message = " ".join(str(exc.orig).split())
        raise StateError(
            f"the state database {store.url} cannot be read ({message}); restore it from a "
            "backup or point the workspace at a working one"
        ) from None


def state_url_for(workspace: Path, url: str | None) -> str:
    """The URL of ``workspace``'s state database: ``url``, else its SQLite file."""
    return url or f"sqlite:///{Path(workspace) / STATE_FILE}"


def connect_state(
    url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **engine_options: Any
) -> StateStore:
    """Open the state database at ``url`` (``sqlite:///file`` or ``postgresql+psycopg://…``).

    ``busy_timeout_ms`` is how long a SQLite writer waits for another one. Nothing is
    created or migrated here; :func:`liucun.state.upgrade` does that.
    """
    parsed = _parse(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed, busy_timeout_ms, **engine_options)
        else:
            engine = sa.create_engine(parsed, **engine_options)
            _ping_when_idle(engine)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"cannot use state URL {url!r}: {exc}; for PostgreSQL write "
            "'postgresql+psycopg://user@host:5432/db' (psycopg 3 is installed with liucun)"
        ) from None
    return StateStore(engine, busy_timeout_ms=busy_timeout_ms)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    if parsed is None or parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported state URL {url!r}; use 'sqlite:///path/state.sqlite' or "
            "'postgresql+psycopg://user@host:5432/database'"
        )
    return parsed


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use when it sat idle for :data:`PING_AFTER_S`
    (the server may have closed it meanwhile; a dead one is replaced).

    Like ``pool_pre_ping``, but a connection handed back and taken again at once (a
    busy writer) is not pinged: the ping was a round trip and a ``BEGIN`` per
    transaction, a fifth of a ledger write's time.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["liucun_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("liucun_idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()
        except Exception as exc:  # any failure: the pool reconnects (up to 3 times)
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _sqlite_engine(url: URL, busy_timeout_ms: int, **engine_options: Any) -> Engine:
    if url.database not in (None, "", ":memory:"):
        folder = Path(url.database).parent
        if not folder.is_dir():
            raise ConfigError(f"the folder {folder} of the state database does not exist")
    engine = sa.create_engine(url, **engine_options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Erased rows must not survive in free pages (ARCHITECTURE §7, erasure).
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
