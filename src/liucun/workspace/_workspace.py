"""The workspace: the composition root of liucun.

A workspace is a directory with ``liucun.toml``. The :class:`Workspace` object owns
the settings, the warehouse (analytical tables), the state database (operational
tables), the clock, the secret key and the model registry location, and it offers the
resolved views every analysis starts from: :meth:`Workspace.events`,
:meth:`Workspace.customers` and :meth:`Workspace.table`. Higher layers take it, or the
part they need, as an argument.

>>> ws = liucun.open("shop")                        # doctest: +SKIP
>>> ws.events().filter(_.event_type == "order")      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import ibis.expr.types as ir

from liucun.core import (
    SETTINGS_FILE,
    Clock,
    ConfigError,
    Settings,
    SystemClock,
    WorkspaceError,
    data_end,
    load_settings,
)
from liucun.core._hashing import keyed_hash
from liucun.schema import LIUCUN_EVENT_TYPES, TABLES
from liucun.state import (
    StateStore,
    connect_state,
    current_actor,
    current_revision,
    record_audit,
    state_url_for,
    upgrade,
)
from liucun.warehouse import (
    Warehouse,
    canonical_customers,
    connect_warehouse,
    resolved_events,
)
from liucun.workspace._secrets import check_key, read_key
from liucun.workspace._sync import SyncResult, adopt_warehouse_exposures, sync

log = logging.getLogger("liucun.workspace")

_TEMPLATE = """\
# liucun workspace settings. Environment variables LIUCUN_* override them,
# e.g. LIUCUN_REPORTING_TIMEZONE=Asia/Shanghai or LIUCUN_INGEST__FUTURE_TOLERANCE_HOURS=48.

# Where the canonical tables live: "duckdb" (warehouse.duckdb in this directory),
# "duckdb:///path/to/file.duckdb", "pyspark" (Parquet tables here, Spark in local mode)
# or "pyspark://spark://host:7077".
warehouse_url = "{warehouse_url}"

# Time zone in which days, weeks and months are counted in reports.
reporting_timezone = "UTC"

# Your column name = canonical column name, applied to every ingested file.
[mapping]
# order_date = "ts"
# amount = "revenue"

[ingest]
# Reject timestamps later than now + this many hours.
future_tolerance_hours = 24
# Event types accepted besides the standard ones.
custom_event_types = []
# Time zone of timestamps that carry no offset.
source_timezone = "UTC"
# Currency of orders whose rows carry none (ISO 4217, e.g. "CNY"); unset = such rows
# are quarantined.
# currency = "CNY"
# Fail a load when more than this share of rows is quarantined (1.0 = never).
max_reject_rate = 1.0

[state]
# Operational state (exposures, ledger, journeys, consent, audit). Unset = state.sqlite
# in this directory; PostgreSQL for many workers:
# url = "postgresql+psycopg://liucun@db.internal:5432/liucun"
{state_url_line}

# Guards of every journey send (docs/journeys.md, "Guards"); the defaults are:
# [guards]
# quiet_start = "21:00"       # quiet hours in each customer's local time: messages wait
# quiet_end = "08:00"
# max_per_day = 2             # messages per customer per local day, across journeys
# max_per_week = 5
# forbidden_phrases = []      # templates containing one are refused at approval

