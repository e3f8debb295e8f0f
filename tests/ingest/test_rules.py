"""Each validation rule, with a row it accepts and a row it rejects (ARCHITECTURE §6)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pandas as pd
import pytest

from liucun.ingest import IngestOptions, ingest_events, ingest_users

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEADER = "user_id,anonymous_id,event_type,ts,revenue,currency,country,properties\n"
GOOD = "u1,,order,2026-05-01T10:00:00Z,10.5,CNY,CN,\n"

# (rule code, a row the rule accepts, a row it rejects, a phrase the message must contain)
CASES = [
    ("missing_id", "u1,,view,2026-05-01,,,,", ",,view,2026-05-01,,,,", "needs one of them"),
    ("missing_id", ",anon-1,view,2026-05-01,,,,", " , ,view,2026-05-01,,,,", "anonymous_id"),
    (
        "unknown_event_type",
        "u1,,Add_To_Cart,2026-05-01,,,,",
        "u1,,teleport,2026-05-01,,,,",
        "custom_event_types",
    ),
    (
        "bad_timestamp",
        "u1,,view,2026-05-01 23:59:59,,,,",
        "u1,,view,2026-13-01,,,,",
        "'2026-13-01' is not a date/time",
    ),
    ("bad_timestamp", "u1,,view,1714557600,,,,", "u1,,view,yesterday,,,,", "ISO 8601"),
    ("missing_timestamp", "u1,,view,2026-05-01,,,,", "u1,,view,,,,,", "needs a time"),
    (
        "future_timestamp",
        "u1,,view,2026-06-01T23:00:00Z,,,,",
        "u1,,view,2026-06-03,,,,",
        "in the future",
    ),
    ("ancient_timestamp", "u1,,view,1997-01-01,,,,", "u1,,view,0,,,,", "before 1971"),
    ("ancient_timestamp", "u1,,view,19970101,,,,", "u1,,view,1970-01-01,,,,", "wrong unit"),
    (
        "bad_revenue",
        "u1,,order,2026-05-01,0,USD,,",
        "u1,,order,2026-05-01,12;50,USD,,",
        "not a number",
    ),
    (
        "bad_revenue",
        "u1,,order,2026-05-01,1e3,USD,,",
        "u1,,order,2026-05-01,NaN,USD,,",
        "not a finite number",
    ),
    (
        "negative_revenue",
        "u1,,refund,2026-05-01,3,USD,,",
        "u1,,refund,2026-05-01,-3,USD,,",
        "positive numbers",
    ),
    (
        "missing_revenue",
        "u1,,view,2026-05-01,,,,",
        "u1,,order,2026-05-01,,USD,,",
        "needs its amount",
    ),
    ("bad_currency", "u1,,order,2026-05-01,1,eur,,", "u1,,order,2026-05-01,1,EURO,,", "ISO 4217"),
    ("bad_currency", "u1,,order,2026-05-01,1,JPY,,", "u1,,order,2026-05-01,1,XYZ,,", "ISO 4217"),
    (
        "missing_currency",
        "u1,,view,2026-05-01,,,,",
        "u1,,order,2026-05-01,5,,,",
        "default currency (ingest.currency)",
    ),
    ("bad_country", "u1,,view,2026-05-01,,,de,", "u1,,view,2026-05-01,,,Germany,", "ISO 3166-1"),
    (
        "bad_json",
        'u1,,view,2026-05-01,,,,"{""a"": 1}"',
        "u1,,view,2026-05-01,,,,[1 2",
        "not a JSON object",
    ),
]


def _load(workspace, write, rows: list[str], **opts):  # type: ignore[no-untyped-def]
    path = write("events.csv", HEADER + "\n".join(rows) + "\n")
    return ingest_events(workspace.warehouse, [path], IngestOptions(now=NOW, **opts))


@pytest.mark.parametrize(("code", "accepted", "rejected", "phrase"), CASES)
def test_rule_accepts_and_rejects(workspace, write, code, accepted, rejected, phrase) -> None:  # type: ignore[no-untyped-def]
    result = _load(workspace, write, [accepted, rejected])
    assert result.rows_read == 2
    assert result.accepted == 1, f"the valid row for {code} was not accepted"
    assert result.quarantined == 1
    assert code in result.by_reason
    q = workspace.warehouse.table("quarantine").to_pandas()
    assert len(q) == 1
    (row,) = q.itertuples()
    assert row.line == 3  # header is line 1, the rejected row is the second data row
    assert code in list(row.reason_codes)
    message = " ".join(row.reasons)
    assert phrase in message
    assert message.startswith("line 3, field ")
    assert " --" not in message, "a stored reason names a CLI flag"  # library messages never do


def test_every_reason_of_a_row_is_recorded(workspace, write) -> None:  # type: ignore[no-untyped-def]
    result = _load(workspace, write, [GOOD.strip(), "u1,,order,2026-13-45,-5,XYZ,Germany,"])
    q = workspace.warehouse.table("quarantine").to_pandas()
    assert sorted(q.reason_codes[0]) == sorted(
        ["bad_timestamp", "negative_revenue", "bad_currency", "bad_country"]
    )
    assert len(q.reasons[0]) == 4
    assert result.by_reason == {
        "bad_country": 1,
        "bad_currency": 1,
        "bad_timestamp": 1,
        "negative_revenue": 1,
    }


def test_raw_payload_is_the_row_as_read(workspace, write) -> None:  # type: ignore[no-untyped-def]
    _load(workspace, write, [GOOD.strip(), "u9,,order,not-a-date,7,CNY,CN,"])
    raw = workspace.warehouse.table("quarantine").to_pandas().raw[0]
    assert '"user_id":"u9"' in raw
    assert '"ts":"not-a-date"' in raw
    assert '"revenue":"7"' in raw


def test_custom_event_types_are_accepted_when_configured(workspace, write) -> None:  # type: ignore[no-untyped-def]
    result = _load(
        workspace,
        write,
        ["u1,,livestream_watch,2026-05-01,,,,"],
        custom_event_types=("livestream_watch",),
    )
    assert (result.accepted, result.quarantined) == (1, 0)


def test_future_tolerance_is_configurable(workspace, write) -> None:  # type: ignore[no-untyped-def]
    result = _load(workspace, write, ["u1,,view,2026-06-03,,,,"], future_tolerance_hours=72)
    assert (result.accepted, result.quarantined) == (1, 0)


def test_values_are_normalized_and_parsed(workspace, write) -> None:  # type: ignore[no-untyped-def]
    _load(workspace, write, [" u1 ,,ORDER,2026-05-01T10:00:00+08:00, 10.50 ,usd,cn,"])
    ev = workspace.warehouse.table("events").to_pandas()
    row = ev.iloc[0]
    assert row.user_id == "u1"
    assert row.event_type == "order"
    assert row.ts == pd.Timestamp("2026-05-01T02:00:00Z")
    assert row.revenue == pytest.approx(10.5)
    assert (row.currency, row.country) == ("USD", "CN")


@pytest.mark.parametrize(
    ("value", "fmt", "zone", "expected"),
    [
        ("2026-05-01 08:00:00", None, "Asia/Shanghai", "2026-05-01T00:00:00Z"),
        ("2026-05-01T08:00:00Z", None, "Asia/Shanghai", "2026-05-01T08:00:00Z"),
        ("2026-05-01T08:00:00-05:00", None, "UTC", "2026-05-01T13:00:00Z"),
        ("1714557600", None, "UTC", "2024-05-01T10:00:00Z"),
        ("1714557600123", None, "UTC", "2024-05-01T10:00:00.123Z"),
        ("01/05/2026 08:00", "%d/%m/%Y %H:%M", "Europe/Berlin", "2026-05-01T06:00:00Z"),
        ("2026-03-29", None, "Europe/Berlin", "2026-03-28T23:00:00Z"),
    ],
)
def test_timestamps_are_stored_in_utc(workspace, write, value, fmt, zone, expected) -> None:  # type: ignore[no-untyped-def]
    _load(workspace, write, [f"u1,,view,{value},,,,"], timestamp_format=fmt, source_timezone=zone)
    ts = workspace.warehouse.table("events").to_pandas().ts[0]
    assert ts == pd.Timestamp(expected)


def test_unknown_columns_are_kept_in_properties(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "o.csv",
        "user_id,event_type,ts,revenue,currency,coupon,properties\n"
        'u1,order,2026-05-01,5,CNY,SPRING,"{""device"": ""ios""}"\n',
    )
    ingest_events(workspace.warehouse, [path], IngestOptions(now=NOW))
    props = workspace.warehouse.table("events").to_pandas().properties[0]
    assert '"coupon":"SPRING"' in props.replace(" ", "")
    assert '"device":"ios"' in props.replace(" ", "")


def test_user_rules(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "users.csv",
        "user_id,customer_type,timezone,acquisition_cost,birthday,country,email,tier\n"
        "u1,B2C,Asia/Shanghai,12.5,1990-02-03,cn,A@x.com ,gold\n"
        "u2,b2x,Mars/Olympus,-1,1990-02-31,China,,\n"
        ",b2c,,,,,,\n",
    )
    opts = IngestOptions(now=NOW, hash_key=workspace.hash_key)
    result = ingest_users(workspace.warehouse, [path], opts)
    assert (result.rows_read, result.accepted, result.quarantined) == (3, 1, 2)
    assert result.by_reason == {
        "bad_cost": 1,
        "bad_country": 1,
        "bad_customer_type": 1,
        "bad_date": 1,
        "bad_timezone": 1,
        "missing_id": 1,
    }
    users = workspace.warehouse.table("users").to_pandas()
    row = users.iloc[0]
    assert (row.customer_type, row.country, row.timezone) == ("b2c", "CN", "Asia/Shanghai")
    assert '"tier":"gold"' in row.attributes
    assert "A@x.com" not in row.attributes  # raw e-mail is never stored
    ids = workspace.warehouse.table("identities").to_pandas()
    assert set(ids.alias_type) == {"user_id", "email_hash"}
    # the keyed hash of the trimmed, lower-cased address; never the unkeyed SHA-256
    assert workspace.keyed_hash("a@x.com") in set(ids["alias"])
    assert hashlib.sha256(b"a@x.com").hexdigest() not in set(ids["alias"])
