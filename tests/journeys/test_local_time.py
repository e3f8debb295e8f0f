"""Local time of customers: zones (customer → country → default), the next local HH:MM
across DST changes (New York springs forward on 8 March 2026, Berlin falls back on 25
October 2026), quiet hours and local days; properties by hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import ConfigError
from liucun.journeys._local_time import (
    at_local,
    country_zone,
    customer_zone,
    day_start,
    is_quiet,
    local_day,
    next_day_start,
    next_local_time,
    next_yearly,
    quiet_until,
    wall_to_utc,
    zone,
)

NY, BERLIN = "America/New_York", "Europe/Berlin"


def test_zone_resolution_customer_then_country_then_default() -> None:
    assert customer_zone("Asia/Tokyo", "DE", "UTC") == "Asia/Tokyo"
    assert customer_zone(None, "DE", "UTC") == BERLIN
    assert customer_zone("", "us", "UTC") == NY
    assert customer_zone("Not/AZone", "CN", "UTC") == "Asia/Shanghai"
    assert customer_zone(None, None, "Asia/Shanghai") == "Asia/Shanghai"
    assert customer_zone(None, "XX", "Europe/Paris") == "Europe/Paris"
    assert country_zone("RU") == "Europe/Moscow" and country_zone("JP") == "Asia/Tokyo"
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        zone("Mars/Olympus")


def test_next_nine_am_in_new_york_across_spring_forward() -> None:
    # Saturday 7 March 20:00 UTC = 15:00 EST; the next 09:00 is Sunday 8 March, EDT (UTC-4)
    sat = datetime(2026, 3, 7, 20, tzinfo=UTC)
    assert next_local_time(sat, "09:00", NY) == datetime(2026, 3, 8, 13, tzinfo=UTC)
    # the day before: 09:00 EST is 14:00 UTC
    fri = datetime(2026, 3, 6, 20, tzinfo=UTC)
    assert next_local_time(fri, "09:00", NY) == datetime(2026, 3, 7, 14, tzinfo=UTC)
    # 02:30 does not exist on 8 March: it moves forward by the gap to 03:30 EDT
    assert at_local(date(2026, 3, 8), "02:30", NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert at_local(date(2026, 3, 8), "02:30", NY).astimezone(ZoneInfo(NY)).hour == 3


def test_next_time_in_berlin_across_fall_back() -> None:
    # 24 October 12:00 UTC = 14:00 CEST; next 10:00 is 25 October, CET (UTC+1) = 09:00 UTC
    assert next_local_time(datetime(2026, 10, 24, 12, tzinfo=UTC), "10:00", BERLIN) == datetime(
        2026, 10, 25, 9, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October: the first (CEST, 00:30 UTC) is taken
    assert at_local(date(2026, 10, 25), "02:30", BERLIN) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    # the local day of 25 October is 25 hours long
    assert next_day_start(datetime(2026, 10, 25, 12, tzinfo=UTC), BERLIN) - day_start(
        date(2026, 10, 25), BERLIN
    ) == timedelta(hours=25)


def test_quiet_hours_end_at_the_next_local_end() -> None:
    tz = "Asia/Shanghai"
    late = datetime(2026, 1, 1, 14, tzinfo=UTC)  # 22:00 local
    assert is_quiet(late, tz, "21:00", "08:00")
    assert quiet_until(late, tz, "21:00", "08:00") == datetime(2026, 1, 2, 0, tzinfo=UTC)
    noon = datetime(2026, 1, 1, 4, tzinfo=UTC)
    assert quiet_until(noon, tz, "21:00", "08:00") is None
    assert not is_quiet(noon, tz, "08:00", "08:00")
    # a daytime window (start < end)
    assert is_quiet(noon, tz, "11:00", "13:00")
    # New York: quiet from 21:00 on 7 March to 08:00 EDT on 8 March (12:00 UTC)
    assert quiet_until(datetime(2026, 3, 8, 3, tzinfo=UTC), NY, "21:00", "08:00") == datetime(
        2026, 3, 8, 12, tzinfo=UTC
    )


def test_local_day_and_yearly_dates() -> None:
    assert local_day(datetime(2026, 1, 1, 16, tzinfo=UTC), "Asia/Shanghai") == date(2026, 1, 2)
    assert local_day(datetime(2026, 1, 1, 16, tzinfo=UTC), NY) == date(2026, 1, 1)
    assert next_yearly(2, 29, date(2026, 1, 1)) == date(2026, 2, 28)
    assert next_yearly(2, 29, date(2027, 12, 1)) == date(2028, 2, 29)
    with pytest.raises(ConfigError, match="no time zone"):
        local_day(datetime(2026, 1, 1), NY)


ZONES = st.sampled_from([NY, BERLIN, "Asia/Shanghai", "Australia/Sydney", "UTC", "Asia/Kolkata"])
INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
TIMES = st.times().map(lambda t: time(t.hour, t.minute))


@settings(max_examples=300, deadline=None)
@given(INSTANTS, TIMES, ZONES)
def test_next_local_time_is_soon_after_and_shows_the_wall_time(
    instant: datetime, hhmm: time, tz: str
) -> None:
    nxt = next_local_time(instant, hhmm, tz)
    assert instant < nxt <= instant + timedelta(hours=26)
    wall = nxt.astimezone(ZoneInfo(tz))
    if (wall.hour, wall.minute) != (hhmm.hour, hhmm.minute):
        # only a time inside a DST gap may read otherwise: it moved forward by the gap
        naive = datetime.combine(wall.date(), hhmm)
        assert naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC) == nxt
        assert wall.utcoffset() != (wall - timedelta(hours=3)).utcoffset()
    # nothing earlier after ``instant`` shows that wall time on another day
    assert next_local_time(nxt - timedelta(minutes=1), hhmm, tz) == nxt


@settings(max_examples=300, deadline=None)
@given(INSTANTS, ZONES)
def test_an_instant_lies_in_its_local_day(instant: datetime, tz: str) -> None:
    day = local_day(instant, tz)
    assert day_start(day, tz) <= instant < next_day_start(instant, tz)
    assert local_day(day_start(day, tz), tz) == day


@settings(max_examples=200, deadline=None)
@given(INSTANTS, TIMES, TIMES, ZONES)
def test_quiet_hours_end_is_outside_them(instant: datetime, a: time, b: time, tz: str) -> None:
    start, end = f"{a:%H:%M}", f"{b:%H:%M}"
    out = quiet_until(instant, tz, start, end) or instant
    assert out >= instant
    assert out == instant or not is_quiet(out, tz, start, end) or start == end
    assert out - instant <= timedelta(hours=25)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)), ZONES)
def test_wall_to_utc_round_trips_outside_gaps(wall: datetime, tz: str) -> None:
    instant = wall_to_utc(wall, tz)
    back = instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    assert back == wall or timedelta(0) < back - wall <= timedelta(hours=1)
