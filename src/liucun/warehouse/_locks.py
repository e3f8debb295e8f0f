"""Bounded waits for a warehouse another process holds, and who that process is.

DuckDB lets one process open a file for writing, or many for reading; a second opener
gets an ``IOException`` that names the holder's PID. The Parquet store serializes its
writers with an advisory lock on a file (``flock``) that records the holder's PID. Both
retry through :func:`wait_for`, which says who holds the warehouse while it waits and
raises :class:`~liucun.core.WarehouseBusy` with that sentence when the wait runs out.
See docs/decisions/0006-warehouse-concurrency.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from liucun.core import Hint, WarehouseBusy

log = logging.getLogger("liucun.warehouse")

T = TypeVar("T")

#: How long opening the warehouse, or starting a write, waits for another process that
#: holds it (seconds).
DEFAULT_WAIT_S = 30.0

#: Pause between two attempts while waiting (seconds; grows to :data:`_MAX_PAUSE`).
_FIRST_PAUSE = 0.02
_MAX_PAUSE = 0.25
#: A wait longer than this is logged as a warning, and repeated this often (seconds).
_WARN_AFTER_S = 1.0
_REPEAT_LOG_S = 10.0

# DuckDB 1.5: 'Could not set lock on file "…": Conflicting lock is held in /usr/bin/python3
# (PID 1234). …'. Matched exactly: a bare "lock" would also match "block" in the message
# of a damaged file, which is not a lock at all (the bug of decision 0006).
_DUCKDB_LOCK = re.compile(r"Could not set lock on file|Conflicting lock is held")
_PID = re.compile(r"\(PID (\d+)\)")


class Held(Exception):
    """Raised by an open attempt: another process holds the warehouse (``pid`` if known)."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


def duckdb_holder(exc: BaseException) -> Held | None:
    """A :class:`Held` for DuckDB's lock-conflict error; None for any other error."""
    if not isinstance(exc, duckdb.IOException) or not _DUCKDB_LOCK.search(str(exc)):
        return None
    m = _PID.search(str(exc))
    return Held(int(m.group(1)) if m else None)


def describe_process(pid: int | None) -> str:
    """``process 1234 (liucun -w shop ingest events orders.csv)``, as far as it is known."""
    if pid is None:
        return "another process"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"process {pid}"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if len(words) > 1 and Path(words[0]).name.startswith("python"):
        words = words[1:]  # "python /venv/bin/liucun …" → "liucun …"
    if words:
        words[0] = Path(words[0]).name
    command = " ".join(" ".join(words).split())
    if len(command) > 120:
        command = command[:117] + "..."
    return f"process {pid} ({command})" if command else f"process {pid}"


def wait_for(attempt: Callable[[], T], *, what: str, purpose: str, wait_s: float) -> T:
    """Call ``attempt`` until it stops raising :class:`Held`, for at most ``wait_s`` seconds.

    ``what`` names the warehouse and ``purpose`` the access ("reading", "writing") in
    the log lines and in the :class:`~liucun.core.WarehouseBusy` raised at the end.
    """
    start = time.monotonic()
    deadline = start + max(0.0, wait_s)
    pause = _FIRST_PAUSE
    said: tuple[int | None, int, float] | None = None  # holder, level and time last logged
    while True:
        try:
            return attempt()
        except Held as held:
            now = time.monotonic()
            holder = describe_process(held.pid)
            if now >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {what} is in use by {holder}, which held it for more "
                    f"than {wait_s:g} s, so it could not be opened for {purpose}; wait for "
                    "that process to finish (or stop it if it is stuck) and try again",
                    hint=Hint(option="wait_s", example=f"{max(60.0, 4 * wait_s):g}"),
                ) from None
            # INFO at once; WARNING once the wait is noticeable, again every 10 s or
            # when another process turns out to hold it.
            level = logging.WARNING if now - start >= _WARN_AFTER_S else logging.INFO
            if (
                said is None
                or said[0] != held.pid
                or level > said[1]
                or now - said[2] >= _REPEAT_LOG_S
            ):
                log.log(
                    level,
                    "the warehouse %s is in use by %s; waiting up to %.0f s more to open it for %s",
                    what,
                    holder,
                    deadline - now,
                    purpose,
                )
                said = (held.pid, level, now)
            time.sleep(min(pause, max(0.0, deadline - now)))
            pause = min(_MAX_PAUSE, pause * 2)


@dataclass
class FileLock:
    """An advisory lock on ``path`` (``flock``): shared for readers, exclusive for writers.

    The exclusive holder writes its PID into the file, so a waiter can say who it is.
    Locks are per open file description: a second :class:`FileLock` on the same path in
    the same process conflicts with the first like another process would.
    """

    path: Path
    _fd: int | None = None

    def _try(self, exclusive: bool) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Held(self._recorded_pid()) from None
        if exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def _recorded_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.path.read_text().strip())
        return None

    def acquire(self, *, exclusive: bool, what: str, wait_s: float) -> None:
        """Take the lock, waiting up to ``wait_s`` seconds for it; :meth:`release` frees it."""
        purpose = "writing" if exclusive else "reading"
        wait_for(lambda: self._try(exclusive), what=what, purpose=purpose, wait_s=wait_s)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
