"""``simulate_shop``: run the simulation chunk by chunk and write the Parquet files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liucun.core import ConfigError
from liucun.simulate._calendar import Calendar, build_calendar
from liucun.simulate._engagement import campaign_block, message_blocks, signup_block
from liucun.simulate._events import US_PER_DAY, Chunk, assemble
from liucun.simulate._membership import MEMBERSHIP_STREAM, membership_block
from liucun.simulate._orders import order_blocks
from liucun.simulate._population import USER_SCHEMA, make_population, users_table
from liucun.simulate._presets import PRESETS, Preset
from liucun.simulate._process import simulate_orders
from liucun.simulate._seasonal import SEASONAL_STREAM, make_seasons, seasonal_orders
from liucun.simulate._sessions import browsing_blocks
from liucun.simulate._truth import TRUTH_SCHEMA, truth_table

PresetName = Literal["b2c", "b2b", "crossborder"]
MIN_DAYS = 30
MAX_DAYS = 3650
_COMPRESSION = "zstd"
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class SimulationResult:
    """Where :func:`simulate_shop` wrote its files, and what it simulated.

    The observation window is ``[start, end)`` (UTC dates).
    """

    out_dir: Path
    users_path: Path
    events_dir: Path
    truth_path: Path
    n_users: int
    n_events: int
    start: dt.date
    end: dt.date
    preset: str
    seed: int


def _check_int(name: str, value: object, low: int, high: int | None, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number, got {value!r}; {hint}")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {bounds}, got {value}; {hint}")
    return int(value)


def _validate(
    out_dir: Path, preset: str, users: int, days: int, seed: int, end: dt.date, chunk_size: int
) -> None:
    if preset not in PRESETS:
        names = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {names}.")
    _check_int("users", users, 1, None, "simulate at least one user, e.g. users=10_000.")
    _check_int("days", days, MIN_DAYS, MAX_DAYS, "use an observation window, e.g. days=365.")
    _check_int("seed", seed, 0, None, "pass a non-negative seed, e.g. seed=0.")
    _check_int("chunk_size", chunk_size, 1, None, "use e.g. chunk_size=50_000.")
    if isinstance(end, dt.datetime) or not isinstance(end, dt.date):
        raise ConfigError(f"end must be a datetime.date, got {end!r}; e.g. end=date(2026, 9, 30).")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out_dir {str(out_dir)!r} is a file; pass a directory to write into.")


def simulate_shop(
    out_dir: Path,
    *,
    preset: PresetName = "b2c",
    users: int = 10_000,
    days: int = 365,
    seed: int = 0,
    end: dt.date = dt.date(2026, 9, 30),
    chunk_size: int = 50_000,
    on_progress: Callable[[int, int], None] | None = None,
    seasonal_share: float | None = None,
    membership_share: float = 0.0,
) -> SimulationResult:
    """Simulate a shop's customers and write ``users``, ``events`` and ``truth`` Parquet.

    Customers sign up over the window ``[end - days, end)`` (some before it), buy as a
    BG/NBD + Gamma-Gamma process shifted by covariates, seasonality, sale days, service
    experience and a past randomised coupon campaign; ``truth.parquet`` holds every
    latent parameter and true expectation. Same arguments give byte-identical files;
    previous output in ``out_dir`` is replaced. Work is done ``chunk_size`` users at a
    time, and ``on_progress(done_users, total_users)`` is called after each chunk.

    Parameters
    ----------
    out_dir
        Directory to write into (created if missing).
    preset
        ``"b2c"``, ``"b2b"`` or ``"crossborder"`` (see :data:`PRESETS`).
    users
        Number of user rows (about 2 % are duplicate registrations of another customer).
    days
        Length of the observation window in days (30 … 3650).
    seed
        Seed of the random streams (one per chunk).
    end
        First day after the window; no timestamp is at or after its midnight UTC.
    seasonal_share
        Share of the buying customers who are seasonal buyers: one order a year, within
        about a week of their own day of the year (``truth.parquet`` marks them in
        ``seasonal`` and ``season_day``). ``None`` keeps the preset's
        (``Preset.seasonal_share``, 0 for the shipped presets). docs/simulator.md.
    membership_share
        Share of the customers with a second order in the window who buy the paid plan
        ``plus_yearly`` right after it (``membership_purchase`` events; 0 = none).

    Raises
    ------
    ConfigError
        An argument is out of range; the message says what to pass instead.

    Examples
    --------
    >>> import tempfile
    >>> res = simulate_shop(Path(tempfile.mkdtemp()), users=200, days=60, seed=1)
    >>> res.n_users, res.start.isoformat(), res.end.isoformat()
    (200, '2026-08-01', '2026-09-30')
    """
    # long only by its docstring; the body is: validate, the window, then chunk by chunk
    out_dir = Path(out_dir)
    _validate(out_dir, preset, users, days, seed, end, chunk_size)
    shop = PRESETS[preset]
    if seasonal_share is not None:
        if isinstance(seasonal_share, bool) or not 0.0 <= float(seasonal_share) <= 1.0:
            raise ConfigError(
                f"seasonal_share must be a share between 0 and 1, got {seasonal_share!r}; "
                "e.g. seasonal_share=0.2 makes a fifth of the buyers buy once a year"
            )
        shop = replace(shop, seasonal_share=float(seasonal_share))
    if isinstance(membership_share, bool) or not 0.0 <= float(membership_share) <= 1.0:
        raise ConfigError(
            f"membership_share must be a share between 0 and 1, got {membership_share!r}; "
            "e.g. membership_share=0.15 makes 15 % of the repeat buyers join the paid plan"
        )
    start = end - dt.timedelta(days=days)
    window = _Window(
        days=days,
        start_us=(start - _EPOCH).days * US_PER_DAY,
        start_date=np.datetime64(start, "D"),
        cal=build_calendar(shop, start, -shop.pre_window_days - 16, days + 367),
    )
    events_dir = _fresh_events_dir(out_dir)
    users_path, truth_path = out_dir / "users.parquet", out_dir / "truth.parquet"
    n_events = 0
    with (
        pq.ParquetWriter(users_path, USER_SCHEMA, compression=_COMPRESSION) as users_writer,
        pq.ParquetWriter(truth_path, TRUTH_SCHEMA, compression=_COMPRESSION) as truth_writer,
    ):
        for index, first in enumerate(range(0, users, chunk_size)):
            n = min(chunk_size, users - first)
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            seasonal_rng = np.random.default_rng(
                np.random.SeedSequence([seed, index, SEASONAL_STREAM])
            )
            member_rng = np.random.default_rng(
                np.random.SeedSequence([seed, index, MEMBERSHIP_STREAM])
            )
            events, user_rows, truth = _simulate_chunk(
                shop,
                window,
                (rng, seasonal_rng, member_rng),
                index,
                (first, n),
                float(membership_share),
            )
            pq.write_table(
                events,
                events_dir / f"part-{index:05d}.parquet",
                compression=_COMPRESSION,
                row_group_size=1_000_000,
            )
            n_events += events.num_rows
            del events
            users_writer.write_table(user_rows)
            truth_writer.write_table(truth)
            if on_progress is not None:
                on_progress(first + n, users)
    return SimulationResult(
        out_dir=out_dir,
        users_path=users_path,
        events_dir=events_dir,
        truth_path=truth_path,
        n_users=users,
        n_events=n_events,
        start=start,
        end=end,
        preset=preset,
        seed=seed,
    )


@dataclass(frozen=True)
class _Window:
    """The observation window every chunk shares: its length, start and calendar."""

    days: int
    start_us: int  # microseconds since the epoch at the window's start (UTC midnight)
    start_date: np.datetime64
    cal: Calendar


def _fresh_events_dir(out_dir: Path) -> Path:
    """``out_dir/events``, created, without the parts of an earlier run."""
    events_dir = out_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    for old in sorted(events_dir.glob("part-*.parquet")):
        old.unlink()
    return events_dir


def _simulate_chunk(
    shop: Preset,
    window: _Window,
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
    index: int,
    rows: tuple[int, int],
    membership_share: float,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """One chunk of users: who they are, what they buy and do, and the truth.

    Returns the chunk's ``events``, ``users`` and ``truth`` rows. The steps draw from
    the first generator in turn: their order is part of the seeded output. The seasonal
    buyers draw from the second and membership purchases from the third, so that without
    them nothing changes. ``rows`` is the chunk's first user row and size.
    """
    rng, seasonal_rng, member_rng = rngs
    first, n = rows
    days, start_us, start_date, cal = window.days, window.start_us, window.start_date, window.cal
    pop = make_population(shop, rng, cal, first_user=first, n=n, days=days)
    orders, life = simulate_orders(shop, pop, cal, rng, days=days)
    seasons = make_seasons(pop, shop.seasonal_share, seasonal_rng)
    orders, life = seasonal_orders(pop, orders, life, seasons, seasonal_rng, days=days)
    ctx = Chunk(
        preset=shop,
        pop=pop,
        cal=cal,
        rng=rng,
        index=index,
        days=days,
        start_us=start_us,
        start_date=start_date,
        fav_category=rng.integers(0, len(shop.categories), n),
    )
    blocks = [signup_block(ctx), campaign_block(ctx)]
    blocks += browsing_blocks(ctx, life)
    blocks += order_blocks(ctx, orders)
    blocks += message_blocks(ctx, life)
    blocks.append(membership_block(ctx, orders, membership_share, member_rng))
    events = assemble(ctx, blocks)
    del blocks
    users = users_table(pop, shop, rng, start_us=start_us, days=days)
    truth = truth_table(
        shop, pop, life, cal, days=days, start_us=start_us, start_date=start_date, seasons=seasons
    )
    return events, users, truth
