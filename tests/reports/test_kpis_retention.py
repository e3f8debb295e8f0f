"""Headline retention that means what a shop means (issue 10): repeat purchase within
30 / 90 days of the first order and D1/D7/D30 activity retention, against plain-Python
oracles written from docs/metrics.md, with days counted in Asia/Shanghai."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis
import pandas as pd
import pytest

from liucun.reports import headline_kpis
from liucun.reports._kpis import ACTIVITY_EVENT_TYPES, activity_retention, repeat_purchase

TZ = "Asia/Shanghai"
AS_OF = datetime(2024, 6, 1, 16, tzinfo=UTC)  # 2024-06-02 00:00 in Shanghai


pytestmark = pytest.mark.usefixtures("liucun_engine")


def _history(seed: int = 7, users: int = 150) -> list[tuple[str, str, datetime]]:
    """Random shop: orders and visits over five months, many of them near midnight."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for u in range(users):
        t = start + timedelta(days=rng.uniform(0, 140))
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(["order", "order", "visit", "view"])
            # a third of the events 15:00-17:00 UTC, around Shanghai's midnight
            if rng.random() < 0.35:
                t = t.replace(hour=rng.choice([15, 16]), minute=rng.randint(0, 59))
            rows.append((f"u{u}", kind, t))
            t += timedelta(days=rng.expovariate(1 / 12), hours=rng.uniform(-3, 3))
    return [r for r in rows if r[2] < AS_OF]


def _table(rows: list[tuple[str, str, datetime]]) -> ibis.Table:
    df = pd.DataFrame(rows, columns=["user_id", "event_type", "ts"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["revenue"] = [10.0 if k == "order" else None for k in df.event_type]
    df["currency"] = [("CNY" if k == "order" else None) for k in df.event_type]
    return ibis.memtable(df)


def _day(ts: datetime) -> date:
    return ts.astimezone(ZoneInfo(TZ)).date()


END_DAY = _day(AS_OF)  # the first day not covered: 2024-06-02


def _oracle_repeat(rows: list[tuple[str, str, datetime]], n: int) -> float:
    """Customers whose first order's day d is followed by n whole days before the data
    end; of them, those with an order on day d+1 … d+n."""
    days: dict[str, list[date]] = {}
    for user, kind, ts in rows:
        if kind == "order":
            days.setdefault(user, []).append(_day(ts))
    eligible = repeat = 0
    for ds in days.values():
        first = min(ds)
        if first + timedelta(days=n) < END_DAY:
            eligible += 1
            repeat += any(first < d <= first + timedelta(days=n) for d in ds)
    return repeat / eligible


def _oracle_activity(rows: list[tuple[str, str, datetime]], n: int) -> float:
    days: dict[str, set[date]] = {}
    for user, kind, ts in rows:
        if kind in ACTIVITY_EVENT_TYPES:
            days.setdefault(user, set()).add(_day(ts))
    eligible = back = 0
    for ds in days.values():
        first = min(ds)
        if first + timedelta(days=n) < END_DAY:
            eligible += 1
            back += (first + timedelta(days=n)) in ds
    return back / eligible


def test_repeat_purchase_within_30_and_90_days_matches_its_definition() -> None:
    rows = _history()
    got = repeat_purchase(_table(rows), as_of=AS_OF, timezone=TZ)
    assert got[30] == pytest.approx(_oracle_repeat(rows, 30), abs=1e-12)
    assert got[90] == pytest.approx(_oracle_repeat(rows, 90), abs=1e-12)
    assert 0 < got[30] < got[90] < 1


def test_activity_retention_matches_its_definition() -> None:
    rows = _history()
    got = activity_retention(_table(rows), as_of=AS_OF, timezone=TZ)
    for n in (1, 7, 30):
        assert got[n] == pytest.approx(_oracle_activity(rows, n), abs=1e-12), n


def test_a_second_order_after_shanghai_midnight_is_a_repeat_there_not_in_utc() -> None:
    rows = [
        ("a", "order", datetime(2024, 1, 1, 15, 30, tzinfo=UTC)),  # 23:30 Shanghai
        ("a", "order", datetime(2024, 1, 1, 16, 30, tzinfo=UTC)),  # 00:30 next day
        ("b", "order", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
    ]
    table = _table(rows)
    as_of = datetime(2024, 5, 1, tzinfo=UTC)
    assert repeat_purchase(table, as_of=as_of, timezone=TZ)[30] == 0.5
    assert repeat_purchase(table, as_of=as_of, timezone="UTC")[30] == 0.0


def test_headline_rows_replace_n_day_order_retention() -> None:
    rows = _history()
    users = ibis.memtable(
        pd.DataFrame({"user_id": ["u1"], "acquisition_channel": ["x"], "acquisition_cost": [1.0]})
    )
    kpis = headline_kpis(_table(rows), users, as_of=AS_OF, timezone=TZ)
    metrics = dict(zip(kpis.metric, kpis.value, strict=False))
    assert not any("order retention" in m for m in metrics)
    assert metrics["repeat purchase within 30 days of the first order"] == pytest.approx(
        _oracle_repeat(rows, 30)
    )
    assert metrics["D7 activity retention"] == pytest.approx(_oracle_activity(rows, 7))
    # orders only: no activity rows (they would repeat order retention)
    orders = [r for r in rows if r[1] == "order"]
    only = headline_kpis(_table(orders), users, as_of=AS_OF, timezone=TZ)
    assert not only.metric.str.contains("activity").any()
    assert only.metric.str.contains("repeat purchase within 90 days").any()


def test_headline_windows_are_whole_days_of_the_reporting_time_zone() -> None:
    """The last 90 days before a 2024-04-01 UTC data end are, in Shanghai, 3 Jan … 1 Apr:
    an order at 18:00 on 2 Jan there is outside; one at 00:30 on 3 Jan is inside."""
    rows = [
        ("x", "order", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),  # 2 Jan 18:00 Shanghai
        ("y", "order", datetime(2024, 1, 2, 16, 30, tzinfo=UTC)),  # 3 Jan 00:30 Shanghai
    ]
    users = ibis.memtable(
        pd.DataFrame({"user_id": ["x"], "acquisition_channel": ["a"], "acquisition_cost": [1.0]})
    )
    as_of = datetime(2024, 4, 1, tzinfo=UTC)
    label = "active customers (ordered in the last 90 days)"

    def active(tz: str) -> float:
        kpis = headline_kpis(_table(rows), users, as_of=as_of, timezone=tz)
        return float(kpis[kpis.metric == label].value.iloc[0])

    assert active(TZ) == 1
    assert active("UTC") == 2  # 2 Jan 00:00 UTC … 31 Mar
