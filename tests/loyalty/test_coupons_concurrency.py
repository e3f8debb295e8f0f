"""Two processes race on the same codes and limits (SQLite and PostgreSQL): each code is
redeemed by exactly one of them, a per_customer limit of one gives each customer one
code, and a budget is never overrun; ``coupon_check`` holds afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

import liucun
from liucun.loyalty._coupons import coupon_check, issue_coupon, list_coupons
from liucun.state import CouponCode, CouponRedemption
from liucun.workspace import init_workspace, open_workspace

CODES = 30
USERS = 20

PROGRAM = """
name: race
currency: CNY
coupons:
  - {id: ten, kind: value, amount: 10, per_customer: null}
  - {id: once, kind: value, amount: 10, per_customer: 1}
  - {id: scarce, kind: value, amount: 10, per_customer: null, budget: 100}
"""

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from liucun.loyalty._coupons import CouponRefused, issue_coupon, redeem_coupon
    from liucun.workspace import open_workspace

    path, worker, out, program, start = sys.argv[1:6]
    codes = json.loads(sys.argv[6])
    while time.time() < float(start):   # both processes begin together
        time.sleep(0.001)
    won, lost, issued, refused = [], 0, [], 0
    with open_workspace(path) as ws:
        for i, code in enumerate(codes):
            try:
                r = redeem_coupon(ws, code, order_id=f"w{worker}-o{i}", order_value=50.0,
                                  key=f"w{worker}-r{i}")
                won.append(code)
            except CouponRefused:
                lost += 1
        for u in range(int(sys.argv[7])):
            for coupon in ("once", "scarce"):
                try:
                    c = issue_coupon(ws, coupon, f"u{u}", key=f"w{worker}-{coupon}-{u}",
                                     program=program)
                    issued.append([coupon, c.user_id, c.code])
                except CouponRefused:
                    refused += 1
    with open(out, "w") as f:
        json.dump({"won": won, "lost": lost, "issued": issued, "refused": refused}, f)
    """
)


@pytest.mark.slow
def test_two_processes_racing_on_codes_and_limits(tmp_path: Path, state_url: str) -> None:
    import time

    path = tmp_path / "ws"
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    with init_workspace(path, state_url=state_url) as ws:
        codes = [
            issue_coupon(ws, "ten", f"c{i}", key=f"setup-{i}", program=program).code
            for i in range(CODES)
        ]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    src = str(Path(liucun.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.time() + 4.0  # after both interpreters have imported liucun
    outs = [tmp_path / f"out-{w}.json" for w in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(path),
                str(w),
                str(outs[w]),
                str(program),
                str(start),
                json.dumps(codes),
                str(USERS),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    results = [json.loads(o.read_text()) for o in outs]
    won = results[0]["won"] + results[1]["won"]
    assert sorted(won) == sorted(codes)  # every code redeemed once, by one of the two
    assert results[0]["lost"] + results[1]["lost"] == CODES
    issued = results[0]["issued"] + results[1]["issued"]
    once = sorted(u for c, u, _ in issued if c == "once")
    assert once == sorted(f"u{u}" for u in range(USERS))  # one each, never two
    assert len([1 for c, _, _ in issued if c == "scarce"]) == 10  # 100 CNY / 10 CNY
    with open_workspace(path) as ws:
        with ws.state.read() as s:
            assert s.scalar(select(func.count()).select_from(CouponRedemption)) == CODES
            assert s.scalar(select(func.count()).select_from(CouponCode)) == CODES + USERS + 10
        assert coupon_check(ws) == []
        assert all(c.status == "redeemed" for c in list_coupons(ws, "c0"))
