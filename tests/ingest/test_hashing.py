"""The engine's keyed hash is HMAC-SHA-256, bit for bit (RFC 2104; Python's ``hmac``)."""

from __future__ import annotations

import hashlib
import hmac

import ibis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core._hashing import keyed_hash
from liucun.warehouse import hmac_sha256, new_engine

# RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?"
RFC_4231_CASE_2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    con = new_engine()
    yield con
    con.disconnect()


def _engine_hashes(con, values: list[str | None], key: bytes) -> list[str | None]:  # type: ignore[no-untyped-def]
    t = ibis.memtable({"v": values}, schema={"v": "string"})
    return con.to_pyarrow(t.select(h=hmac_sha256(t.v, key))).column("h").to_pylist()


def test_published_vector(engine) -> None:  # type: ignore[no-untyped-def]
    assert _engine_hashes(engine, ["what do ya want for nothing?"], b"Jefe") == [RFC_4231_CASE_2]


def test_null_stays_null_and_empty_is_hashed(engine) -> None:  # type: ignore[no-untyped-def]
    key = b"k" * 32
    assert _engine_hashes(engine, [None, ""], key) == [None, keyed_hash(key, "")]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(st.text(max_size=80), min_size=1, max_size=8),
    key=st.binary(min_size=1, max_size=130),  # shorter, equal to and longer than a block
)
def test_engine_hash_equals_python_hmac(engine, values: list[str], key: bytes) -> None:  # type: ignore[no-untyped-def]
    expected = [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]
    assert _engine_hashes(engine, values, key) == expected
    assert [keyed_hash(key, v) for v in values] == expected
