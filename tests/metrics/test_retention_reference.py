"""Retention against references written from the definition alone (issue 10).

Unbounded, docs/metrics.md: of the users whose first order fell in week 0, the share with an order
in week ``k`` *or later*. The reference below is plain Python over the rows (no Ibis, no
code of the library), and the histories run far past the periods shown, which is where
a count that drops late returns before taking "or later" goes wrong (issue 10: 240 of
260 weekly cells of a real 34-week history were too low). Breakdowns: cohorts whose
value is missing form their own group and change no other group's counts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.metrics import retention

MONDAY = date(2024, 1, 1)  # a Monday: weeks start on Monday, in UTC
AS_OF = datetime(2024, 12, 30, tzinfo=UTC)


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def reference(orders: list[tuple[str, date]], max_period: int) -> dict[tuple[date, int], int]:
    """(cohort week, k) → users of that cohort with an order in week k or later, k ≥ 1."""
    first: dict[str, date] = {}
    for user, day in sorted(orders, key=lambda o: o[1]):
        first.setdefault(user, _week(day))
    latest: dict[str, int] = defaultdict(int)
    for user, day in orders:
        k = (_week(day) - first[user]).days // 7
        latest[user] = max(latest[user], k)
    out: dict[tuple[date, int], int] = defaultdict(int)
    for user, cohort in first.items():
        for k in range(1, max_period + 1):
            if latest[user] >= k:
                out[cohort, k] += 1
    return out


def liucun_counts(orders: list[tuple[str, date]], max_period: int) -> dict[tuple[date, int], int]:
    frame = pd.DataFrame(
        {
            "user_id": [u for u, _ in orders],
            "event_type": "order",
            "ts": [
                datetime.combine(d, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
                for _, d in orders
            ],
        }
    )
    table = retention(
        ibis.memtable(frame), period="week", kind="unbounded", max_period=max_period, as_of=AS_OF
    ).execute()
    return {
        (pd.Timestamp(r.cohort).date(), int(r.period)): int(r.retained)
        for r in table.itertuples()
        if int(r.period) >= 1 and int(r.retained) > 0
    }


ORDERS = st.lists(
    st.tuples(st.sampled_from([f"u{i}" for i in range(25)]), st.integers(0, 34 * 7 - 1)),
    min_size=1,
    max_size=120,
).map(lambda rows: [(u, MONDAY + timedelta(days=d)) for u, d in rows])


@settings(max_examples=60, deadline=None)
@given(orders=ORDERS, max_period=st.integers(1, 12))
def test_unbounded_matches_the_definition_on_long_histories(
    orders: list[tuple[str, date]], max_period: int
) -> None:
    assert liucun_counts(orders, max_period) == {
        key: n for key, n in reference(orders, max_period).items() if n > 0
    }


def test_a_return_after_the_last_period_shown_still_counts() -> None:
    """u1 orders in week 0 and again only in week 20; with 12 periods shown it is
    retained in every period 1…12 ("week k or later")."""
    orders = [("u1", MONDAY), ("u1", MONDAY + timedelta(weeks=20)), ("u2", MONDAY)]
    got = liucun_counts(orders, 12)
    assert got == {(MONDAY, k): 1 for k in range(1, 13)}


def test_missing_breakdown_values_are_their_own_group() -> None:
    """u2 and u3 have no acquisition channel: they form the group 'unknown' with their
    real returns, and the groups add up to the counts without a breakdown."""
    orders = [
        ("u1", MONDAY),
        ("u1", MONDAY + timedelta(weeks=1)),
        ("u2", MONDAY),
        ("u2", MONDAY + timedelta(weeks=1)),
        ("u3", MONDAY),
        ("u3", MONDAY + timedelta(weeks=2)),
    ]
    frame = pd.DataFrame(
        {
            "user_id": [u for u, _ in orders],
            "event_type": "order",
            "ts": [datetime.combine(d, datetime.min.time(), tzinfo=UTC) for _, d in orders],
        }
    )
    users = ibis.memtable(
        pd.DataFrame({"user_id": ["u1", "u2", "u3"], "acquisition_channel": ["ads", None, None]})
    )
    for kind in ("n-period", "unbounded"):
        table = retention(
            ibis.memtable(frame),
            period="week",
            kind=kind,
            max_period=2,
            breakdown="acquisition_channel",
            users=users,
            as_of=AS_OF,
        ).execute()
        got = {
            (r.breakdown, int(r.period)): (int(r.cohort_size), int(r.retained))
            for r in table.itertuples()
        }
        week1 = 1 if kind == "n-period" else 2  # u3 returns in week 2 only
        assert got == {
            ("ads", 0): (1, 1),
            ("ads", 1): (1, 1),
            ("ads", 2): (1, 0),
            ("unknown", 0): (2, 2),
            ("unknown", 1): (2, week1),
            ("unknown", 2): (2, 1),
        }, kind
