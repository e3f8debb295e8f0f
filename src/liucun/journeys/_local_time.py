"""Local time of a customer: time zones, local days, the next local HH:MM, quiet hours.

Pure functions over aware datetimes (UTC in, UTC out) shared by the engine (waits,
date triggers) and the send-time guards (local calendar days of the frequency caps,
the end of quiet hours). Local wall times are resolved with :mod:`zoneinfo`, and the
rules for the two awkward hours of a DST year are the same everywhere:

- a wall time inside a **gap** (the clocks jump from 02:00 to 03:00) moves forward by
  the gap: 02:30 on the day New York springs forward is 03:30 EDT;
- a wall time inside a **fold** (the clocks fall back, 02:00–03:00 happens twice) takes
  the first of the two instants (``fold=0``, still summer time).

>>> from datetime import UTC, datetime
>>> wall_to_utc(datetime(2026, 3, 8, 2, 30), "America/New_York").isoformat()
'2026-03-08T07:30:00+00:00'
>>> wall_to_utc(datetime(2026, 10, 25, 2, 30), "Europe/Berlin").isoformat()
'2026-10-25T00:30:00+00:00'
>>> next_local_time(datetime(2026, 3, 7, 20, tzinfo=UTC), "09:00", "America/New_York").isoformat()
'2026-03-08T13:00:00+00:00'
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from liucun.core import ConfigError

#: The zone of countries whose first zone in ``zone.tab`` is not where most people live.
MAIN_ZONE_OVERRIDES: dict[str, str] = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "US": "America/New_York",
    "CN": "Asia/Shanghai",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "EC": "America/Guayaquil",
    "CL": "America/Santiago",
}


def zone(name: str) -> ZoneInfo:
    """The :class:`~zoneinfo.ZoneInfo` ``name``; refused with a sentence when unknown.

    >>> zone("Asia/Shanghai").key
    'Asia/Shanghai'
    """
    return _zone(name)


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name!r} is not an IANA time zone; use a name such as 'Asia/Shanghai' or "
            "'Europe/Berlin'"
        ) from None


def is_zone(name: object) -> bool:
    """Whether ``name`` is a usable IANA zone name (False for None and ``''``).

    >>> is_zone("Europe/Berlin"), is_zone("Mars/Olympus"), is_zone(None)
    (True, False, False)
    """
    if not isinstance(name, str) or not name.strip():
        return False
    try:
        _zone(name.strip())
    except ConfigError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _zone_tab() -> dict[str, str]:
    """The first zone of each country in the tz database's ``zone.tab``."""
    text = None
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        system = Path("/usr/share/zoneinfo/zone.tab")
        text = system.read_text("utf-8") if system.is_file() else ""
    first: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            first.setdefault(parts[0].strip().upper(), parts[2].strip())
    return first


def country_zone(country: str | None) -> str | None:
    """The main time zone of an ISO 3166 country code, None when unknown.

    >>> country_zone("DE"), country_zone("us"), country_zone("AU"), country_zone("XX")
    ('Europe/Berlin', 'America/New_York', 'Australia/Sydney', None)
    """
    if not country or not isinstance(country, str):
        return None
    code = country.strip().upper()
    return MAIN_ZONE_OVERRIDES.get(code) or _zone_tab().get(code)


def customer_zone(timezone: str | None, country: str | None, default: str) -> str:
    """A customer's zone: their own ``timezone``, else their ``country``'s main zone,
    else ``default`` (the workspace's reporting time zone).

    >>> customer_zone("Asia/Tokyo", "DE", "UTC"), customer_zone(None, "DE", "UTC")
    ('Asia/Tokyo', 'Europe/Berlin')
    >>> customer_zone("nonsense", None, "Asia/Shanghai")
    'Asia/Shanghai'
    """
    if is_zone(timezone):
        return str(timezone).strip()
    by_country = country_zone(country)
    if by_country is not None:
        return by_country
    return default


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ConfigError(f"{instant.isoformat()} has no time zone; pass an aware datetime (UTC)")
    return instant.astimezone(UTC)


