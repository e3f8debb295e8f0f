"""Four processes write to one ledger at once (SQLite and PostgreSQL), replaying each
other's keys: afterwards ``check`` holds, every acknowledged write is in the ledger
exactly once, no write that was only ever refused is, and each balance is the sum of the
acknowledged writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

import liucun
from liucun import loyalty
from liucun.state import LoyaltyTransaction
from liucun.workspace import init_workspace, open_workspace

WORKERS = 4
OPS = 200

WORKER = textwrap.dedent(
    """
    import json, random, sys
    from liucun import loyalty
    from liucun.workspace import open_workspace

    path, worker, out, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rng = random.Random(worker)
    acked, refused = [], []
    with open_workspace(path) as ws:
        for i in range(ops):
            j = rng.randrange(60)
            user = f"u{j % 8}"
            roll = rng.random()
            try:
                if roll < 0.35:    # a shared key: every worker may replay it
                    p = loyalty.award(ws, user, 10 + j, key=f"shared-award-{j}")
                elif roll < 0.6:
                    p = loyalty.award(ws, user, 5, key=f"w{worker}-award-{i}")
                elif roll < 0.8:
                    p = loyalty.redeem(ws, user, 7, key=f"shared-redeem-{j}")
                elif roll < 0.9:
                    p = loyalty.redeem(ws, user, 9, key=f"w{worker}-redeem-{i}")
                else:
                    p = loyalty.reverse(ws, f"shared-award-{j}", key=f"shared-reverse-{j}")
            except (loyalty.InsufficientPoints, loyalty.LedgerError) as exc:
                refused.append(type(exc).__name__)
                continue
            acked.append([p.key, p.user_id, p.points])
    with open(out, "w") as f:
        json.dump({"acked": acked, "refused": len(refused)}, f)
    """
)


@pytest.mark.slow
def test_concurrent_writers_with_replayed_keys_keep_every_invariant(
    tmp_path: Path, state_url: str
) -> None:
    path = tmp_path / "ws"
    init_workspace(path, state_url=state_url).close()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    src = str(Path(liucun.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    outs = [tmp_path / f"out-{w}.json" for w in range(WORKERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(w), str(outs[w]), str(OPS)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    acked: dict[str, tuple[str, int]] = {}
    refused = 0
    for out in outs:
        result = json.loads(out.read_text())
        refused += result["refused"]
        for key, user, points in result["acked"]:
            # a replayed key must have answered with the first result
            assert acked.setdefault(key, (user, points)) == (user, points), key
    with open_workspace(path) as ws:
        report = loyalty.check(ws)
        assert report.ok, report.violations
        with ws.state.read() as s:
            stored = dict(
                s.execute(select(LoyaltyTransaction.key, LoyaltyTransaction.points)).all()
            )
        # every acknowledged write exactly once (keys are unique), nothing else
        assert stored == {key: points for key, (_, points) in acked.items()}
        for user in {u for u, _ in acked.values()}:
            expected = sum(p for u, p in acked.values() if u == user)
            assert loyalty.account(ws, user).posted == expected
    assert refused > 0 and len(acked) > WORKERS * OPS // 4  # both outcomes happened
