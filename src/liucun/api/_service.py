"""What one app holds: the workspace, the key cache, the rate limiter, key usage, the
warehouse lock, the decider and the background housekeeping (the micro-batch loader
among it).

The warehouse is shared by the loader and by requests that read it, in one process:
both go through :meth:`Service.warehouse`, a lock that also closes the warehouse after
each use so that another process (a CLI load, another server worker) can write to it
between rounds — DuckDB admits one writing process.

The loader runs in exactly one process of a server (``--workers N``): the one holding
an exclusive lock on ``serve-loader.lock`` in the workspace. Every process tries to take
it at each round, so when the holder dies another one takes over. After a round that
loaded rows, the loader re-derives the figures of the customers it loaded
(:func:`liucun.journeys.refresh_customers`: recency, stage, churn risk by the saved
model, loyalty accrual) and rebuilds their entries in the decider's snapshot — at most
``[serve] refresh_batch`` customers a round, oldest first; the others wait for the next
rounds, so a bulk load keeps loading at full speed and freshness catches up after it.

The :class:`~liucun.journeys.Decider` answers ``POST /v1/decide`` from memory. It is
refreshed at start and every ``[serve] decide_refresh_s`` by its own thread, reading
the warehouse through :meth:`Service.warehouse`; its exposures are written every second
and at :meth:`Service.stop`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from liucun.api._auth import Authenticator, RateLimiter, Usage
from liucun.api._idempotency import purge_expired
from liucun.api._keys import record_usage
from liucun.core import LiucunError, ServeSettings, StateError, WarehouseBusy
from liucun.ingest import InboxLoad, load_inbox
from liucun.journeys import Decider, RefreshCache, RefreshResult, refresh_customers

log = logging.getLogger("liucun.api")

LOADER_LOCK = "serve-loader.lock"
#: How often key usage is written to state and expired idempotent replies are deleted.
USAGE_EVERY_S = 5.0
PURGE_EVERY_S = 300.0


class Service:
    """The state of one app (``app.state.service``)."""

    def __init__(self, ws: Any, settings: ServeSettings, *, run_loader: bool = True) -> None:
        self.ws = ws
        self.settings = settings
        self.auth = Authenticator(ws, cache_s=settings.key_cache_s)
        self.limiter = RateLimiter(rate_per_s=settings.rate_per_s, burst=settings.burst)
        self.usage = Usage()
        self.run_loader = run_loader
        self._warehouse_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[str] | None = None
        self.last_load: InboxLoad | None = None
        self.last_refresh: RefreshResult | None = None
        self.refresh_error: str | None = None
        self._to_refresh: dict[str, None] = {}  # customers loaded, not yet refreshed (in order)
        self._refresh_waiting_since: float | None = None
        self._accepted_lock = threading.Lock()
        self._accepted = 0  # inbox rows accepted by this process's requests
        self._rate_mark = (0, time.monotonic())
        self._yielding_since: float | None = None
        self.yielded = 0  # loader rounds given up to a burst of requests
        self.loads = 0
        self.refresh_cache = RefreshCache()
        self.decider = Decider(ws, holdout=settings.decide_holdout, access=self.warehouse)

    # -- the warehouse -----------------------------------------------------------------

    @contextlib.contextmanager
    def warehouse(self) -> Iterator[Any]:
        """The workspace, with the warehouse to this thread alone for the block; it is
        closed afterwards (other processes may write between uses)."""
        with self._warehouse_lock:
            try:
                yield self.ws
            finally:
                self.ws._close_warehouse()

    # -- background --------------------------------------------------------------------

    def start(self) -> None:
        """Refresh the decider and start its thread and the housekeeping thread
        (idempotent)."""
        if self._thread is not None:
            return
        self.decider.start(refresh_every=self.settings.decide_refresh_s)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="liucun-service", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the round in progress; write the pending key usage and
        the decisions' exposures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.decider.stop()
        try:
            self.decider.flush()
        except LiucunError as exc:
            log.error("could not write %d decision exposures (%s)", self.decider.pending, exc)
        self._flush_usage()
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @property
    def is_loader(self) -> bool:
        """True when this process holds the loader lock."""
        return self._lock_file is not None

    def _take_loader_lock(self) -> bool:
        if self._lock_file is not None:
            return True
        path = os.path.join(self.ws.path, LOADER_LOCK)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle
        return True

    def load_once(self) -> InboxLoad:
        """One round of the loader: move pending inbox rows into the warehouse, then
        refresh the customers they name (:meth:`refresh`)."""
        with self.warehouse() as ws:
            done = load_inbox(ws, self.settings.loader_batch)
        self.last_load = done
        self.loads += 1
        limit = self.settings.refresh_batch
        if limit:
            if done.user_ids and not self._to_refresh:
                self._refresh_waiting_since = time.monotonic()
            self._to_refresh.update(dict.fromkeys(done.user_ids))
        if self._to_refresh and self._refresh_due(done):
            batch = tuple(list(self._to_refresh)[:limit])
            for u in batch:
                del self._to_refresh[u]
            self._refresh_waiting_since = time.monotonic() if self._to_refresh else None
            try:
                self.refresh(batch)
            except Exception as exc:  # the rows are loaded; the next full scoring catches up
                self.refresh_error = f"{type(exc).__name__}: {exc}"
                log.exception("could not refresh the %d customers just loaded", len(batch))
            else:
                self.refresh_error = None
        return done

    def _refresh_due(self, done: InboxLoad) -> bool:
        """Loading comes first: while the inbox holds more than a round (this round was
        full), the refresh waits — at most ``[serve] refresh_max_delay_s`` — so that a
        burst of events is in the warehouse before its customers are re-scored."""
        if done.rows < self.settings.loader_batch:
            return True
        since = self._refresh_waiting_since
        return since is not None and time.monotonic() - since >= self.settings.refresh_max_delay_s

    @property
    def refresh_pending(self) -> int:
        """Customers loaded whose refresh waits for the next loader rounds."""
        return len(self._to_refresh)

    def refresh(self, user_ids: tuple[str, ...]) -> RefreshResult:
        """Re-derive the figures of ``user_ids`` in the warehouse and state (scores,
        stage, loyalty accrual) and rebuild their entries in the decider — under one
        hold of the warehouse, so that a reader who sees the new score (the lock is
        reentrant) also gets decisions from it."""
        with self.warehouse() as ws:
            result = refresh_customers(ws, user_ids, cache=self.refresh_cache)
            self.decider.refresh_users(user_ids)
        self.last_refresh = result
        return result

    def accepted(self, rows: int) -> None:
        """Count rows a request just committed to the inbox (the loader's yield signal)."""
        with self._accepted_lock:
            self._accepted += rows

    def _yields(self, now: float) -> bool:
        """True when the loader should let requests have the CPU this round: rows
        arrive faster than ``[serve] loader_yield_above`` per second (a burst), and the
        loader has not yielded for ``loader_max_delay_s`` yet — so a burst is accepted at
        full speed and loaded right after it, and no row waits longer than that delay
        plus a round."""
        with self._accepted_lock:
            total = self._accepted
        seen, since = self._rate_mark
        self._rate_mark = (total, now)
        rate = (total - seen) / max(now - since, 1e-3)
        if rate <= self.settings.loader_yield_above:
            self._yielding_since = None
            return False
        if self._yielding_since is None:
            self._yielding_since = now
        if now - self._yielding_since >= self.settings.loader_max_delay_s:
            self._yielding_since = now  # load now; the next burst round may yield again
            return False
        self.yielded += 1
        return True

    def _flush_usage(self) -> None:
        used = self.usage.drain()
        if not used:
            return
        try:
            record_usage(self.ws, used)
        except LiucunError as exc:  # kept for the next round
            log.warning("could not record API key usage (%s); retrying later", exc)
            for key_id, at in used.items():
                self.usage.mark(key_id, at)

    def _loop(self) -> None:
        interval = self.settings.loader_interval_s
        last_usage = last_purge = time.monotonic()
        backlog = False
        while not self._stop.wait(0 if backlog else interval):
            backlog = False
            now = time.monotonic()
            if now - last_usage >= USAGE_EVERY_S:
                self._flush_usage()
                last_usage = now
            try:
                if now - last_purge >= PURGE_EVERY_S:
                    purge_expired(self.ws)
                    last_purge = now
                if self.run_loader and self._take_loader_lock() and not self._yields(now):
                    done = self.load_once()
                    # a full round leaves more behind: the next one starts at once
                    backlog = done.rows >= self.settings.loader_batch
                    if done.rows:
                        log.info("loaded %d inbox rows in %.2f s", done.rows, done.seconds)
            except (WarehouseBusy, StateError) as exc:
                log.warning("loader round skipped: %s", exc)
            except Exception:  # a bug: logged, and the next round tries again
                log.exception("loader round failed")
