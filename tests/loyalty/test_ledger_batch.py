"""``award_many``: many awards in one transaction, each with what ``award`` guarantees
(idempotent key, refusal of a key reused with other arguments, debt settled first), the
batch all or nothing; and writers batching overlapping members at once (SQLite and
PostgreSQL) neither deadlock nor lose an award."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import liucun
from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.state import LoyaltyAccount, LoyaltyEntry, LoyaltyLot, LoyaltyTransaction
from liucun.workspace import Workspace, init_workspace, open_workspace

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def rows(ws: Workspace) -> dict[str, int]:
    with ws.state.read() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (LoyaltyAccount, LoyaltyTransaction, LoyaltyLot, LoyaltyEntry)
        }


def test_a_batch_books_each_award_in_order_settling_debt_first(ws: Workspace) -> None:
    loyalty.set_policy(ws, allow_negative=True)
    loyalty.award(ws, "a", 20, key="a-0")
    loyalty.adjust(ws, "a", -50, key="a-fix", reason="ticket 1")  # 20 from the lot, 30 debt
    expires = T0 + timedelta(days=10)
    postings = loyalty.award_many(
        ws,
        [
            {"user_id": "a", "points": 10, "key": "a-1"},  # settles 10 of the 30: -20
            {"user_id": "a", "points": 25, "key": "a-2", "growth": 4},  # settles 20, keeps 5
            {"user_id": "b", "points": 5, "key": "b-1", "expires_at": expires},  # a new member
        ],
    )
    assert [(p.key, p.points, p.balance_after, p.replayed) for p in postings] == [
        ("a-1", 10, -20, False),
        ("a-2", 25, 5, False),
        ("b-1", 5, 5, False),
    ]
    a, b = loyalty.account(ws, "a"), loyalty.account(ws, "b")
    assert (a.balance, a.growth_value, a.version) == (5, 4, 4)
    assert [(lot.key, lot.points, lot.remaining) for lot in a.lots] == [("a-2", 25, 5)]
    assert [(lot.key, lot.remaining, lot.expires_at) for lot in b.lots] == [("b-1", 5, expires)]
    # per transaction: a-1 one debt leg (+10) and the issued leg; a-2 a debt leg (+20), a lot
    # leg (+5), issued, and two growth legs; b-1 a lot leg and issued
    assert rows(ws) == {
        "loyalty_accounts": 2,
        "loyalty_transactions": 5,
        "loyalty_lots": 4,
        "loyalty_entries": 2 + 3 + 2 + 5 + 2,
    }
    assert loyalty.check(ws).ok


def test_a_batch_replays_known_keys_and_refuses_a_reused_one_writing_nothing(
    ws: Workspace,
) -> None:
    first = loyalty.award(ws, "a", 7, key="k0")
    loyalty.award(ws, "a", 1, key="k-other")
    postings = loyalty.award_many(
        ws,
        [
            {"user_id": "a", "points": 7, "key": "k0"},  # written before: a replay
            {"user_id": "c", "points": 3, "key": "k1"},
            {"user_id": "c", "points": 3, "key": "k1"},  # earlier in this batch: a replay
        ],
    )
    assert [(p.key, p.balance_after, p.replayed) for p in postings] == [
        ("k0", first.balance_after, True),
        ("k1", 3, False),
        ("k1", 3, True),
    ]
    before = rows(ws)
    with pytest.raises(loyalty.IdempotencyConflict, match=r"'k-other'.*points \(1 then, 2 now\)"):
        loyalty.award_many(
            ws,
            [
                {"user_id": "d", "points": 4, "key": "k2"},  # would open d
                {"user_id": "a", "points": 2, "key": "k-other"},
            ],
        )
    assert rows(ws) == before
    assert loyalty.account(ws, "d").version == 0  # not opened
    assert loyalty.account(ws, "a").balance == 8 and loyalty.account(ws, "c").balance == 3


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"user_id": "b", "points": 0, "key": "x"}, r"item 1: points must be a positive"),
        ({"user_id": "b", "key": "x"}, r"item 1 has no points"),
        ({"user_id": "b", "points": 1, "key": "x", "when": 1}, r"item 1 has unknown .* when"),
        ("b", r"item 1 must be a mapping"),
    ],
)
def test_an_invalid_item_refuses_the_batch_naming_it(
    ws: Workspace, item: object, message: str
) -> None:
    with pytest.raises(loyalty.LedgerError, match=message):
        loyalty.award_many(ws, [{"user_id": "a", "points": 1, "key": "ok"}, item])  # type: ignore[list-item]
    assert rows(ws)["loyalty_transactions"] == 0
    assert loyalty.award_many(ws, []) == []


WORKER = textwrap.dedent(
    """
    import json, random, sys
    from liucun import loyalty
    from liucun.workspace import open_workspace

    path, worker, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(worker)
    done = []
    with open_workspace(path) as ws:
        for b in range(12):
            users = [f"u{j}" for j in rng.sample(range(30), 15)]  # overlapping, any order
            items = [
                {"user_id": u, "points": 1 + i, "key": f"w{worker}-{b}-{i}"}
                for i, u in enumerate(users)
            ]
            items.append(dict(items[0]))  # a duplicate in the batch: a replay
            done += [[p.key, p.user_id, p.points] for p in loyalty.award_many(ws, items)]
    with open(out, "w") as f:
        json.dump(done, f)
    """
)


@pytest.mark.slow
def test_writers_batching_overlapping_members_lose_nothing(tmp_path: Path, state_url: str) -> None:
    path = tmp_path / "ws"
    init_workspace(path, state_url=state_url).close()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    src = str(Path(liucun.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    outs = [tmp_path / f"out-{w}.json" for w in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(w), str(outs[w])],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    acked = [tuple(row) for out in outs for row in json.loads(out.read_text())]
    unique = set(acked)
    # 4 writers x 12 batches x 16 postings, of which the 15 distinct keys were written
    assert len(acked) == 4 * 12 * 16 and len(unique) == 4 * 12 * 15
    with open_workspace(path) as ws:
        with ws.state.read() as s:
            tx = LoyaltyTransaction
            stored = set(s.execute(select(tx.key, tx.user_id, tx.points)).all())
        assert stored == unique
        expected: dict[str, int] = {}
        for _, user, points in unique:
            expected[user] = expected.get(user, 0) + points
        assert {u: loyalty.account(ws, u).balance for u in expected} == expected
        assert loyalty.check(ws).ok


@pytest.mark.parametrize("queued", [False, True])
def test_a_write_over_an_account_version_changed_under_the_lock_is_refused(
    ws: Workspace, queued: bool
) -> None:
    """The second guard: the new balance is written only over the version read under the
    lock (here changed behind the ledger's back), else nothing is written."""
    from sqlalchemy import text

    from liucun.core import StateError
    from liucun.loyalty._book import _Book, _open_member, _send

    loyalty.award(ws, "a", 5, key="k0")
    before = rows(ws)
    with pytest.raises(StateError, match="changed under its lock"), ws.state.write() as s:
        acct = _open_member(s, "default", "a", T0)
        s.execute(text("UPDATE loyalty_accounts SET version = version + 1"))
        deferred: list = []
        book = _Book(s, acct, T0, deferred=deferred if queued else None)
        book.credit(3, book.new_lot(T0, None))
        book.program_leg("issued", -3)
        book.commit("k1", "addition", {"op": "award"}, None)
        _send(s, deferred)
    assert rows(ws) == before
    assert loyalty.account(ws, "a").balance == 5 and loyalty.check(ws).ok
