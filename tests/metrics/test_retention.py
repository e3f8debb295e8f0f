"""Cohort retention, pinned by hand-computed numbers on a hand-made shop (ARCHITECTURE §5)."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from liucun.core import ConfigError
from liucun.metrics import retention

ROWS = [
    ("u1", "order", "2024-01-01 10:00"),  # cohort week of Mon 2024-01-01
    ("u1", "order", "2024-01-09 08:00"),  # week 1
    ("u1", "order", "2024-01-24 08:00"),  # week 3
    ("u2", "order", "2024-01-03 09:00"),  # cohort week of 2024-01-01
    ("u2", "order", "2024-01-03 12:00"),  # same week as the cohort event: period 0
    ("u2", "order", "2024-01-16 08:00"),  # week 2
    ("u3", "order", "2024-01-08 08:00"),  # cohort week of 2024-01-08, never returns
    ("u4", "view", "2024-01-02 08:00"),  # never orders: in no cohort
]
AS_OF = datetime(2024, 1, 31, 23, 0)


@pytest.fixture
def events() -> ibis.Table:
    df = pd.DataFrame(ROWS, columns=["user_id", "event_type", "ts"])
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    return ibis.memtable(df)


def _grid(table: ibis.Table) -> dict[tuple, tuple[int, int, float, bool]]:
    out = table.execute()
    return {
        (
            pd.Timestamp(r.cohort).date().isoformat(),
            *([r.breakdown] if "breakdown" in out.columns else []),
            r.period if isinstance(r.period, str) else int(r.period),
        ): (
            int(r.cohort_size),
            int(r.retained),
            float(r.rate),
            bool(r.complete),
        )
        for r in out.itertuples()
    }


def test_weekly_n_period(events: ibis.Table) -> None:
    got = _grid(retention(events, period="week", max_period=6, as_of=AS_OF))
    assert got == {
        ("2024-01-01", 0): (2, 2, 1.0, True),
        ("2024-01-01", 1): (2, 1, 0.5, True),
        ("2024-01-01", 2): (2, 1, 0.5, True),
        ("2024-01-01", 3): (2, 1, 0.5, True),
        ("2024-01-01", 4): (2, 0, 0.0, False),  # the week of Jan 29 has not ended
        ("2024-01-08", 0): (1, 1, 1.0, True),
        ("2024-01-08", 1): (1, 0, 0.0, True),
        ("2024-01-08", 2): (1, 0, 0.0, True),
        ("2024-01-08", 3): (1, 0, 0.0, False),
    }  # weeks starting after Jan 31 are absent, not 0


def test_weekly_unbounded(events: ibis.Table) -> None:
    got = _grid(retention(events, period="week", kind="unbounded", max_period=6, as_of=AS_OF))
    assert [got[("2024-01-01", k)][1] for k in range(5)] == [2, 2, 2, 1, 0]


def test_recurring_cohorts(events: ibis.Table) -> None:
    got = _grid(
        retention(events, period="week", cohort_type="recurring", max_period=3, as_of=AS_OF)
    )
    # week of Jan 8: u1 (ordered Jan 9) and u3; u1 orders again in the week of Jan 22
    assert got[("2024-01-08", 0)][:2] == (2, 2)
    assert got[("2024-01-08", 1)][:2] == (2, 0)
    assert got[("2024-01-08", 2)][:3] == (2, 1, 0.5)
    # week of Jan 15: u2 alone, no later order
    assert got[("2024-01-15", 0)][:2] == (1, 1)
    assert got[("2024-01-15", 1)][:2] == (1, 0)


def test_weeks_starting_on_sunday_move_the_boundaries(events: ibis.Table) -> None:
    got = _grid(retention(events, period="week", week_start=6, max_period=1, as_of=AS_OF))
    # Sunday weeks: Dec 31 – Jan 6 holds u1 and u2; Jan 7 – 13 holds u3
    assert {k[0] for k in got} == {"2023-12-31", "2024-01-07"}
    assert got[("2023-12-31", 1)][:2] == (2, 1)  # u1 on Jan 9


def test_daily_and_monthly(events: ibis.Table) -> None:
    daily = _grid(retention(events, period="day", max_period=8, as_of=AS_OF))
    assert daily[("2024-01-01", 8)][:2] == (1, 1)  # u1: Jan 1 → Jan 9
    assert daily[("2024-01-03", 0)][:2] == (1, 1)
    monthly = _grid(retention(events, period="month", max_period=2, as_of=AS_OF))
    assert monthly == {("2024-01-01", 0): (3, 3, 1.0, False)}  # January is not over


def test_bad_options_are_config_errors(events: ibis.Table) -> None:
    with pytest.raises(ConfigError, match="unknown period"):
        retention(events, period="fortnight")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown kind"):
        retention(events, kind="bracketed-ish")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="week_start"):
        retention(events, week_start=7)


def _pandas_weekly(df: pd.DataFrame, as_of: pd.Timestamp, max_period: int) -> dict:
    """Plain pandas reference: first-order week cohorts, N-period weekly retention."""
    orders = df[(df.event_type == "order") & df.user_id.notna()].copy()
    orders["ts"] = orders.ts.dt.tz_convert(None)
    orders["week"] = orders.ts.dt.to_period("W-SUN").dt.start_time
    first = orders.groupby("user_id").ts.min().rename("first_ts")
    orders = orders.join(first, on="user_id")
    orders["cohort"] = orders.first_ts.dt.to_period("W-SUN").dt.start_time
    sizes = orders.groupby("cohort").user_id.nunique()
    later = orders[orders.ts > orders.first_ts].copy()
    later["k"] = (later.week - later.cohort).dt.days // 7
    counts = later.groupby(["cohort", "k"]).user_id.nunique()
    out = {}
    for cohort, size in sizes.items():
        for k in range(max_period + 1):
            start = cohort + pd.Timedelta(weeks=k)
            if start > as_of:
                continue
            kept = size if k == 0 else int(counts.get((cohort, k), 0))
            out[(cohort.date().isoformat(), k)] = (int(size), kept)
    return out


def test_agrees_with_a_pandas_reference_on_a_simulated_shop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    from liucun.simulate import simulate_shop

    sim = simulate_shop(tmp_path / "sim", users=1500, days=120, seed=11)
    df = pq.read_table(sim.events_dir).select(["user_id", "event_type", "ts"]).to_pandas()
    as_of = df.ts.max().tz_convert(None)
    got = _grid(retention(ibis.memtable(df), period="week", max_period=8))
    want = _pandas_weekly(df, as_of, 8)
    assert {k: v[:2] for k, v in got.items()} == want
    assert sum(v[1] for k, v in want.items() if k[1] > 0) > 50  # the shop has returners


def test_bracketed(events: ibis.Table) -> None:
    from liucun.metrics import parse_brackets

    spec = parse_brackets("W1=1, W2-3=2-3, W4+=4-10")
    got = _grid(retention(events, period="week", kind="bracketed", brackets=spec, as_of=AS_OF))
    # cohort Jan 1: u1 returns in weeks 1 and 3, u2 in week 2
    assert got[("2024-01-01", "W1")] == (2, 1, 0.5, True)
    assert got[("2024-01-01", "W2-3")] == (2, 2, 1.0, True)
    assert got[("2024-01-01", "W4+")] == (2, 0, 0.0, False)
    assert ("2024-01-08", "W4+") not in got  # starts Feb 5, after the data
    out = retention(events, period="week", kind="bracketed", brackets=spec, as_of=AS_OF)
    assert list(out.execute().period[:3]) == ["W1", "W2-3", "W4+"]


@pytest.mark.parametrize("bad", ["D1", "D1=0", "D2=5-3", "=1"])
def test_bad_brackets(bad: str) -> None:
    from liucun.metrics import parse_brackets

    with pytest.raises(ConfigError, match="bracket"):
        parse_brackets(bad)


def test_breakdown_by_event_and_user_columns(events: ibis.Table) -> None:
    df = events.execute()
    df["channel"] = ["app", "web", "web", "web", "web", "web", "app", "app"]
    ev = ibis.memtable(df)
    by_channel = _grid(retention(ev, period="week", breakdown="channel", max_period=2, as_of=AS_OF))
    # the channel of each user's first order: u1 app, u2 web, u3 app
    assert by_channel[("2024-01-01", "app", 1)][:2] == (1, 1)
    assert by_channel[("2024-01-01", "web", 1)][:2] == (1, 0)
    assert by_channel[("2024-01-01", "web", 2)][:2] == (1, 1)
    users = ibis.memtable({"user_id": ["u1", "u2", "u3"], "tier": ["gold", "gold", "basic"]})
    by_tier = _grid(
        retention(ev, period="week", breakdown="tier", users=users, max_period=1, as_of=AS_OF)
    )
    assert by_tier[("2024-01-01", "gold", 1)][:2] == (2, 1)
    assert by_tier[("2024-01-08", "basic", 0)][:2] == (1, 1)
    with pytest.raises(ConfigError, match="cannot break down by 'contry'"):
        retention(ev, breakdown="contry", users=users)


def test_accounts_as_the_unit() -> None:
    df = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "account_id": ["acme", "acme", None],
            "event_type": ["order"] * 3,
            "ts": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-02"], utc=True),
        }
    )
    got = _grid(
        retention(ibis.memtable(df), period="week", entity="account", max_period=1, as_of=AS_OF)
    )
    # buyer b of account acme orders in week 1: the account is retained; c has no account
    assert got == {("2024-01-01", 0): (1, 1, 1.0, True), ("2024-01-01", 1): (1, 1, 1.0, True)}


def test_weighted_mean_and_day_n(events: ibis.Table) -> None:
    from liucun.metrics import day_n_retention, weighted_mean

    weekly = retention(events, period="week", max_period=4, as_of=AS_OF)
    mean = weighted_mean(weekly).execute().set_index("period")
    # week 1: (1 + 0) / (2 + 1); week 3: the Jan 8 cohort's week 3 is incomplete → 1 / 2
    assert mean.loc[1, "rate"] == pytest.approx(1 / 3)
    assert mean.loc[3, "rate"] == pytest.approx(1 / 2)
    assert 4 not in mean.index  # no complete cohort has a week 4
    d = day_n_retention(events, days=(1, 8), as_of=AS_OF).execute().set_index("period")
    # day cohorts: Jan 1 (u1), Jan 3 (u2), Jan 8 (u3); u1 returns on day 8, nobody on day 1
    assert d.loc[1, "retained"] == 0 and d.loc[1, "cohort_size"] == 3
    assert d.loc[8, "retained"] == 1 and d.loc[8, "cohort_size"] == 3


def test_rolling_24_hour_windows() -> None:
    df = pd.DataFrame(
        [
            ("u1", "order", "2024-01-01 22:00"),
            ("u1", "order", "2024-01-02 21:00"),
            ("u1", "order", "2024-01-03 23:00"),
            ("u2", "order", "2024-01-01 08:00"),
            ("u2", "order", "2024-01-02 09:00"),
        ],
        columns=["user_id", "event_type", "ts"],
    )
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    ev = ibis.memtable(df)
    as_of = datetime(2024, 1, 10)
    calendar = _grid(retention(ev, period="day", max_period=2, as_of=as_of))
    rolling = _grid(retention(ev, period="day", max_period=2, as_of=as_of, rolling=True))
    # calendar days: both return on Jan 2; rolling: u1's Jan 2 order is 23 h later (day 0)
    # and its Jan 3 order 49 h later (day 2); u2's is 25 h later (day 1)
    assert [calendar[("2024-01-01", k)][1] for k in (1, 2)] == [2, 1]
    assert [rolling[("2024-01-01", k)][1] for k in (1, 2)] == [1, 1]
    late = _grid(
        retention(ev, period="day", max_period=2, as_of=datetime(2024, 1, 3), rolling=True)
    )
    assert late[("2024-01-01", 1)][3] is False  # u1's window 1 ends Jan 3 22:00
    with pytest.raises(ConfigError, match="period='day'"):
        retention(ev, period="week", rolling=True)


def test_periods_in_the_reporting_time_zone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Days are counted in the reporting time zone: 20:00 UTC is the next day in Shanghai."""
    from liucun.ingest import ingest_tables
    from liucun.workspace import init_workspace

    df = pd.DataFrame(
        [
            ("u1", "order", "2024-01-01 20:00"),
            ("u1", "order", "2024-01-02 03:00"),
            ("u2", "order", "2024-01-01 10:00"),
        ],
        columns=["user_id", "event_type", "ts"],
    )
    df["ts"] = pd.to_datetime(df.ts, utc=True)
    df["revenue"], df["currency"] = 1.0, "CNY"
    with init_workspace(tmp_path / "ws") as ws:
        ingest_tables(ws.warehouse, events=pa.Table.from_pandas(df, preserve_index=False))
        events = ws.warehouse.table("events")
        utc = _grid(retention(events, period="day", max_period=1, as_of=datetime(2024, 1, 5)))
        cn = _grid(
            retention(
                events,
                period="day",
                max_period=1,
                as_of=datetime(2024, 1, 5),
                timezone="Asia/Shanghai",
            )
        )
    # UTC: u1 and u2 start on Jan 1; u1 returns on Jan 2 (day 1)
    assert utc[("2024-01-01", 0)][0] == 2 and utc[("2024-01-01", 1)][1] == 1
    # Shanghai: u1's orders are both on Jan 2 (04:00 and 11:00): no day-1 return
    assert cn[("2024-01-01", 0)][0] == 1  # u2 (18:00 local)
    assert cn[("2024-01-02", 0)][0] == 1
    assert cn[("2024-01-02", 1)][1] == 0
    with pytest.raises(ConfigError, match="unknown time zone"):
        retention(events, timezone="Mars/Olympus")


def test_default_as_of_is_the_data_end(events: ibis.Table) -> None:
    """Without ``as_of`` the cut-off is liucun.core.data_end: midnight after the last event's
    day (u1's order on Wed 24 Jan 08:00 → 25 Jan 00:00), so that day has ended."""
    daily = _grid(retention(events, period="day", cohort_type="recurring", max_period=1))
    assert daily == _grid(
        retention(
            events,
            period="day",
            cohort_type="recurring",
            max_period=1,
            as_of=datetime(2024, 1, 25),
        )
    )
    assert daily[("2024-01-24", 0)] == (1, 1, 1.0, True)  # the last event's day has ended
    assert ("2024-01-24", 1) not in daily  # 25 Jan has not started
    weekly = _grid(retention(events, period="week", max_period=6))
    assert weekly[("2024-01-01", 3)][3] is False  # the week of 22 Jan ends on 29 Jan
