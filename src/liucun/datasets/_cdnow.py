"""The CDNOW sample: loading, validating and shaping it as canonical tables.

The file (Fader & Hardie's 1/10th systematic sample of CDNOW's 1997 Q1 cohort) is
whitespace-separated with no header and five columns: master customer id, sample
customer id, date ``YYYYMMDD``, number of CDs and dollar value. The whole file is split
and checked column-wise; the first bad line of each kind is reported with its number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from liucun.core import InvalidInput, midnight
from liucun.datasets._paths import resolve_file
from liucun.schema import arrow_schema

CDNOW_FILE = ("cdnow", "CDNOW_sample.txt")
_FIELDS = ("customer_id", "sample_id", "date", "cds", "value")
_SYSTEM_COLUMNS = frozenset({"ingested_at", "load_id"})


@dataclass(frozen=True, eq=False)
class CdnowData:
    """The CDNOW sample in the shapes liucun uses.

    Attributes
    ----------
    raw
        One row per line of the file: ``customer_id`` (the master id, as text),
        ``sample_id`` (text), ``date`` (datetime64), ``cds`` (int64), ``value`` (float64).
    transactions
        One row per customer-day, the literature's unit of a transaction: ``customer_id``,
        ``date``, ``cds`` and ``value`` summed over that day's rows (value rounded to cents).
    events
        Canonical ``events`` rows (without ``ingested_at`` and ``load_id``): one ``order``
        per customer-day at 00:00 UTC, ``revenue`` in USD, ``properties`` ``{"cds": n}``.
    users
        Canonical ``users`` rows (without ``ingested_at`` and ``load_id``): one per
        customer, ``signup_ts`` is the first purchase day, ``customer_type`` ``b2c``.
    source
        The file read.
    """

    raw: pd.DataFrame
    transactions: pd.DataFrame
    events: pa.Table
    users: pa.Table
    source: Path


def load_cdnow(path: str | os.PathLike[str] | None = None) -> CdnowData:
    """Load the CDNOW sample.

    Parameters
    ----------
    path
        The ``CDNOW_sample.txt`` file; by default ``datasets_dir()/cdnow/CDNOW_sample.txt``.

    Returns
    -------
    CdnowData
        The raw rows, the customer-day transactions and the canonical tables.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable, or a line is malformed (the message names
        the file and the line).

    Examples
    --------
    >>> data = load_cdnow()
    >>> len(data.raw), len(data.transactions), data.users.num_rows
    (6919, 6696, 2357)
    """
    file = resolve_file(path, *CDNOW_FILE)
    raw = _parse(file)
    transactions = (
        raw.groupby(["customer_id", "date"], as_index=False, sort=True)
        .agg(cds=("cds", "sum"), value=("value", "sum"))
        .astype({"cds": "int64"})
    )
    transactions["value"] = transactions["value"].round(2)
    return CdnowData(
        raw=raw,
        transactions=transactions,
        events=_events(transactions),
        users=_users(transactions),
        source=file,
    )


def _parse(file: Path) -> pd.DataFrame:
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(f"{file}, line {line}: not UTF-8 text ({exc.reason})") from None
    lines = pd.Series(text.splitlines(), dtype=str)
    n_fields = lines.str.split().str.len()
    blank = n_fields == 0
    wrong = ~blank & (n_fields != len(_FIELDS))
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise InvalidInput(
            f"{file}, line {i + 1}: expected 5 whitespace-separated fields (master id, "
            f"sample id, YYYYMMDD date, CDs, dollar value), found {int(n_fields.iloc[i])}: "
            f"{lines.iloc[i].strip()!r}"
        )
    if blank.all():
        raise InvalidInput(f"{file}: no data lines; is this the CDNOW sample?")
    body = lines[~blank]
    cols = body.str.split(expand=True)
    cols.columns = list(_FIELDS)
    line_no = body.index.to_numpy() + 1

    date = pd.to_datetime(cols["date"], format="%Y%m%d", errors="coerce")
    value = pd.to_numeric(cols["value"], errors="coerce")
    checks = (
        ("customer_id", ~cols["customer_id"].str.fullmatch(r"\d+"), "is not a numeric id"),
        ("sample_id", ~cols["sample_id"].str.fullmatch(r"\d+"), "is not a numeric id"),
        ("date", date.isna() | ~cols["date"].str.fullmatch(r"\d{8}"), "is not a YYYYMMDD date"),
        ("cds", ~cols["cds"].str.fullmatch(r"\d+"), "is not a whole number ≥ 0"),
        ("value", ~(np.isfinite(value) & (value >= 0)), "is not an amount ≥ 0"),
    )
    problems = []
    for field, bad, what in checks:
        mask = bad.to_numpy(dtype=bool)
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            problems.append(
                f"line {line_no[i]}, field {field!r}: {cols[field].iloc[i]!r} {what}"
                + (f" ({int(mask.sum())} lines like this)" if mask.sum() > 1 else "")
            )
    if problems:
        raise InvalidInput(f"{file}: " + "; ".join(problems))

    return pd.DataFrame(
        {
            "customer_id": cols["customer_id"].to_numpy(dtype=object),
            "sample_id": cols["sample_id"].to_numpy(dtype=object),
            "date": date.to_numpy(),
            "cds": cols["cds"].astype("int64").to_numpy(),
            "value": value.astype("float64").to_numpy(),
        }
    ).astype({"customer_id": str, "sample_id": str})


def _table_schema(table: str) -> pa.Schema:
    full = arrow_schema(table)
    return pa.schema([f for f in full if f.name not in _SYSTEM_COLUMNS])


def _day_starts(days: pd.Series, field: pa.Field) -> pa.Array:
    """Each calendar day as the aware UTC instant that starts it (:func:`liucun.core.midnight`
    of each distinct day, a few hundred, then a lookup)."""
    starts = {day: midnight(day) for day in days.unique()}
    return pa.array(days.map(starts), type=field.type)


def _events(transactions: pd.DataFrame) -> pa.Table:
    schema = _table_schema("events")
    n = len(transactions)
    event_id = (
        "cdnow-" + transactions["customer_id"] + "-" + transactions["date"].dt.strftime("%Y%m%d")
    )
    given = {
        "event_id": pa.array(event_id, type=pa.string()),
        "user_id": pa.array(transactions["customer_id"], type=pa.string()),
        "event_type": pa.array(["order"] * n, type=pa.string()),
        "ts": _day_starts(transactions["date"], schema.field("ts")),
        "channel": pa.array(["web"] * n, type=pa.string()),
        "country": pa.array(["US"] * n, type=pa.string()),
        "revenue": pa.array(transactions["value"], type=pa.float64()),
        "currency": pa.array(["USD"] * n, type=pa.string()),
        "order_id": pa.array(event_id, type=pa.string()),
        "properties": pa.array(
            '{"cds": ' + transactions["cds"].astype(str) + "}", type=pa.string()
        ),
    }
    return _assemble(schema, given, n)


def _users(transactions: pd.DataFrame) -> pa.Table:
    schema = _table_schema("users")
    first = transactions.groupby("customer_id", sort=True)["date"].min()
    n = len(first)
    given = {
        "user_id": pa.array(first.index.to_numpy(dtype=object), type=pa.string()),
        "signup_ts": _day_starts(first.reset_index(drop=True), schema.field("signup_ts")),
        "customer_type": pa.array(["b2c"] * n, type=pa.string()),
        "country": pa.array(["US"] * n, type=pa.string()),
    }
    return _assemble(schema, given, n)


def _assemble(schema: pa.Schema, given: dict[str, pa.Array], n: int) -> pa.Table:
    arrays = [given.get(f.name, pa.nulls(n, type=f.type)) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
