"""Tiers as pure functions: who holds which tier at ``as_of``, and why.

A member's tier is set by the **growth value earned** in the rolling window
``(as_of − tier_policy.window, as_of]`` — the sum of growth entries (earnings, minus
reversals) whose ``ts`` falls in it. The spendable points balance plays no part:
redeeming points never costs a tier.

- **Upgrades** happen at once, whenever the window's growth reaches a higher threshold.
- **Downgrades** happen only at a review: the first evaluation on or after the start of
  a review period (``tier_policy.review``: day, week, month, quarter or year, in the
  program's time zone) that the member has not been reviewed in yet (``reviewed_at``).
- **Grace**: with ``grace_days`` > 0 a member found below their tier's threshold at a
  review keeps the tier until ``grace_until`` (review + grace days); reaching the
  threshold again ends the grace, and at its end the downgrade happens.
- **Downgrade policy**: ``one_down`` drops one tier per downgrade, ``balance_based``
  drops to the tier the window's growth reaches.

:func:`evaluate_tiers` returns one row per member and :func:`tier_changes` the rows that
changed as ``tier_changed`` events for the warehouse.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd

from liucun.core import ConfigError, as_utc
from liucun.loyalty._program import Program

#: Columns of :func:`evaluate_tiers`' result, in order.
TIER_COLUMNS: tuple[str, ...] = (
    "user_id",
    "tier",
    "growth_in_window",
    "previous_tier",
    "changed",
    "direction",
    "reason",
    "tier_since",
    "reviewed_at",
    "grace_until",
)
#: Columns of :func:`tier_changes`' result: rows for the warehouse's ``events``.
TIER_EVENT_COLUMNS: tuple[str, ...] = ("event_id", "user_id", "event_type", "ts", "properties")


def growth_window_start(program: Program, as_of: datetime) -> pd.Timestamp:
    """The exclusive start of the growth window ending at ``as_of`` (months counted on
    the calendar of the program's time zone)."""
    window = program.tier_policy.window
    local = pd.Timestamp(as_utc(as_of)).tz_convert(program.timezone)
    offset = pd.DateOffset(**{window.unit: window.amount})
    return (local - offset).tz_convert("UTC")


def review_start(program: Program, as_of: datetime) -> pd.Timestamp:
    """Start of the review period holding ``as_of`` (local midnight, as a UTC instant)."""
    local = pd.Timestamp(as_utc(as_of)).tz_convert(program.timezone)
    day = local.normalize()
    per = program.tier_policy.review
    if per == "day":
        start = day
    elif per == "week":
        start = day - pd.Timedelta(days=day.day_of_week)
    elif per == "month":
        start = day.replace(day=1)
    elif per == "quarter":
        start = day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    else:
        start = day.replace(month=1, day=1)
    # replace() keeps the wall clock; re-localize in case the offset changed (DST)
    start = start.tz_localize(None).tz_localize(program.timezone)
    return start.tz_convert("UTC")


def evaluate_tiers(
    growth_entries: pd.DataFrame,
    program: Program,
    *,
    as_of: datetime,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every member's tier at ``as_of`` (see the module docstring).

    Parameters
    ----------
    growth_entries
        ``user_id, ts, growth``: growth value earned (and reversed, negative), such as
        :func:`~liucun.loyalty._rules.plan_accrual`'s rows.
    previous
        The last evaluation: ``user_id, tier`` and optionally ``tier_since``,
        ``reviewed_at`` and ``grace_until`` (this function's own columns). Members
        without a previous row join at the tier their growth reaches.

    Returns
    -------
    pandas.DataFrame
        :data:`TIER_COLUMNS`, one row per member in ``growth_entries`` or ``previous``,
        sorted by ``user_id``; ``direction`` is ``up``, ``down``, ``joined`` or ``same``.
    """
    if not program.tiers:
        raise ConfigError("the program defines no tiers; add `tiers:` to the program file")
    missing = {"user_id", "ts", "growth"} - set(growth_entries.columns)
    if missing:
        raise ConfigError(
            f"growth_entries lack {', '.join(sorted(missing))}; pass user_id, ts, growth"
        )
    at = pd.Timestamp(as_utc(as_of))
    names = program.tier_names()
    thresholds = np.array([t.threshold for t in program.tiers], dtype="float64")

    ts = pd.to_datetime(growth_entries.ts, utc=True)
    inside = (ts > growth_window_start(program, as_of)) & (ts <= at)
    growth = (
        pd.to_numeric(growth_entries.growth[inside]).groupby(growth_entries.user_id[inside]).sum()
    )
    prev = _previous(previous)
    users = sorted(set(growth_entries.user_id.astype(str)) | set(prev.index))
    g = growth.reindex(users, fill_value=0).to_numpy(dtype="float64")
    target = np.searchsorted(thresholds, g, side="right") - 1
    target = np.maximum(target, 0)  # negative growth (reversals) still holds the base tier

    p = prev.reindex(users)
    known = p.tier.notna().to_numpy()
    rank_of = {n: i for i, n in enumerate(names)}
    prev_rank = p.tier.map(rank_of).to_numpy(dtype="float64")
    unknown_tier = known & np.isnan(prev_rank)
    joined = ~known | unknown_tier
    prev_rank = np.where(joined, -1, np.nan_to_num(prev_rank, nan=-1)).astype(int)

    boundary = review_start(program, as_of)
    reviewed = pd.to_datetime(p.reviewed_at, utc=True)
    due = (reviewed.isna() | (reviewed < boundary)).to_numpy()
    grace = pd.to_datetime(p.grace_until, utc=True)
    in_grace = grace.notna().to_numpy()
    grace_over = in_grace & (grace <= at).fillna(False).to_numpy()

    below = ~joined & (target < prev_rank)
    policy = program.tier_policy
    step = np.maximum(target, prev_rank - 1) if policy.downgrade == "one_down" else target
    start_grace = below & ~in_grace & due & (policy.grace_days > 0)
    downgrade = below & ((in_grace & grace_over) | (~in_grace & due & (policy.grace_days == 0)))
    up = ~joined & (target > prev_rank)
    new_rank = np.select([joined, up, downgrade], [target, target, step], default=prev_rank)

    grace_until = pd.Series(grace.to_numpy(), index=users, dtype="datetime64[us, UTC]")
    grace_until[~below] = pd.NaT  # back at the threshold (or moved): grace ends
    grace_until[downgrade] = pd.NaT
    grace_until[start_grace] = at + pd.Timedelta(days=policy.grace_days)

    changed = joined | up | downgrade
    since = pd.to_datetime(p.tier_since, utc=True).astype("datetime64[us, UTC]")
    since = since.where(~changed, at)
    reviewed_out = reviewed.astype("datetime64[us, UTC]").where(~due, boundary)

    out = pd.DataFrame(
        {
            "user_id": users,
            "tier": [names[i] for i in new_rank],
            "growth_in_window": g.astype("int64") if np.all(g == g.round()) else g,
            "previous_tier": p.tier.to_numpy(),
            "changed": changed,
            "direction": np.select(
                [joined, up, downgrade], ["joined", "up", "down"], default="same"
            ),
            "reason": _reasons(
                g,
                target,
                new_rank,
                prev_rank,
                joined,
                unknown_tier,
                up,
                downgrade,
                start_grace,
                below,
                grace_until,
                grace_over,
                due,
                names,
                thresholds,
                p.tier.to_numpy(),
                boundary,
                program,
            ),
            "tier_since": since.to_numpy(),
            "reviewed_at": reviewed_out.to_numpy(),
            "grace_until": grace_until.to_numpy(),
        }
    )
    for col in ("tier_since", "reviewed_at", "grace_until"):
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[us, UTC]")
    return out[list(TIER_COLUMNS)]


def _previous(previous: pd.DataFrame | None) -> pd.DataFrame:
    cols = ("tier", "tier_since", "reviewed_at", "grace_until")
    if previous is None or previous.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="object") for c in cols}, index=pd.Index([], dtype="object")
        )
    if not {"user_id", "tier"} <= set(previous.columns):
        raise ConfigError(
            "previous needs user_id and tier columns (an earlier evaluate_tiers result)"
        )
    if previous.user_id.duplicated().any():
        dup = previous.user_id[previous.user_id.duplicated()].iloc[0]
        raise ConfigError(f"previous has two rows for user {dup!r}; pass one row per member")
    frame = previous.set_index(previous.user_id.astype(str))
    for col in cols:
        if col not in frame.columns:
            frame[col] = pd.NaT if col != "tier" else None
    return frame[list(cols)]


def _reasons(
    g: np.ndarray,
    target: np.ndarray,
    new_rank: np.ndarray,
    prev_rank: np.ndarray,
    joined: np.ndarray,
    unknown_tier: np.ndarray,
    up: np.ndarray,
    downgrade: np.ndarray,
    start_grace: np.ndarray,
    below: np.ndarray,
    grace_until: pd.Series,
    grace_over: np.ndarray,
    due: np.ndarray,
    names: list[str],
    thresholds: np.ndarray,
    prev_tiers: np.ndarray,
    boundary: pd.Timestamp,
    program: Program,
) -> list[str]:
    """One sentence per member saying why they hold their tier."""
    out: list[str] = []
    window = f"{program.tier_policy.window.amount} {program.tier_policy.window.unit}"
    for i in range(len(g)):
        earned = f"{g[i]:g} growth earned in the last {window}"
        tier, prev = names[new_rank[i]], prev_tiers[i]
        reach = f"{names[target[i]]} (threshold {thresholds[target[i]]:g})"
        if joined[i] and unknown_tier[i]:
            out.append(f"the previous tier {prev!r} is not in the program; {earned} reach {reach}")
        elif joined[i]:
            out.append(f"joined: {earned} reach {reach}")
        elif up[i]:
            out.append(f"upgraded from {prev}: {earned} reach {reach}")
        elif downgrade[i]:
            how = (
                "one tier down"
                if program.tier_policy.downgrade == "one_down"
                else "to the tier it reaches"
            )
            why = "the grace period ended" if grace_over[i] else "at the review"
            out.append(
                f"downgraded from {prev} ({why}): {earned} are below its threshold "
                f"{thresholds[prev_rank[i]]:g}; moved {how}"
            )
        elif start_grace[i] or (below[i] and not grace_over[i] and pd.notna(grace_until.iloc[i])):
            until = grace_until.iloc[i].date()
            out.append(
                f"keeps {tier} in grace until {until}: {earned} are below its threshold "
                f"{thresholds[prev_rank[i]]:g}"
            )
        elif below[i] and not due[i]:
            out.append(
                f"keeps {tier} until the next review: {earned} are below its threshold "
                f"{thresholds[prev_rank[i]]:g} (reviewed since {boundary.date()})"
            )
        else:
            out.append(f"keeps {tier}: {earned} (its threshold is {thresholds[new_rank[i]]:g})")
    return out


def tier_event_id(program_id: str, user_id: str, at: datetime, tier: str) -> str:
    """The stable id of the ``tier_changed`` event of ``user_id`` reaching ``tier`` at
    ``at`` in the ledger program ``program_id``: ``tier:<user>:<instant>:<tier>`` in the
    default program, ``tier[<program>]:<user>:<instant>:<tier>`` in another."""
    stamp = pd.Timestamp(as_utc(at)).strftime("%Y%m%dT%H%M%S%fZ")
    scope = "tier" if program_id == "default" else f"tier[{program_id}]"
    return f"{scope}:{user_id}:{stamp}:{tier}"


def tier_events(changes: pd.DataFrame) -> pd.DataFrame:
    """``tier_changed`` events (:data:`TIER_EVENT_COLUMNS`) from change rows with
    ``event_id, user_id, from_tier, to_tier, direction, reason, growth_in_window,
    program_digest, changed_at`` (the columns of ``loyalty_tier_history``).

    ``properties`` holds ``from`` (null when joining), ``to``, ``direction``, ``reason``,
    ``growth_in_window`` and ``program_digest``; ``ts`` is ``changed_at``."""
    props = [
        json.dumps(
            {
                "from": None if pd.isna(r.from_tier) else r.from_tier,
                "to": r.to_tier,
                "direction": r.direction,
                "reason": r.reason,
                "growth_in_window": float(r.growth_in_window),
                "program_digest": r.program_digest,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        for r in changes.itertuples()
    ]
    return pd.DataFrame(
        {
            "event_id": changes.event_id.astype(str).to_numpy(),
            "user_id": changes.user_id.astype(str).to_numpy(),
            "event_type": "tier_changed",
            "ts": pd.to_datetime(changes.changed_at, utc=True)
            .astype("datetime64[us, UTC]")
            .to_numpy(),
            "properties": props,
        }
    )[list(TIER_EVENT_COLUMNS)]


def tier_changes(
    evaluated: pd.DataFrame,
    program: Program,
    *,
    as_of: datetime,
    program_id: str = "default",
) -> pd.DataFrame:
    """The changed rows of :func:`evaluate_tiers` as ``tier_changed`` events
    (:data:`TIER_EVENT_COLUMNS`, see :func:`tier_events`). The event id is stable
    (:func:`tier_event_id`): the same evaluation gives the same ids."""
    at = pd.Timestamp(as_utc(as_of))
    rows = evaluated[evaluated.changed]
    changes = pd.DataFrame(
        {
            "event_id": [
                tier_event_id(program_id, u, at, t)
                for u, t in zip(rows.user_id, rows.tier, strict=True)
            ],
            "user_id": rows.user_id.to_numpy(),
            "from_tier": rows.previous_tier.to_numpy(),
            "to_tier": rows.tier.to_numpy(),
            "direction": rows.direction.to_numpy(),
            "reason": rows.reason.to_numpy(),
            "growth_in_window": rows.growth_in_window.to_numpy(),
            "program_digest": program.digest,
            "changed_at": pd.array([at] * len(rows), dtype="datetime64[us, UTC]"),
        }
    )
    return tier_events(changes)
