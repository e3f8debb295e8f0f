"""The state database on SQLite and PostgreSQL: migrations, UTC, idempotent exposure
inserts, serialized writers and the busy-timeout sentence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update
from sqlalchemy.exc import StatementError

from liucun.core import ConfigError, StateError
from liucun.schema import arrow_schema
from liucun.state import (
    AuditEntry,
    Base,
    StateStore,
    connect_state,
    count_exposures,
    exposures_after,
    head_revision,
    insert_exposures,
    record_audit,
    state_status,
    upgrade,
)


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    s = connect_state(state_url)
    upgrade(s)
    yield s
    s.close()


def exposure_rows(n: int, *, start: int = 0) -> pa.Table:
    t0 = datetime(2026, 7, 2, 9, tzinfo=UTC)
    return pa.table(
        {
            "exposure_id": [f"e{i:05d}" for i in range(start, start + n)],
            "experiment": ["cmp"] * n,
            "layer": [None] * n,
            "unit_type": ["user"] * n,
            "unit_id": [f"u{i}" for i in range(start, start + n)],
            "variant": ["control" if i % 2 else "treatment" for i in range(start, start + n)],
            "probability": [0.5] * n,
            "holdout": [False] * n,
            "ts": [t0 + timedelta(minutes=i) for i in range(start, start + n)],
            "load_id": ["exp-1"] * n,
        }
    )


def test_a_new_database_is_created_at_the_latest_revision(state_url: str) -> None:
    store = connect_state(state_url)
    try:
        assert upgrade(store) == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
        assert upgrade(store) == []  # idempotent
        st = state_status(store)
        assert st.revision == head_revision() == "0008" and st.up_to_date
        assert st.rows == {
            "audit_log": 0,
            "exposures": 0,
            "loyalty_accounts": 0,
            "loyalty_accrual_runs": 0,
            "loyalty_benefit_grants": 0,
            "loyalty_coupon_codes": 0,
            "loyalty_coupon_redemptions": 0,
            "loyalty_entries": 0,
            "loyalty_lots": 0,
            "loyalty_member_tiers": 0,
            "loyalty_membership_events": 0,
            "loyalty_memberships": 0,
            "loyalty_notices": 0,
            "loyalty_programs": 0,
            "loyalty_program_versions": 0,
            "loyalty_referral_codes": 0,
            "loyalty_referrals": 0,
            "loyalty_tier_history": 0,
            "loyalty_transactions": 0,
            "workspace_secrets": 0,
            "consents": 0,
            "contacts": 0,
            "customer_tags": 0,
            "delivery_events": 0,
            "journey_approvals": 0,
            "journey_bandit_arms": 0,
            "journey_cursors": 0,
            "journey_enrolments": 0,
            "journey_steps": 0,
            "journey_versions": 0,
            "journeys": 0,
            "outbox": 0,
            "service_tasks": 0,
            "suppressions": 0,
            "alerts": 0,
            "api_keys": 0,
            "event_inbox": 0,
            "idempotency_records": 0,
            "web_users": 0,
            "webhook_subscriptions": 0,
        }
        assert st.backend == state_url.split(":")[0].split("+")[0]
    finally:
        store.close()


def test_the_models_match_what_the_migrations_create(store: StateStore) -> None:
    """Autogenerate finds nothing to change: a model edited without a migration fails."""
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_times_come_back_aware_in_utc(store: StateStore) -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 12, 3, 17, 30, 15, 123456, tzinfo=shanghai)
    with store.write() as session:
        record_audit(session, at=at, actor="test", action="probe", details={"n": 1})
    with store.read() as session:
        entry = session.scalars(select(AuditEntry)).one()
    assert entry.at == at and entry.at.tzinfo == UTC
    assert entry.at.hour == 9 and entry.details == '{"n": 1}'
    with pytest.raises(StatementError, match="naive datetime"), store.write() as session:
        record_audit(session, at=datetime(2026, 1, 1), actor="test", action="probe")


def test_exposure_inserts_are_idempotent_and_read_back_in_id_order(store: StateStore) -> None:
    schema = arrow_schema("exposures")
    with store.write() as session:
        assert insert_exposures(session, exposure_rows(12_000)) == 12_000
    with store.write() as session:  # a replayed batch, overlapping a new one
        assert insert_exposures(session, exposure_rows(2_000, start=11_000)) == 1_000
    with store.read() as session:
        assert count_exposures(session) == 13_000
        everything = exposures_after(session, 0, schema=schema)
        ids = everything.column("id").to_pylist()
        tail = exposures_after(session, ids[12_989], schema=schema)
    # ids only grow (PostgreSQL skips the sequence values of refused duplicates)
    assert ids == sorted(set(ids)) and len(ids) == 13_000
    assert everything.column("exposure_id").to_pylist() == [f"e{i:05d}" for i in range(13_000)]
    assert tail.column("exposure_id").to_pylist() == [f"e{i:05d}" for i in range(12_990, 13_000)]
    assert tail.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert tail.column("ts")[0].as_py() == datetime(2026, 7, 2, 9, tzinfo=UTC) + timedelta(
        minutes=12_990
    )


def test_a_failed_write_leaves_nothing(store: StateStore) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.write() as session:
        insert_exposures(session, exposure_rows(10))
        raise RuntimeError("boom")
    with store.read() as session:
        assert count_exposures(session) == 0


def test_concurrent_read_modify_write_transactions_lose_no_update(store: StateStore) -> None:
    """Four threads increment one counter 25 times each in read-then-write transactions.

    SQLAlchemy drops ``with_for_update()`` on SQLite, so without ``BEGIN IMMEDIATE`` two
    SQLite writers read the same value (or fail with 'database is locked'); PostgreSQL
    needs the row lock. Either way the total must be exactly 100.
    """
    meta = MetaData()
    counter = Table(
        "test_counter", meta, Column("id", Integer, primary_key=True), Column("n", Integer)
    )
    meta.create_all(store.engine)
    with store.write() as session:
        session.execute(insert(counter).values(id=1, n=0))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                with store.write() as session:
                    n = session.scalar(
                        select(counter.c.n).where(counter.c.id == 1).with_for_update()
                    )
                    session.execute(update(counter).where(counter.c.id == 1).values(n=n + 1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as session:
        assert session.scalar(select(counter.c.n)) == 100


def test_a_sqlite_writer_waits_then_says_who_to_wait_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    holder, waiter = connect_state(url), connect_state(url, busy_timeout_ms=200)
    upgrade(holder)
    try:
        with holder.write() as held:
            held.execute(text("SELECT 1"))  # BEGIN IMMEDIATE ran: the write lock is held
            locked = pytest.raises(StateError, match=r"stayed locked by another writer for 0\.2 s")
            with locked, waiter.write() as session:
                record_audit(session, at=datetime.now(UTC), actor="t", action="x")
        with waiter.write() as session:  # free again
            record_audit(session, at=datetime.now(UTC), actor="t", action="x")
    finally:
        holder.close()
        waiter.close()


def test_readers_see_a_snapshot_while_a_writer_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = connect_state(url)
    upgrade(store)
    try:
        with store.read() as reader:
            before = count_exposures(reader)
            with store.write() as session:  # WAL: the writer is not blocked by the reader
                insert_exposures(session, exposure_rows(5))
            assert count_exposures(reader) == before == 0
        with store.read() as reader:
            assert count_exposures(reader) == 5
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://root@localhost/test", "unsupported state URL"),
        ("not a url", "unsupported state URL"),
        ("sqlite:////no/such/folder/state.sqlite", "does not exist"),
    ],
)
def test_bad_urls_are_refused_with_a_sentence(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        connect_state(url)
