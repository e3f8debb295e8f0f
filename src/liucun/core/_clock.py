"""Time: one clock for the whole process, and one definition of days and "data end".

Inside liucun every instant is a time-zone-aware UTC :class:`~datetime.datetime`.
Nothing reads the system time directly: code that needs "now" asks a :class:`Clock`
(the workspace's ``ws.clock``), so tests and journeys can run over simulated time.

>>> clock = SimulatedClock(datetime(2026, 1, 31, 9, 30, tzinfo=UTC))
>>> clock.advance(timedelta(days=1)).isoformat()
'2026-02-01T09:30:00+00:00'
>>> data_end(datetime(2026, 1, 31, 23, 59)).isoformat()
'2026-02-01T00:00:00+00:00'
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable

from liucun.core._errors import ConfigError


@runtime_checkable
class Clock(Protocol):
    """Where "now" comes from."""

    def now(self) -> datetime:
        """The current instant, time-zone-aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock (the default)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """A clock that moves only when told to: for tests, backfills and simulated journeys.

    Thread-safe; time never goes backwards unless :meth:`set` is called with an earlier
    instant and ``allow_backwards=True``.
    """

    def __init__(self, start: datetime | date) -> None:
        self._now = as_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, value: datetime | date, *, allow_backwards: bool = False) -> datetime:
        """Move the clock to ``value`` and return it."""
        target = as_utc(value)
        with self._lock:
            if target < self._now and not allow_backwards:
                raise ConfigError(
                    f"the simulated clock is at {self._now.isoformat()}; {target.isoformat()} "
                    "is earlier (pass allow_backwards=True to rewind it)"
                )
            self._now = target
            return target

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new instant."""
        if delta < timedelta(0):
            raise ConfigError(f"advance() needs a non-negative step, got {delta}")
        with self._lock:
            self._now += delta
            return self._now

    def __repr__(self) -> str:
        return f"SimulatedClock({self._now.isoformat()})"


def as_utc(value: datetime | date) -> datetime:
    """``value`` as an aware UTC datetime.

    A naive datetime is read as UTC (the storage convention); a date means its midnight
    UTC; an aware datetime is converted.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise ConfigError(f"expected a date or datetime, e.g. date(2026, 7, 1); got {value!r}")


def naive_utc(value: datetime | date) -> datetime:
    """``value`` in UTC without its time zone, for engines that compare naive timestamps."""
    return as_utc(value).replace(tzinfo=None)


def midnight(value: datetime | date) -> datetime:
    """The UTC midnight that starts the day of ``value`` (aware)."""
    moment = as_utc(value)
    return datetime.combine(moment.date(), time(), tzinfo=UTC)


def data_end(last_event: datetime | date) -> datetime:
    """The "data end" of a history whose last event is ``last_event``.

    The one definition liucun uses: the UTC midnight *after* the day of the last event,
    exclusive. The data cover every day before it completely, so a cut-off or "as of"
    at data end sees the whole history. Aware UTC.
    """
    return midnight(last_event) + timedelta(days=1)


def last_full_day(end: datetime | date) -> date:
    """The last day before the exclusive end ``end``."""
    return (as_utc(end) - timedelta(microseconds=1)).date()
