"""Contact addresses encrypted at rest, on SQLite and PostgreSQL: the address bytes never
reach the database file, they decrypt with the workspace's key only, a keyed hash finds
them, and CSV / Parquet imports store what is usable and name what is not."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core import ConfigError, InvalidInput
from liucun.core._hashing import keyed_hash
from liucun.journeys import contact_for, find_by_address, import_contacts, set_contact
from liucun.journeys._contacts import CONTACT_KEY_ENV, decrypt, encrypt
from liucun.state import Contact
from liucun.workspace import Workspace, init_workspace, open_workspace


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Workspace:
    w = init_workspace(tmp_path / "ws", state_url=state_url)
    yield w
    w.close()


def test_addresses_are_encrypted_at_rest_and_decrypt(ws: Workspace, tmp_path: Path) -> None:
    set_contact(ws, "u1", "email", "li.wei@example.test")
    set_contact(ws, "u1", "sms", "+86 138 0013 8000")
    assert contact_for(ws, "u1", "email") == "li.wei@example.test"
    assert contact_for(ws, "u1", "sms") == "+86 138 0013 8000"
    assert contact_for(ws, "u1", "push") is None
    assert contact_for(ws, "u2", "email") is None
    with ws.state.read() as s:
        rows = s.scalars(select(Contact)).all()
    assert len(rows) == 2
    for row in rows:
        assert row.address_encrypted.startswith("v1:")
        assert "example.test" not in row.address_encrypted and "138" not in row.address_encrypted
    # replacing an address keeps one row per customer and channel
    set_contact(ws, "u1", "email", "new@example.test")
    assert contact_for(ws, "u1", "email") == "new@example.test"
    if ws.state.backend == "sqlite":
        ws.close()  # checkpoints the WAL into the file
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))
        assert b"SQLite format 3" in raw and b"v1:" in raw  # the file, with the ciphertexts
        for clear in (b"li.wei@example.test", b"new@example.test", b"13800138000", b"0013 8000"):
            assert clear not in raw


def test_the_keyed_hash_finds_an_address_as_ingestion_would_hash_it(ws: Workspace) -> None:
    set_contact(ws, "u1", "email", "Li.Wei@Example.test")
    set_contact(ws, "u2", "sms", "+86 138-0013-8000")
    assert find_by_address(ws, "email", "  li.wei@EXAMPLE.test ") == ["u1"]
    assert find_by_address(ws, "sms", "+8613800138000") == ["u2"]
    assert find_by_address(ws, "email", "other@example.test") == []
    with ws.state.read() as s:
        digest = s.scalar(select(Contact.address_hash).where(Contact.user_id == "u1"))
    assert digest == keyed_hash(ws.hash_key, "li.wei@example.test")


def test_a_ciphertext_moved_to_another_row_or_read_with_another_key_does_not_decrypt(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = encrypt(ws, "u1", "email", "a@example.test")
    assert decrypt(ws, "u1", "email", token) == "a@example.test"
    with pytest.raises(ConfigError, match="does not decrypt"):
        decrypt(ws, "u2", "email", token)
    monkeypatch.setenv(CONTACT_KEY_ENV, "ab" * 32)
    with open_workspace(ws.path) as other:
        with pytest.raises(ConfigError, match=f"restore the secret key \\(or {CONTACT_KEY_ENV}"):
            decrypt(other, "u1", "email", token)
        # a key of its own works for what it encrypted
        assert decrypt(other, "u1", "email", encrypt(other, "u1", "email", "b@x.test")) == (
            "b@x.test"
        )
    monkeypatch.setenv(CONTACT_KEY_ENV, "not hex")
    with open_workspace(ws.path) as bad, pytest.raises(ConfigError, match="32 hex digits"):
        encrypt(bad, "u1", "email", "a@example.test")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=st.text(min_size=1, max_size=80), user=st.text(min_size=1, max_size=20))
def test_encryption_round_trips_any_text(workspace: Workspace, address: str, user: str) -> None:
    token = encrypt(workspace, user, "push", address)
    assert decrypt(workspace, user, "push", token) == address
    assert encrypt(workspace, user, "push", address) != token  # a fresh nonce each time


def test_bad_addresses_are_refused_with_a_sentence(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="the email address given for u1 is not an e-mail"):
        set_contact(ws, "u1", "email", "not-an-address")
    with pytest.raises(ConfigError, match="'webhook' is not a channel with addresses"):
        set_contact(ws, "u1", "webhook", "x")


def test_import_csv_and_parquet(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text(
        "user_id,email,phone,wechat_openid,note\n"
        "u1,Li.Wei@example.test,+86 138 0013 8000,oX1,vip\n"
        "u2,broken-address,,,\n"
        "u3,,0044 20 7946 0000,,\n"
        ",orphan@example.test,,,\n",
        encoding="utf-8",
    )
    result = import_contacts(ws, csv)
    assert result.rows == 4
    assert result.stored == {"email": 1, "sms": 2, "wechat": 1}
    assert [(r.line, r.column) for r in result.rejected] == [(3, "email"), (5, "user_id")]
    assert "orphan" not in json.dumps(result.to_dict())  # values are never echoed
    assert contact_for(ws, "u3", "sms") == "0044 20 7946 0000"  # leading zeros kept
    assert contact_for(ws, "u1", "wechat") == "oX1"
    parquet = tmp_path / "more.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["u4", "u1"],
                "push_token": ["tok-4", None],
                "whatsapp": [None, "+4915112345678"],
            }
        ),
        parquet,
    )
    result = import_contacts(ws, parquet)
    assert result.stored == {"push": 1, "whatsapp": 1}
    assert contact_for(ws, "u4", "push") == "tok-4"
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,mail\nu1,a@b.test\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="needs a user_id column and at least one of email"):
        import_contacts(ws, bad)


def test_contacts_import_command(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("user_id,email\nu1,a@example.test\nu2,nope\n", encoding="utf-8")
    path = str(ws.path)
    ws.close()
    res = CliRunner().invoke(app, ["-w", path, "contacts", "import", str(csv), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["rows"], data["stored_total"]) == (2, 1)
    assert data["rejected"] == [
        {"line": 3, "column": "email", "reason": "is not an e-mail address (name@domain)"}
    ]
    res = CliRunner().invoke(app, ["-w", path, "contacts", "import", str(tmp_path / "no.csv")])
    assert res.exit_code == 1
    assert "does not exist" in res.stderr