def parse_hhmm(text: str) -> time:
    """``'09:30'`` as a :class:`~datetime.time`.

    >>> parse_hhmm("21:05")
    datetime.time(21, 5)
    """
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise ConfigError(f"{text!r} is not a time of day; write HH:MM, e.g. '09:00'") from None


def wall_to_utc(wall: datetime, tz: str) -> datetime:
    """The UTC instant of the naive local wall time ``wall`` in ``tz``: a time in a DST
    gap moves forward by the gap, a time in a fold takes the first instant.

    >>> wall_to_utc(datetime(2026, 11, 1, 1, 30), "America/New_York").isoformat()
    '2026-11-01T05:30:00+00:00'
    """
    # fold=0 reads a wall time with the offset in force before a transition: in a fold
    # that is the first instant; in a gap it lands after the gap, i.e. the wall time
    # moved forward by the gap's length (zoneinfo's PEP 495 semantics)
    return wall.replace(tzinfo=zone(tz), fold=0).astimezone(UTC)


def local_day(instant: datetime, tz: str) -> date:
    """The calendar day of ``instant`` in ``tz``.

    >>> local_day(datetime(2026, 1, 1, 17, tzinfo=UTC), "Asia/Shanghai")
    datetime.date(2026, 1, 2)
    """
    return _utc(instant).astimezone(zone(tz)).date()


def day_start(day: date, tz: str) -> datetime:
    """The first instant (UTC) of local calendar day ``day`` in ``tz``.

    >>> day_start(date(2026, 1, 2), "Asia/Shanghai").isoformat()
    '2026-01-01T16:00:00+00:00'
    """
    return wall_to_utc(datetime.combine(day, time()), tz)


def next_day_start(instant: datetime, tz: str) -> datetime:
    """The start (UTC) of the local day after the one ``instant`` falls on.

    >>> next_day_start(datetime(2026, 3, 7, 12, tzinfo=UTC), "America/New_York").isoformat()
    '2026-03-08T05:00:00+00:00'
    """
    return day_start(local_day(instant, tz) + timedelta(days=1), tz)


def at_local(day: date, hhmm: str | time, tz: str) -> datetime:
    """The UTC instant of ``hhmm`` on local day ``day`` in ``tz`` (gap: forward; fold:
    the first).

    >>> at_local(date(2026, 10, 25), "02:30", "Europe/Berlin").isoformat()
    '2026-10-25T00:30:00+00:00'
    """
    t = parse_hhmm(hhmm) if isinstance(hhmm, str) else hhmm
    return wall_to_utc(datetime.combine(day, t), tz)


def next_local_time(instant: datetime, hhmm: str | time, tz: str) -> datetime:
    """The first instant strictly after ``instant`` whose local wall time in ``tz`` is
    ``hhmm`` (today's when it is still ahead, else tomorrow's).

    >>> next_local_time(datetime(2026, 3, 8, 14, tzinfo=UTC), "09:00", "America/New_York")
    datetime.datetime(2026, 3, 9, 13, 0, tzinfo=datetime.timezone.utc)
    """
    now = _utc(instant)
    day = now.astimezone(zone(tz)).date()
    for offset in range(3):
        candidate = at_local(day + timedelta(days=offset), hhmm, tz)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a local time recurs every day")  # pragma: no cover


# -- quiet hours (the guards') ---------------------------------------------------------


def local_instant(day: date, at: time, tz: str) -> datetime:
    """The first UTC instant at which the wall clock of ``tz`` shows ``day`` ``at`` or
    later: a time in the spring-forward gap moves to the end of the gap; an ambiguous one
    takes the first occurrence.

    >>> local_instant(date(2026, 3, 8), time(2, 30), "America/New_York").isoformat()
    '2026-03-08T07:00:00+00:00'
    >>> local_instant(date(2026, 11, 1), time(1, 30), "America/New_York").isoformat()
    '2026-11-01T05:30:00+00:00'
    """
    z = zone(tz)
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=z, fold=0).astimezone(UTC)
    if first.astimezone(z).replace(tzinfo=None) == wall:
        return first
    # in a gap: fold=1 reads it with the offset after the change, which lands before the
    # gap; the end of the gap is between the two readings. Bisect to the second.
    low = wall.replace(tzinfo=z, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while (high - low) > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(z).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0) if high.microsecond else high


