"""Contact data is never stored in clear (issue 9, item 5; docs/data-model.md "Contact data").

E-mail addresses and phone numbers go into accepted and rejected rows of users and events
files (CSV and JSON Lines), through the CLI into a real workspace; then every byte of every
file in the workspace directory is searched for them, in the spellings a leak would take.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from liucun.cli import app
from liucun.core._hashing import hmac_pads, keyed_hash
from liucun.ingest import IngestOptions, ingest_events, ingest_users
from liucun.workspace import init_workspace, open_workspace

# (e-mail, phone) of an accepted and of a rejected row, per file
PEOPLE = {
    "users.csv": (("Zoë.Quinn+vip@Example.COM", "+86 138-0013-8000"),
                  ("ADA.l@Mail.Example.org", "(0)30 1234 5678")),
    "users.jsonl": (("kim.lee@shop.example", "+1 (415) 555-0134"),
                    ("Émile@Example.fr", "+33 6 12 34 56 78")),
    "events.csv": (("pat.o@example.net", "+44 7700 900123"),
                   ("li.wei@example.cn", "+86 139 1234 5678")),
    "events.jsonl": (("sam@example.io", "+49 151 2345 6789"),
                     ("noor@example.ae", "+971 50 123 4567")),
}  # fmt: skip
CANARY = "canary-user-7f3a9c"  # an id stored in clear: proves the scan can see stored text


def _write_inputs(folder: Path) -> dict[str, Path]:
    (a_mail, a_tel), (r_mail, r_tel) = PEOPLE["users.csv"]
    files = {
        "users.csv": "user_id,E-Mail,Phone,country\n"
        f"{CANARY},{a_mail},{a_tel},CN\n"
        f"u-rejected-1,{r_mail},{r_tel},Germany\n",
        "events.csv": "user_id,event_type,ts,Email Address,Phone Number\n"
        f"{CANARY},view,2026-03-01T10:00:00Z,{PEOPLE['events.csv'][0][0]},"
        f'"{PEOPLE["events.csv"][0][1]}"\n'
        f"u-rejected-2,teleport,2026-03-01T10:00:00Z,{PEOPLE['events.csv'][1][0]},"
        f'"{PEOPLE["events.csv"][1][1]}"\n',
    }
    (ua, ut), (ur, urt) = PEOPLE["users.jsonl"]
    (ea, et), (er, ert) = PEOPLE["events.jsonl"]
    users_jsonl = [
        {"user_id": "u-json-1", "email": ua, "mobile": ut, "timezone": "Asia/Shanghai"},
        {"user_id": "u-json-2", "email": ur, "mobile": urt, "timezone": "Mars/Olympus"},
    ]
    events_jsonl = [
        {"user_id": "u-json-1", "event_type": "order", "ts": "2026-03-02T10:00:00Z",
         "revenue": 12.5, "currency": "CNY", "email": ea, "tel": et},
        {"user_id": "u-json-2", "event_type": "order", "ts": "2026-03-02T10:00:00Z",
         "revenue": -3, "currency": "CNY", "email": er, "tel": ert},
    ]  # fmt: skip
    files["users.jsonl"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in users_jsonl)
    files["events.jsonl"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in events_jsonl)
    out = {}
    for name, text in files.items():
        out[name] = folder / name
        out[name].write_text(text, encoding="utf-8")
    return out


def _spellings(value: str) -> set[bytes]:
    """How a leaked value could appear in a file."""
    digits = "".join(ch for ch in value if ch.isdigit() or ch == "+")
    forms = {value, value.lower(), value.upper(), value.strip(), digits, digits.lstrip("+")}
    out = set()
    for form in forms:
        if len(form) >= 6:
            out |= {form.encode("utf-8"), form.encode("utf-16-le")}
            out.add(json.dumps(form).encode())  # JSON-escaped (é as \\u00e9)
    return out


def _normal(value: str, kind: str) -> str:
    if kind == "email":
        return value.strip().lower()
    return "".join(ch for ch in value if ch.isdigit() or ch == "+")


def _ingest(ws_path: Path, inputs: dict[str, Path]) -> str:
    runner = CliRunner()
    out = []
    for kind in ("users", "events"):
        for fmt in ("csv", "jsonl"):
            res = runner.invoke(
                app, ["-w", str(ws_path), "ingest", kind, str(inputs[f"{kind}.{fmt}"])]
            )
            assert res.exit_code == 0, res.output
            out.append(res.output)
    return "\n".join(out)


def _workspace_bytes(ws_path: Path) -> dict[Path, bytes]:
    """Every file of the workspace, and the decoded text of every Parquet file."""
    found = {}
    for path in sorted(p for p in ws_path.rglob("*") if p.is_file()):
        found[path] = path.read_bytes()
        if path.suffix == ".parquet":  # compressed pages: search the values too
            text = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
            found[path.with_suffix(".parquet.values")] = text.encode("utf-8")
    return found


@pytest.mark.parametrize("store", ["duckdb", "pyspark"])
def test_no_file_of_the_workspace_holds_contact_data_in_clear(
    store: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws_path = tmp_path / "ws"
    init_workspace(ws_path, warehouse_url=store).close()
    inputs = _write_inputs(tmp_path)
    caplog.set_level(logging.DEBUG, logger="liucun")

    printed = _ingest(ws_path, inputs)

    with open_workspace(ws_path) as ws:
        key = ws.hash_key
        counts = {t: ws.warehouse.count(t) for t in ("users", "events", "quarantine")}
    assert counts == {"users": 2, "events": 2, "quarantine": 4}  # one of each kept, one rejected
    files = _workspace_bytes(ws_path)
    stored = {p: b for p, b in files.items() if p.name not in ("secret.key",)}
    everything = b"\0".join(stored.values())
    assert CANARY.encode() in everything, "the scan does not see stored text"

    for name, people in PEOPLE.items():
        for mail, tel in people:
            for value in (mail, tel):
                for needle in _spellings(value):
                    where = [str(p.relative_to(ws_path)) for p, b in stored.items() if needle in b]
                    assert not where, f"{value!r} ({name}) in clear in {where}"
                    assert needle.decode("utf-8", "replace") not in caplog.text
                    assert needle.decode("utf-8", "replace") not in printed
            # the unkeyed SHA-256 of the old scheme is not stored either
            old = hashlib.sha256(_normal(mail, "email").encode()).hexdigest().encode()
            assert old not in everything
            # the keyed hash is: as an alias (accepted users) or as "hmac:…" (elsewhere)
            for value, kind in ((mail, "email"), (tel, "phone")):
                digest = keyed_hash(key, _normal(value, kind)).encode()
                assert digest in everything, f"no keyed hash of {value!r} ({name})"
    # the key itself stays in secret.key
    assert key.hex().encode() not in everything
    assert key not in everything
    assert not any(pad in everything for pad in hmac_pads(key))  # nor what the engine saw


def test_the_keyed_hashes_are_where_the_data_model_says(tmp_path: Path) -> None:
    ws_path = tmp_path / "ws"
    init_workspace(ws_path).close()
    inputs = _write_inputs(tmp_path)
    _ingest(ws_path, inputs)
    with open_workspace(ws_path) as ws:
        h = ws.keyed_hash
        ids = ws.warehouse.table("identities").to_pyarrow().to_pylist()
        aliases = {(r["alias_type"], r["alias"]): r["user_id"] for r in ids}
        (mail, _), (r_mail, _) = PEOPLE["users.csv"]
        assert aliases[("email_hash", h(mail.lower()))] == CANARY
        assert aliases[("phone_hash", h("+8613800138000"))] == CANARY
        assert ("email_hash", h(r_mail.lower())) not in aliases  # rejected: no alias
        events = ws.warehouse.table("events").to_pyarrow().to_pylist()
        props = {e["user_id"]: json.loads(e["properties"]) for e in events}
        assert props[CANARY] == {
            "Email Address": "hmac:" + h(PEOPLE["events.csv"][0][0].lower()),
            "Phone Number": "hmac:" + h("+447700900123"),
        }
        quarantine = ws.warehouse.table("quarantine").to_pyarrow().to_pylist()
        raw = {
            (q["target"], json.loads(q["raw"])["user_id"]): json.loads(q["raw"]) for q in quarantine
        }
        assert raw["users", "u-rejected-1"]["E-Mail"] == "hmac:" + h(r_mail.lower())
        assert raw["users", "u-rejected-1"]["Phone"] == "hmac:" + h("03012345678")
        assert raw["users", "u-rejected-1"]["country"] == "Germany"  # the rest stays as read
        assert raw["users", "u-json-2"]["mobile"] == "hmac:" + h("+33612345678")
        assert raw["events", "u-json-2"]["tel"] == "hmac:" + h("+971501234567")
        assert all(not any("@" in r for r in q["reasons"]) for q in quarantine)


def test_the_log_line_of_a_load_has_counts_and_no_contact_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = _write_inputs(tmp_path)
    with init_workspace(tmp_path / "ws") as ws, caplog.at_level(logging.INFO, "liucun.ingest"):
        options = IngestOptions(hash_key=ws.hash_key, clock=ws.clock)
        ingest_users(ws.warehouse, [inputs["users.csv"]], options)
        ingest_events(ws.warehouse, [inputs["events.jsonl"]], options)
    lines = [r.getMessage() for r in caplog.records if r.name == "liucun.ingest"]
    assert len(lines) == 2, lines  # one per load
    assert "into users: 1 file(s), 2 rows read, 1 accepted, 0 updated, 0 duplicates, " in lines[0]
    assert "1 quarantined (bad_country 1)" in lines[0]
    assert "into events: 1 file(s), 2 rows read, 1 accepted" in lines[1]
    for people in PEOPLE.values():
        for value in (v for person in people for v in person):
            assert not any(n.decode("utf-8", "replace") in caplog.text for n in _spellings(value))
