"""Local time for the send-time guards: a customer's time zone, quiet hours, local days.

Pure functions over ``zoneinfo`` (no state, no clock). Wall-clock rules: a local time
that does not exist (the spring-forward gap) moves forward to the first instant that
exists after it; an ambiguous one (the autumn fold) takes the first occurrence.

>>> from datetime import UTC, datetime
>>> quiet_until(datetime(2026, 3, 1, 14, tzinfo=UTC), "Asia/Shanghai", "21:00", "08:00")
datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.timezone.utc)
>>> quiet_until(datetime(2026, 3, 1, 4, tzinfo=UTC), "Asia/Shanghai", "21:00", "08:00") is None
True
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The main zone of countries that span several (the first in tzdata's list is not it).
_MAIN_ZONE = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "US": "America/New_York",
}


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of ``name`` (cached).

    >>> zone("Europe/Berlin").key
    'Europe/Berlin'
    """
    return ZoneInfo(name)


@lru_cache(maxsize=512)
def country_zone(country: str | None) -> str | None:
    """The main time zone of an ISO 3166 country code, or None when unknown.

    >>> country_zone("US"), country_zone("cn"), country_zone("XX")
    ('America/New_York', 'Asia/Shanghai', None)
    """
    if not country:
        return None
    code = str(country).strip().upper()
    if code in _MAIN_ZONE:
        return _MAIN_ZONE[code]
    import pytz

    zones = pytz.country_timezones.get(code)
    return zones[0] if zones else None


@lru_cache(maxsize=2048)
def customer_zone(timezone: str | None, country: str | None, default: str) -> str:
    """The customer's zone: their own ``timezone``, else their ``country``'s main zone,
    else ``default`` (the workspace's reporting time zone). An unknown name falls through.

    >>> customer_zone(None, "DE", "UTC"), customer_zone("Nowhere/City", None, "UTC")
    ('Europe/Berlin', 'UTC')
    """
    for name in (timezone, country_zone(country)):
        if name:
            try:
                zone(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return str(name)
    return default


def parse_hhmm(text: str) -> time:
    """``'21:00'`` as a time.

    >>> parse_hhmm("08:30")
    datetime.time(8, 30)
    """
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


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


def local_day(at: datetime, tz: str) -> date:
    """The customer's calendar day of the instant ``at``.

    >>> local_day(datetime(2026, 3, 1, 17, tzinfo=UTC), "Asia/Shanghai")
    datetime.date(2026, 3, 2)
    """
    return at.astimezone(zone(tz)).date()


def next_local_midnight(at: datetime, tz: str) -> datetime:
    """The start of the customer's next calendar day after ``at`` (UTC).

    >>> next_local_midnight(datetime(2026, 3, 1, 17, tzinfo=UTC), "Asia/Shanghai").isoformat()
    '2026-03-02T16:00:00+00:00'
    """
    return local_instant(local_day(at, tz) + timedelta(days=1), time(0), tz)