def in_window(wall: time, start: time, end: time) -> bool:
    """Whether the wall-clock time ``wall`` is inside ``[start, end)``, a window that may
    cross midnight; ``start == end`` is an empty window.

    >>> in_window(time(23), time(21), time(8)), in_window(time(8), time(21), time(8))
    (True, False)
    """
    if start == end:
        return False
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def is_quiet(at: datetime, tz: str, start: str, end: str) -> bool:
    """Whether the instant ``at`` falls in the quiet hours of zone ``tz``.

    >>> is_quiet(datetime(2026, 6, 1, 20, tzinfo=UTC), "Europe/Berlin", "21:00", "08:00")
    True
    """
    local = at.astimezone(zone(tz))
    return in_window(local.time().replace(tzinfo=None), parse_hhmm(start), parse_hhmm(end))


def quiet_until(at: datetime, tz: str, start: str, end: str) -> datetime | None:
    """When a message due at ``at`` may go out: None when ``at`` is outside the quiet
    hours ``[start, end)`` of zone ``tz``; else the earliest instant after ``at`` that is
    outside them (the local ``end``, DST-correct).

    >>> quiet_until(datetime(2026, 3, 8, 5, tzinfo=UTC), "America/New_York", "21:00", "02:30")
    datetime.datetime(2026, 3, 8, 7, 0, tzinfo=datetime.timezone.utc)
    """
    at = at.astimezone(UTC)
    s, e = parse_hhmm(start), parse_hhmm(end)
    z = zone(tz)
    local = at.astimezone(z)
    if not in_window(local.time().replace(tzinfo=None), s, e):
        return None
    day = local.date()
    if s > e and local.time().replace(tzinfo=None) >= s:
        day += timedelta(days=1)
    best = _first_exit(at, day, e, tz)
    # The wall clock ran straight (no offset change) from `at` to `best`: nothing earlier
    # leaves the window. Otherwise a DST change lies between; look minute by minute.
    if best is not None and at.astimezone(z).utcoffset() == best.astimezone(z).utcoffset():
        return best
    return _scan(at, tz, s, e)


def _first_exit(at: datetime, day: date, end: time, tz: str) -> datetime | None:
    """The first instant after ``at`` at which the wall clock reads ``end`` on ``day``
    (or the next day), trying both readings of an ambiguous time."""
    z = zone(tz)
    for d in (day, day + timedelta(days=1)):
        found = []
        for fold in (0, 1):
            wall = datetime.combine(d, end).replace(tzinfo=z, fold=fold)
            u = wall.astimezone(UTC)
            if u.astimezone(z).replace(tzinfo=None) != wall.replace(tzinfo=None):
                u = local_instant(d, end, tz)
            if u > at:
                found.append(u)
        if found:
            return min(found)
    return None


def _scan(at: datetime, tz: str, start: time, end: time) -> datetime:
    """Minute by minute from ``at`` (quiet-hour bounds and DST changes are on whole
    minutes) to the first instant outside ``[start, end)``; at most three days."""
    z = zone(tz)
    t = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(3 * 24 * 60):
        if not in_window(t.astimezone(z).time().replace(tzinfo=None), start, end):
            return t
        t += timedelta(minutes=1)
    raise AssertionError("quiet hours never end")  # pragma: no cover - start == end is empty


def yearly_date(month: int, day: int, year: int) -> date:
    """``month``/``day`` in ``year``; 29 February is 28 February in a common year.

    >>> yearly_date(2, 29, 2027), yearly_date(6, 1, 2027)
    (datetime.date(2027, 2, 28), datetime.date(2027, 6, 1))
    """
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28)


def next_yearly(month: int, day: int, on_or_after: date) -> date:
    """The first ``month``/``day`` on or after ``on_or_after`` (birthdays, anniversaries).

    >>> next_yearly(3, 1, date(2026, 3, 2)), next_yearly(3, 1, date(2026, 3, 1))
    (datetime.date(2027, 3, 1), datetime.date(2026, 3, 1))
    """
    this = yearly_date(month, day, on_or_after.year)
    return this if this >= on_or_after else yearly_date(month, day, on_or_after.year + 1)