# Delivery channels of journeys (docs/journeys.md, "Delivery"). kind = "file" writes JSON
# lines under outbox/ instead of sending (a dry run). For example:
# [channels.email]
# host = "smtp.example.com"
# port = 587
# sender = "Shop <news@example.com>"
# [channels.webhook]
# url = "https://example.com/hooks/liucun"
# secret = "whsec_..."
# [channels.push]
# kind = "file"
"""


@dataclass
class Workspace:
    """An opened workspace. Use :func:`open_workspace` (``liucun.open``) to get one."""

    path: Path
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    _warehouse: Warehouse | None = field(default=None, repr=False)
    _state: StateStore | None = field(default=None, repr=False)
    _hash_key: bytes | None = field(default=None, repr=False)
    _creating: bool = field(default=False, repr=False)

    # -- locations ---------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        """The model registry: one folder per saved model version."""
        return self.path / "models"

    @property
    def reports_dir(self) -> Path:
        return self.path / "reports"

    # -- stores ------------------------------------------------------------------------

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse for reading, connected on first use (see :meth:`writing`)."""
        if self._warehouse is None:
            self._warehouse = connect_warehouse(
                self.settings.warehouse_url, self.path, read_only=True
            )
        return self._warehouse

    @contextlib.contextmanager
    def writing(self) -> Iterator[Warehouse]:
        """The warehouse held open for writing for the whole block (one load or sync).

        Only one process may write at a time: entering waits (bounded) for another
        writer or for readers to finish. A single :meth:`Warehouse.transaction` takes
        the write lock by itself; hold it here across several.
        """
        with self.warehouse.writing() as wh:
            yield wh

    def data_end(self) -> datetime | None:
        """The exclusive end of the data: UTC midnight after the last event's day (aware);
        None when there are no events (see :func:`liucun.core.data_end`). Events liucun
        writes itself (a tier review, a warning) do not extend the shop's history."""
        ev = self.warehouse.engine_table("events")
        ev = ev.filter(~ev.event_type.isin(list(LIUCUN_EVENT_TYPES)))
        last = ev.ts.max().to_pyarrow().as_py()
        return None if last is None else data_end(last)

    @property
    def state(self) -> StateStore:
        """The state database, connected and migrated to the latest revision on first use.

        A workspace made before state existed gets its database here, and the exposures
        its warehouse held are adopted into it (state is their source of truth now).
        """
        if self._state is None:
            store = connect_state(state_url_for(self.path, self.settings.state.url))
            try:
                before = current_revision(store)
                ran = upgrade(store)
                adopted = adopt_warehouse_exposures(self.warehouse, store) if before is None else 0
                if ran:
                    _audit(
                        store,
                        self.clock,
                        "state.migrate",
                        details={"from": before, "ran": ran, "adopted_exposures": adopted},
                    )
                if ran and before is None and (adopted or not self._creating):
                    log.warning(
                        "created the state database of %s (%s; the workspace predates it) "
                        "and moved %d exposure(s) into it",
                        self.path,
                        store.backend,
                        adopted,
                    )
                elif ran and before is not None:
                    log.warning(
                        "upgraded the state database of %s (%s) from revision %s with %s",
                        self.path,
                        store.backend,
                        before,
                        ", ".join(ran),
                    )
            except Exception:
                store.close()
                raise
            self._state = store
        return self._state

    @property
    def hash_key(self) -> bytes:
        """The workspace's secret key for keyed hashes (checked against state)."""
        if self._hash_key is None:
            key, source = read_key(self.path, create=False)
            check_key(self.state, key, source, self.clock)
            self._hash_key = key
        return self._hash_key

    def audit(self, action: str, *, target: str | None = None, **details: object) -> None:
        """Record ``action`` in the state's audit log (who: the OS user of this process;
        when: the workspace clock). ``details`` must hold no contact data."""
        _audit(self.state, self.clock, action, target=target, details=details or None)

    def keyed_hash(self, value: str) -> str:
        """HMAC-SHA-256 of ``value`` under the workspace key (64 hex digits)."""
        return keyed_hash(self.hash_key, value)

    # -- resolved views ----------------------------------------------------------------

    def table(self, name: str) -> ir.Table:
        """Canonical table ``name`` on the analytics backend."""
        if name not in TABLES:
            raise ConfigError(
                f"the workspace has no table {name!r}; its tables are {', '.join(sorted(TABLES))}"
            )
        return self.warehouse.table(name)

    def events(self) -> ir.Table:
        """Events under merged identities: ``user_id`` is the canonical customer
        (the original id in ``raw_user_id``); unlinked anonymous visitors keep NULL."""
        return resolved_events(self.table("events"), self.table("identities"))

    def customers(self) -> ir.Table:
        """``users`` resolved: one row per canonical customer."""
        return canonical_customers(self.table("users"), self.table("identities"))

    def sync(self) -> SyncResult:
        """Copy new operational rows from state into the warehouse (a no-op when none)."""
        return sync(self)

    # -- lifetime ----------------------------------------------------------------------

    def _close_warehouse(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def close(self) -> None:
        self._close_warehouse()
        if self._state is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _audit(
    store: StateStore,
    clock: Clock,
    action: str,
    *,
    target: str | None = None,
    details: dict[str, object] | None = None,
) -> None:
    with store.write() as session:
        record_audit(
            session,
            at=clock.now(),
            actor=current_actor(),
            action=action,
            target=target,
            details=details,
        )


def init_workspace(
    path: Path | str,
    *,
    warehouse_url: str = "duckdb",
    state_url: str | None = None,
    clock: Clock | None = None,
) -> Workspace:
    """Create (or complete) a workspace at ``path`` and return it opened.

    Creates ``liucun.toml``, the warehouse with its tables, the state database at the
    latest migration, the secret key and ``models/`` and ``reports/``. Idempotent: an
    existing ``liucun.toml`` and key are kept as they are.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} exists and is not a directory; choose another path")
    path.mkdir(parents=True, exist_ok=True)
    settings_file = path / SETTINGS_FILE
    if not settings_file.exists():
        line = f'url = "{state_url}"' if state_url else ""
        settings_file.write_text(
            _TEMPLATE.format(warehouse_url=warehouse_url, state_url_line=line), encoding="utf-8"
        )
    elif state_url and load_settings(path).state.url != state_url:
        raise WorkspaceError(
            f"{path} already has a workspace with another state database; edit [state] url "
            f"in {settings_file} to move it"
        )
    read_key(path, create=True)
    ws = open_workspace(path, clock=clock)
    ws.models_dir.mkdir(exist_ok=True)
    ws.reports_dir.mkdir(exist_ok=True)
    with ws.writing():  # creates the warehouse and its tables
        pass
    ws._creating = True
    ws.hash_key  # noqa: B018 - migrates state and records the key's fingerprint
    ws._creating = False
    return ws


def open_workspace(path: Path | str, *, clock: Clock | None = None) -> Workspace:
    """Open the workspace at ``path``; raise :class:`WorkspaceError` when there is none.

    ``clock`` (default: the system clock) is where every "now" of this workspace comes from.
    """
    path = Path(path)
    if not (path / SETTINGS_FILE).is_file():
        raise WorkspaceError(
            f"{path} is not a liucun workspace (no {SETTINGS_FILE}); create one with "
            f"liucun init {path}, or open an existing workspace"
        )
    return Workspace(
        path=path.resolve(), settings=load_settings(path), clock=clock or SystemClock()
    )
