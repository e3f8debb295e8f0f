"""A coupon and benefit writer killed with SIGKILL at random and restarted, replaying its
keys from the start (SQLite and PostgreSQL): every acknowledged operation is stored
exactly once, and ``coupon_check`` and the ledger's ``check`` hold."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

import liucun
from liucun import loyalty
from liucun.loyalty._coupons import coupon_check
from liucun.state import BenefitGrant, CouponCode, CouponRedemption
from liucun.workspace import init_workspace, open_workspace

OPS = 60
KILLS = 3
PROGRAM = """
name: faults
currency: CNY
coupons:
  - {id: v, kind: value, amount: 5, per_customer: null}
benefits:
  - {id: ship, description: x, points_cost: 10, per_customer: null}
"""

WORKER = textwrap.dedent(
    """
    import sys
    from liucun import loyalty
    from liucun.loyalty._coupons import issue_coupon, redeem_benefit, redeem_coupon
    from liucun.workspace import open_workspace

    path, program, acks, ops = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open_workspace(path) as ws, open(acks, "a") as out:
        for i in range(ops):
            c = issue_coupon(ws, "v", f"u{i % 5}", key=f"issue-{i}", program=program)
            out.write(f"issue-{i}\\n"); out.flush()
            redeem_coupon(ws, c.code, order_id=f"o{i}", order_value=20.0, key=f"redeem-{i}")
            out.write(f"redeem-{i}\\n"); out.flush()
            redeem_benefit(ws, "m", "ship", key=f"ship-{i}", program=program)
            out.write(f"ship-{i}\\n"); out.flush()
    """
)


def _acked(acks: Path) -> int:
    return len(acks.read_text().split()) if acks.exists() else 0


@pytest.mark.slow
def test_a_killed_writer_restarted_leaves_every_acknowledged_write_once(
    tmp_path: Path, state_url: str
) -> None:
    path = tmp_path / "ws"
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    with init_workspace(path, state_url=state_url) as ws:
        loyalty.award(ws, "m", 10 * OPS, key="fund")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    acks = tmp_path / "acks.txt"
    src = str(Path(liucun.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, str(script), str(path), str(program), str(acks), str(OPS)]
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        # kill on progress, not on a timer: after 5-40 more acknowledged writes (3 x 40 <
        # 3 x OPS writes, so every kill lands however fast the machine is)
        start = _acked(acks)
        target = start + rng.randint(5, 40)
        proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _acked(acks) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    acked = set(acks.read_text().split())
    assert {f"{op}-{i}" for op in ("issue", "redeem", "ship") for i in range(OPS)} <= acked
    assert kills == KILLS
    with open_workspace(path) as ws:
        with ws.state.read() as s:
            for model in (CouponCode, CouponRedemption, BenefitGrant):
                keys = s.scalars(select(model.key)).all()
                assert len(keys) == len(set(keys)) == OPS, model.__tablename__
            assert s.scalar(select(func.sum(CouponRedemption.discount))) == 5.0 * OPS
        assert coupon_check(ws) == []
        assert loyalty.check(ws).ok
        assert loyalty.account(ws, "m").balance == 0
