"""Consent records on SQLite and PostgreSQL: append-only history, the latest record per
user × purpose × channel in force (a '*' record for every channel; the later of the two
wins), batched reads for many users, a back-dated record not overriding a newer one, and
the latest-wins rule against a brute-force oracle (hypothesis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from liucun.core import InvalidInput, SimulatedClock
from liucun.journeys._consent import (
    consent_history,
    consent_in_force,
    record_consent,
    record_consents,
)
from liucun.state import ConsentRecord
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def test_latest_record_in_force_and_history(ws: Workspace) -> None:
    record_consent(ws, "u1", purpose="marketing", channel="email", status="granted", source="form",
                   proof="v1")  # fmt: skip
    ws.clock.advance(timedelta(days=1))
    record_consent(ws, "u1", purpose="marketing", channel="email", status="revoked", source="app")
    # a back-dated grant (given before the revocation) does not override it
    record_consent(ws, "u1", purpose="marketing", channel="email", status="granted",
                   source="import", at=T0 + timedelta(hours=1))  # fmt: skip
    record_consent(ws, "u2", purpose="marketing", channel="*", status="granted", source="form")
    record_consent(ws, "u3", purpose="service", channel="sms", status="denied", source="form")
    with ws.state.read() as s:
        assert consent_in_force(s, ["u1", "u2", "u3", "u4"], "marketing", "email") == {
            "u1": "revoked",
            "u2": "granted",
            "u3": None,
            "u4": None,
        }
        assert consent_in_force(s, ["u3"], "service", "sms") == {"u3": "denied"}
        assert consent_in_force(s, ["u3"], "service", "email") == {"u3": None}
    history = consent_history(ws, "u1")
    assert [(c.status, c.source) for c in history] == [
        ("granted", "form"),
        ("granted", "import"),
        ("revoked", "app"),
    ]
    assert history[0].proof == "v1" and history[2].recorded_at == T0 + timedelta(days=1)


def test_many_users_in_one_read(ws: Workspace) -> None:
    users = [f"u{i}" for i in range(2500)]  # more than one 900-id chunk
    record_consents(
        ws,
        [
            {
                "user_id": u,
                "purpose": "marketing",
                "channel": "*",
                "source": "import",
                "status": "granted" if i % 3 else "denied",
            }
            for i, u in enumerate(users)
        ],
    )
    with ws.state.read() as s:
        got = consent_in_force(s, users, "marketing", "push")
    assert sum(v == "granted" for v in got.values()) == 2500 - 834
    assert got["u0"] == "denied" and got["u1"] == "granted"


def test_bad_input_names_the_field(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="status must be one of granted, denied, revoked"):
        record_consent(ws, "u1", purpose="marketing", channel="email", status="ok", source="x")
    with pytest.raises(InvalidInput, match="source is empty"):
        record_consent(ws, "u1", purpose="marketing", channel="email", status="granted", source="")


record = st.tuples(
    st.sampled_from(["email", "sms", "*"]),
    st.sampled_from(["granted", "denied", "revoked"]),
    st.integers(0, 5),  # at (hours), ties allowed: then the later insertion wins
)


def test_latest_wins_against_an_oracle(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", clock=SimulatedClock(T0))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(record, max_size=6), st.sampled_from(["email", "sms", "push"]))
    def check(records: list[tuple[str, str, int]], channel: str) -> None:
        with ws.state.write() as s:
            s.execute(delete(ConsentRecord))
        for ch, status, hours in records:
            record_consent(ws, "u", purpose="marketing", channel=ch, status=status, source="t",
                           at=T0 + timedelta(hours=hours))  # fmt: skip
        applying = [(h, i, st_) for i, (ch, st_, h) in enumerate(records) if ch in (channel, "*")]
        expected = max(applying)[2] if applying else None
        with ws.state.read() as s:
            assert consent_in_force(s, ["u"], "marketing", channel) == {"u": expected}

    check()
    ws.close()
