"""``liucun loyalty coupon …`` and ``loyalty benefit …`` on SQLite and PostgreSQL, and the
codes that ingested order events carry (a CSV's ``coupon_code`` column lands in
``properties``, as the simulator writes it): redeemed once, at the order's time, on the
order's value; the shop's own codes are left alone; refusals exit 2."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun import loyalty
from liucun.cli import app
from liucun.core import SimulatedClock
from liucun.ingest import ingest_events
from liucun.loyalty._coupons import coupon_check, issue_coupon, list_coupons, redeem_from_orders
from liucun.workspace import init_workspace, open_workspace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXAMPLE = str(Path(__file__).parents[2] / "examples" / "loyalty" / "program.yaml")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> str:
    init_workspace(tmp_path / "ws", state_url=state_url).close()
    return str(tmp_path / "ws")


def test_issue_list_redeem_and_refusals_exit_2(ws: str) -> None:
    code, out, _ = run("-w", ws, "loyalty", "coupon", "issue", "recall_10", "u1", "--key",
                       "recall:u1", "--program-file", EXAMPLE, "--format", "json")  # fmt: skip
    assert code == 0, out
    issued = json.loads(out)
    assert (issued["coupon_id"], issued["amount"], issued["min_order"], issued["currency"]) == (
        "recall_10", 10.0, 59.0, "CNY")  # fmt: skip
    code, out, err = run("-w", ws, "loyalty", "coupon", "issue", "recall_10", "u1", "--key",
                         "recall:u1:again", "--program-file", EXAMPLE)  # fmt: skip
    assert code == 2 and "per_customer limit of 1" in err
    code, out, _ = run("-w", ws, "loyalty", "coupon", "list", "u1", "--format", "json")
    assert [c["code"] for c in json.loads(out)] == [issued["code"]]
    code, _, err = run("-w", ws, "loyalty", "coupon", "redeem", issued["code"], "--order",
                       "o1", "--value", "40", "--key", "o1:c")  # fmt: skip
    assert code == 2 and "below" in err and "59.00 CNY" in err
    code, out, _ = run("-w", ws, "loyalty", "coupon", "redeem", issued["code"], "--order",
                       "o1", "--value", "60", "--key", "o1:c", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["discount"] == 10.0
    code, _, err = run("-w", ws, "loyalty", "coupon", "redeem", issued["code"], "--order",
                       "o2", "--value", "60", "--key", "o2:c")  # fmt: skip
    assert code == 2 and "already redeemed on order o1" in err
    code, out, _ = run("-w", ws, "loyalty", "coupon", "check")
    assert code == 0 and "no violation" in out


def test_benefit_redeem_and_list(ws: str) -> None:
    with open_workspace(ws) as w:
        loyalty.award(w, "u1", 500, key="earn")
    code, out, _ = run("-w", ws, "loyalty", "benefit", "redeem", "u1", "shipping_upgrade",
                       "--key", "ship:1", "--program-file", EXAMPLE,
                       "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["balance_after"] == 200
    code, _, err = run("-w", ws, "loyalty", "benefit", "redeem", "u1", "shipping_upgrade",
                       "--key", "ship:2", "--program-file", EXAMPLE)  # fmt: skip
    assert code == 2 and "200 points available" in err
    code, out, _ = run("-w", ws, "loyalty", "benefit", "list", "u1", "--tier", "尊享",
                       "--program-file", EXAMPLE, "--format", "json")  # fmt: skip
    assert code == 0
    got = {r["benefit_id"]: r["hidden"] for r in json.loads(out)}
    assert got == {"shipping_upgrade": False, "free_shipping": False, "early_access": True}


ORDERS = """event_id,user_id,event_type,ts,revenue,currency,order_id,category,coupon_code,discount
e1,u1,order,2026-03-02T10:00:00Z,120.00,CNY,o1,shoes,{code1},10.00
e2,u2,order,2026-03-02T11:00:00Z,80.00,CNY,o2,bags,{code2},12.00
e3,u3,order,2026-03-02T12:00:00Z,99.00,CNY,o3,bags,CMP20260101,9.90
e4,u1,order,2026-03-03T10:00:00Z,130.00,CNY,o4,shoes,{code1},10.00
e5,u4,order,2026-03-03T11:00:00Z,70.00,CNY,o5,bags,,
e6,u9,order,2026-03-03T12:00:00Z,70.00,CNY,o6,bags,{code3},
e7,u1,page_view,2026-03-03T13:00:00Z,,,,,{code3},
"""


def test_order_events_carrying_codes_redeem_them_once(tmp_path: Path, state_url: str) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with init_workspace(tmp_path / "w2", state_url=state_url, clock=SimulatedClock(t0)) as w:
        p = loyalty.load_program(EXAMPLE)
        c1 = issue_coupon(w, "recall_10", "u1", key="a", program=p).code
        c2 = issue_coupon(w, "birthday_coupon", "u2", key="b", program=p).code
        c3 = issue_coupon(w, "birthday_coupon", "u3", key="c", program=p).code
        csv = tmp_path / "orders.csv"
        csv.write_text(ORDERS.format(code1=c1, code2=c2, code3=c3), encoding="utf-8")
        ingest_events(w.warehouse, [csv])
        w.clock.set(datetime(2026, 3, 5, tzinfo=UTC))
        first = redeem_from_orders(w)
        # e1 and e2 redeem; e3 is the shop's own campaign code; e4 is the second use of
        # code1 (refused); e6 is code3 used by someone else (refused); e5 has no code and
        # e7 is not an order
        assert (first.orders, first.redeemed, first.unknown) == (5, 2, 1)
        assert sorted(e for e, _, _ in first.refused) == ["e4", "e6"]
        assert first.discount == 10.0 + 12.0  # 15 % of 80.00
        again = redeem_from_orders(w)
        assert (again.redeemed, again.replayed) == (0, 2)
        (u1,) = list_coupons(w, "u1")
        assert u1.status == "redeemed" and u1.redeemed_at == datetime(2026, 3, 2, 10, tzinfo=UTC)
        assert list_coupons(w, "u3")[0].status == "issued"
        assert redeem_from_orders(w, since=datetime(2026, 3, 3, tzinfo=UTC)).orders == 2
        assert coupon_check(w) == []
    code, out, _ = run("-w", str(tmp_path / "w2"), "loyalty", "coupon", "redeem-orders",
                       "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["replayed"] == 2
