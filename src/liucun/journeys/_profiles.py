"""The per-customer profile the engine reads: audience and branch filters, local time,
locale, the customer's economics.

One row per customer with the segment profile (:func:`liucun.segments.customer_profiles`:
stage, RFM, the user's attributes), the user's ``timezone`` as resolved (the customer's
own, else the main zone of their ``country``, else the workspace's
``reporting_timezone``; see :func:`._local_time.customer_zone`), ``birthday`` and
``signup_ts``, the latest churn score (``churn_risk``, ``p_alive``, ``clv_365d``,
``expected_orders_365d``), the customer's average order value (``aov``), the loyalty
``tier`` in force (a temporary upgrade counts) and the journey ``tags`` set on them
(comma-separated, ``tag_<name>`` columns as well). Profiles are built in batch for a set
of user ids; filters in the segment filter language run over the batch
(:func:`matching`), never row by row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from sqlalchemy import select

from liucun.journeys._local_time import customer_zone
from liucun.segments import customer_profiles, parse_filter
from liucun.state import CustomerTag, LoyaltyMemberTier

#: Columns every profile batch has (besides the segment profile's own).
PROFILE_EXTRA = (
    "timezone",
    "birthday",
    "signup_ts",
    "churn_risk",
    "p_alive",
    "clv_365d",
    "expected_orders_365d",
    "aov",
    "tier",
    "tags",
)
_IDS_INLINE = 20_000
_TAG_NAME = re.compile(r"[^A-Za-z0-9_]")


def _private_engine() -> Any:
    """An in-memory DuckDB connection for filters over a materialized batch."""
    from liucun.warehouse import new_engine

    return new_engine()


#: Profile columns that need no lifecycle or RFM computation.
BASIC_FIELDS = (
    "user_id",
    "customer_type",
    "country",
    "region",
    "language",
    "acquisition_channel",
    "company_size",
    "industry",
    "account_id",
)


def profile_expr(
    ws: Any, as_of: datetime, *, full: bool = True, only: Sequence[str] | None = None
) -> ir.Table:
    """The warehouse part of the profile of every customer as of ``as_of`` (an Ibis
    expression; the state part is added by :func:`profiles`). ``full=False`` leaves out
    the lifecycle stage and RFM (the user's attributes, scores and order value only);
    ``only`` (basic profiles) restricts the reads to those customers from the start."""
    events = ws.events()
    users = ws.customers()
    sc = ws.table("scores")
    if only is not None and not full:
        # per-customer figures only: filtering first is the same answer, and a batch of
        # a few customers no longer aggregates the whole history
        events = events.filter(events.user_id.isin(list(only)))
        users = users.filter(users.user_id.isin(list(only)))
        sc = sc.filter(sc.user_id.isin(list(only)))
    if full:
        base = customer_profiles(events, users, as_of=as_of)
    else:
        base = users.select(*[c for c in BASIC_FIELDS if c in users.columns])
    extra = users.select(
        _u="user_id",
        _tz=users.timezone,
        birthday=users.birthday,
        signup_ts=users.signup_ts,
    )
    joined = base.left_join(extra, base.user_id == extra._u)
    joined = joined.select(*base.columns, "_tz", "birthday", "signup_ts")
    bought = events.filter(
        (events.event_type == "order") & events.user_id.notnull() & (events.ts < as_of)
    )
    aov = bought.group_by(_a="user_id").aggregate(aov=bought.revenue.mean())
    joined = joined.left_join(aov, joined.user_id == aov._a).drop("_a")
    # the latest score of any saved model (`liucun train` saves one named retention)
    sc = sc.filter(sc.as_of <= as_of)
    order = [ibis.desc("as_of"), ibis.desc("scored_at")]
    ranked = sc.mutate(_n=ibis.row_number().over(group_by="user_id", order_by=order))
    latest = ranked.filter(ranked._n == 0).select(
        "churn_risk", "p_alive", "clv_365d", "expected_orders_365d", _s="user_id"
    )
    joined = joined.left_join(latest, joined.user_id == latest._s).drop("_s")
    return joined


def needs_full(texts: Iterable[str | None]) -> bool:
    """Whether filters ``texts`` ask about fields only the full profile has (stage, RFM)."""
    from liucun.segments._filter import _IDENT, _KEYWORDS

    basic = set(BASIC_FIELDS) | set(PROFILE_EXTRA)
    for text in texts:
        if not text:
            continue
        stripped = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", " ", text)
        for m in _IDENT.finditer(stripped):
            word = m.group(0)
            if word.lower() in _KEYWORDS or word in basic or word.startswith("tag_"):
                continue
            return True
    return False


def profiles(
    ws: Any, as_of: datetime, user_ids: Iterable[str] | None = None, *, full: bool = True
) -> pa.Table:
    """Profiles of ``user_ids`` (every customer when None) as of ``as_of``, one row each,
    with :data:`PROFILE_EXTRA`. Customers the warehouse does not know get a row with
    nulls (and the default time zone)."""
    wanted: list[str] | None = None
    if user_ids is not None:
        wanted = sorted({str(u) for u in user_ids})
    small = wanted is not None and len(wanted) <= _IDS_INLINE
    expr = profile_expr(ws, as_of, full=full, only=wanted if small else None)
    if wanted is not None:
        if not wanted:
            return _empty(expr)
        if small:
            expr = expr.filter(expr.user_id.isin(wanted))
    table = expr.to_pyarrow()
    if wanted is not None:
        keep = set(wanted)
        known = table.column("user_id").to_pylist()
        if len(wanted) > _IDS_INLINE:
            import pyarrow.compute as pc

            table = table.filter(pc.is_in(table.column("user_id"), pa.array(wanted)))
            known = table.column("user_id").to_pylist()
        missing = sorted(keep - set(known))
        if missing:
            table = pa.concat_tables(
                [table, _blank_rows(table.schema, missing)], promote_options="default"
            )
    return _finish(ws, table)


def _empty(expr: ir.Table) -> pa.Table:
    schema = expr.schema().to_pyarrow()
    table = schema.empty_table()
    return _add_state_columns(table, {}, {})


def _blank_rows(schema: pa.Schema, ids: Sequence[str]) -> pa.Table:
    cols = {
        f.name: pa.array(ids if f.name == "user_id" else [None] * len(ids), f.type) for f in schema
    }
    return pa.table(cols, schema=schema)


def _finish(ws: Any, table: pa.Table) -> pa.Table:
    default = ws.settings.reporting_timezone
    tz_in = table.column("_tz").to_pylist() if "_tz" in table.column_names else []
    country = (
        table.column("country").to_pylist()
        if "country" in table.column_names
        else [None] * table.num_rows
    )
    memo: dict[tuple[Any, Any], str] = {}
    zones = []
    for tz, c in zip(tz_in, country, strict=True):
        key = (tz, c)
        if key not in memo:
            memo[key] = customer_zone(tz, c, default)
        zones.append(memo[key])
    if "_tz" in table.column_names:
        table = table.drop_columns(["_tz"])
    table = table.append_column("timezone", pa.array(zones, pa.string()))
    ids = table.column("user_id").to_pylist()
    tiers, tags = _state_columns(ws, ids)
    return _add_state_columns(table, tiers, tags)


def _state_columns(
    ws: Any, ids: Sequence[str]
) -> tuple[dict[str, str], dict[str, dict[str, str | None]]]:
    tiers: dict[str, str] = {}
    tags: dict[str, dict[str, str | None]] = {}
    if not ids:
        return tiers, tags
    wanted = set(ids)
    with ws.state.read() as s:
        for user, tier, boost, until, program in s.execute(
            select(
                LoyaltyMemberTier.user_id,
                LoyaltyMemberTier.tier,
                LoyaltyMemberTier.boost_tier,
                LoyaltyMemberTier.boost_until,
                LoyaltyMemberTier.program,
            )
        ):
            if user in wanted and (program == "default" or user not in tiers):
                now = ws.clock.now()
                tiers[user] = boost if boost and until is not None and until > now else tier
        for user, tag, value in s.execute(
            select(CustomerTag.user_id, CustomerTag.tag, CustomerTag.value)
        ):
            if user in wanted:
                tags.setdefault(user, {})[tag] = value
    return tiers, tags


def _add_state_columns(
    table: pa.Table, tiers: dict[str, str], tags: dict[str, dict[str, str | None]]
) -> pa.Table:
    ids = table.column("user_id").to_pylist()
    if "timezone" not in table.column_names:
        table = table.append_column("timezone", pa.array([None] * len(ids), pa.string()))
    if "_tz" in table.column_names:
        table = table.drop_columns(["_tz"])
    table = table.append_column("tier", pa.array([tiers.get(u) for u in ids], pa.string()))
    table = table.append_column(
        "tags",
        pa.array([",".join(sorted(tags[u])) if u in tags else None for u in ids], pa.string()),
    )
    names = sorted({t for d in tags.values() for t in d})
    for name in names:
        column = "tag_" + _TAG_NAME.sub("_", name)
        if column in table.column_names:
            continue
        values = [
            (tags.get(u, {}).get(name) or "true") if name in tags.get(u, {}) else None for u in ids
        ]
        table = table.append_column(column, pa.array(values, pa.string()))
    return table


def matching(profile: pa.Table, text: str | None) -> set[str]:
    """The user ids of ``profile`` rows that ``text`` (the segment filter language)
    selects; every row when ``text`` is empty. One query over the whole batch."""
    ids = profile.column("user_id").to_pylist()
    if not text or not text.strip() or not ids:
        return set(ids)
    t = ibis.memtable(_filterable(profile))
    expr = t.filter(parse_filter(text, t)).select("user_id")
    con = _private_engine()
    try:
        return {r for r in con.to_pyarrow(expr).column("user_id").to_pylist()}
    finally:
        con.disconnect()


def first_match(profile: pa.Table, filters: Sequence[str]) -> dict[str, int]:
    """For each user of ``profile``, the index of the first of ``filters`` it matches
    (users matching none are absent); one query per filter over the whole batch."""
    out: dict[str, int] = {}
    remaining = set(profile.column("user_id").to_pylist())
    for i, text in enumerate(filters):
        if not remaining:
            break
        hit = matching(profile, text) & remaining
        for u in hit:
            out[u] = i
        remaining -= hit
    return out


def _filterable(profile: pa.Table) -> pa.Table:
    """``profile`` with types the filter language can compare (dictionary and list
    columns as plain text)."""
    cols = {}
    for f in profile.schema:
        col = profile.column(f.name)
        if pa.types.is_dictionary(f.type):
            col = col.cast(pa.string())
        elif pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            col = pa.array(
                [", ".join(map(str, v)) if v is not None else None for v in col.to_pylist()],
                pa.string(),
            )
        cols[f.name] = col
    return pa.table(cols)


def rows_by_user(profile: pa.Table) -> dict[str, dict[str, Any]]:
    """The profile as ``{user_id: {column: value}}``."""
    return {r["user_id"]: r for r in profile.to_pylist()}
