"""The CDNOW sample loader.

Published facts are from the dataset README (``shared/datasets/README.md``) and Fader,
Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2): 2,357 customers of CDNOW's 1997 Q1 cohort,
6,919 purchase records through 1998-06-30.
"""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from liucun.core import InvalidInput
from liucun.datasets import CdnowData, datasets_dir, load_cdnow
from liucun.schema import arrow_schema

SOURCE = datasets_dir() / "cdnow" / "CDNOW_sample.txt"


@pytest.fixture(scope="module")
def cdnow() -> CdnowData:
    return load_cdnow()


def test_raw_rows_match_the_published_description(cdnow: CdnowData) -> None:
    """README: 6,919 rows, 2,357 customers, 1997-01-01 … 1998-06-30, $244,091.94."""
    raw = cdnow.raw
    assert list(raw.columns) == ["customer_id", "sample_id", "date", "cds", "value"]
    assert len(raw) == 6_919
    assert raw["customer_id"].nunique() == 2_357
    assert raw["sample_id"].nunique() == 2_357
    assert raw["date"].min() == pd.Timestamp("1997-01-01")
    assert raw["date"].max() == pd.Timestamp("1998-06-30")
    assert round(raw["value"].sum(), 2) == 244_091.94
    assert pd.api.types.is_datetime64_dtype(raw["date"])
    assert raw["cds"].dtype == "int64"
    assert raw["value"].dtype == "float64"
    assert raw.iloc[0].tolist() == ["00004", "0001", pd.Timestamp("1997-01-01"), 2, 29.33]


def test_every_customer_first_bought_in_the_first_quarter(cdnow: CdnowData) -> None:
    """The sample is the cohort whose first-ever purchase was in 1997 Q1 (README)."""
    first = cdnow.raw.groupby("customer_id")["date"].min()
    assert first.max() <= pd.Timestamp("1997-03-31")


def test_one_transaction_per_customer_day(cdnow: CdnowData) -> None:
    """README / FHL 2005: same-day rows are one transaction; 6,696 remain, spend unchanged."""
    tx = cdnow.transactions
    assert list(tx.columns) == ["customer_id", "date", "cds", "value"]
    assert len(tx) == 6_696
    assert not tx.duplicated(["customer_id", "date"]).any()
    assert round(tx["value"].sum(), 2) == 244_091.94
    assert tx["cds"].sum() == cdnow.raw["cds"].sum()


def test_events_conform_to_the_canonical_schema(cdnow: CdnowData) -> None:
    expected = [f for f in arrow_schema("events") if f.name not in {"ingested_at", "load_id"}]
    events = cdnow.events
    assert events.schema.names == [f.name for f in expected]
    assert [f.type for f in events.schema] == [f.type for f in expected]
    assert events.num_rows == 6_696
    assert len(set(events["event_id"].to_pylist())) == 6_696


def test_events_carry_the_customer_day_values(cdnow: CdnowData) -> None:
    row = cdnow.events.slice(0, 1).to_pylist()[0]
    assert row["event_id"] == row["order_id"] == "cdnow-00004-19970101"
    assert row["user_id"] == "00004"
    assert row["event_type"] == "order"
    assert row["ts"] == pd.Timestamp("1997-01-01", tz="UTC")
    assert (row["revenue"], row["currency"], row["country"], row["channel"]) == (
        29.33,
        "USD",
        "US",
        "web",
    )
    assert row["properties"] == '{"cds": 2}'
    assert row["anonymous_id"] is None and row["category"] is None
    assert round(pa.compute.sum(cdnow.events["revenue"]).as_py(), 2) == 244_091.94


def test_users_conform_to_the_canonical_schema(cdnow: CdnowData) -> None:
    expected = [f for f in arrow_schema("users") if f.name not in {"ingested_at", "load_id"}]
    users = cdnow.users
    assert users.schema.names == [f.name for f in expected]
    assert [f.type for f in users.schema] == [f.type for f in expected]
    assert users.num_rows == 2_357
    assert users["user_id"].to_pylist() == sorted(set(cdnow.raw["customer_id"]))
    assert set(users["customer_type"].to_pylist()) == {"b2c"}
    assert users.slice(0, 1).to_pylist()[0]["signup_ts"] == pd.Timestamp("1997-01-01", tz="UTC")
    assert users["birthday"].null_count == 2_357


def _copy_with(tmp_path: Path, line_no: int, replacement: str) -> Path:
    """The first 50 lines of the real file with line ``line_no`` (1-based) replaced."""
    lines = SOURCE.read_text().splitlines()[:50]
    lines[line_no - 1] = replacement
    bad = tmp_path / "CDNOW_sample.txt"
    bad.write_text("\n".join(lines) + "\n")
    return bad


@pytest.mark.parametrize(
    ("line_no", "replacement", "match"),
    [
        (7, " 00021 0002 19970101  3", r"line 7: expected 5 .*found 4"),
        (12, " 00021 0002 19970101 3 63.34 x", r"line 12: expected 5 .*found 6"),
        (9, " 00021 0002 19971340  3   63.34", r"line 9, field 'date': '19971340' is not a"),
        (30, " 00021 0002 19970101  3   -1.00", r"line 30, field 'value': '-1.00'"),
        (3, " 00021 0002 19970101  three 1.00", r"line 3, field 'cds': 'three'"),
        (5, " C0021 0002 19970101  3   1.00", r"line 5, field 'customer_id'"),
    ],
)
def test_malformed_line_is_named(
    tmp_path: Path, line_no: int, replacement: str, match: str
) -> None:
    bad = _copy_with(tmp_path, line_no, replacement)
    with pytest.raises(InvalidInput, match=match) as info:
        load_cdnow(bad)
    assert str(bad) in str(info.value)


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    """Line numbers stay those of the file when blank lines precede the bad one."""
    lines = ["", *SOURCE.read_text().splitlines()[:10], "   ", " 1 2 19970101 1 nan?"]
    bad = tmp_path / "CDNOW_sample.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"line 13, field 'value'"):
        load_cdnow(bad)
    bad.write_text("\n".join(lines[:-1]) + "\n")
    assert len(load_cdnow(bad).raw) == 10


def test_via_env_var_directory_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cdnow").mkdir()
    _copy_with(tmp_path / "cdnow", 2, " 00004 0001 1997-01-18  2   29.73")
    monkeypatch.setenv("LIUCUN_DATASETS_DIR", str(tmp_path))
    with pytest.raises(InvalidInput, match=r"cdnow.CDNOW_sample\.txt: line 2, field 'date'"):
        load_cdnow()


def test_non_text_and_empty_files_raise(tmp_path: Path) -> None:
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b" 00004 0001 19970101 2 29.33\n\xff\xfe\n")
    with pytest.raises(InvalidInput, match=r"binary\.txt, line 2: not UTF-8"):
        load_cdnow(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InvalidInput, match=r"empty\.txt: no data lines"):
        load_cdnow(empty)
