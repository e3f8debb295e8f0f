"""The in-memory decider on SQLite and PostgreSQL: guards suppress with their reason
(revoked consent stops a message action and the offer on that channel; an erased or
manual suppression stops everything), the coupon value cap is respected, the holdout
share is within binomial bounds and sticky, exposures are written on flush with their
probability (and not before), a refresh picks up a revocation, and an unknown customer
gets the default decision."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from decide_support import SH, T0, decide_shop, mail_journey
from journey_support import users
from sqlalchemy import select

from liucun import loyalty
from liucun.core import SimulatedClock
from liucun.experiments import Experiment, assign
from liucun.journeys import Decider
from liucun.journeys._consent import add_suppression, record_consent
from liucun.journeys._profiles import profiles, rows_by_user
from liucun.state import Exposure
from liucun.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        decide_shop(w, tmp_path)
        yield w


def _decider(ws: Workspace, **kw: object) -> Decider:
    d = Decider(ws, holdout=0.0, **kw)  # type: ignore[arg-type]
    d.refresh()
    return d


def test_benefits_coupons_and_the_offer(ws: Workspace) -> None:
    mail_journey(ws)
    d = _decider(ws)
    one = d.decide("u1", "checkout", cart_value=60.0)
    assert one.known and one.arm == "treatment" and one.probability == 1.0
    # u1 has three orders: the unlock filters pass
    assert one.coupons == ("ten", "forty", "loyal5")
    assert [b["benefit_id"] for b in one.benefits] == ["lounge"]  # no tier reviewed yet
    # no uplift model: the policy's first offer
    assert (one.offer, one.basis) == ("ten", "no_uplift_model")
    [a] = one.actions
    assert (a["journey"], a["node"], a["channel"], a["status"]) == (
        "winback",
        "mail",
        "email",
        "allowed",
    )
    # the cart is below ten's min_order, and u2 does not pass loyal5's unlock
    two = d.decide("u2", "checkout", cart_value=20.0)
    assert two.coupons == ("forty",) and two.offer is None
    assert two.reasons[0].startswith("offer ten: not eligible")
    assert [b["benefit_id"] for b in two.benefits] == []
    # the same as benefits_for on the customer's profile
    profile = rows_by_user(profiles(ws, T0, ["u1"], full=True))["u1"]
    rights = loyalty.eligible_benefits(ws, "u1", profile=profile)
    assert [r.benefit_id for r in rights] == [b["benefit_id"] for b in one.benefits]


def test_consent_revoked_stops_the_message_action_and_the_offer_by_message(ws: Workspace) -> None:
    mail_journey(ws)
    d = _decider(ws)
    record_consent(ws, "u2", purpose="marketing", channel="email", status="revoked", source="app")
    before = d.decide("u2", "inbox", channel="email")
    assert before.actions[0]["status"] == "allowed"  # the snapshot predates the revocation
    d.refresh()
    after = d.decide("u2", "inbox", channel="email")
    [a] = after.actions
    assert (a["status"], a["reason"]) == ("suppressed", "consent")
    assert after.offer is None and after.basis == "consent"
    # on a page (no message) the offer still shows; other customers are untouched
    assert d.decide("u2", "checkout", cart_value=60.0).offer == "ten"
    assert d.decide("u3", "inbox", channel="email").actions[0]["status"] == "allowed"


def test_a_suppressed_customer_gets_nothing(ws: Workspace) -> None:
    mail_journey(ws)
    add_suppression(ws, "u3", kind="manual", reason="asked by phone")
    add_suppression(ws, "u4", channel="email", kind="unsubscribed")
    d = _decider(ws)
    three = d.decide("u3", "checkout", cart_value=100.0)
    assert three.offer is None and three.coupons == () and three.basis == "suppressed:manual"
    assert [(a["status"], a["reason"]) for a in three.actions] == [
        ("suppressed", "suppressed:manual")
    ]
    four = d.decide("u4", "checkout", channel="email", cart_value=100.0)
    assert four.actions[0]["reason"] == "suppressed:unsubscribed" and four.offer is None
    assert d.decide("u4", "checkout", cart_value=100.0).offer == "ten"  # not by e-mail: fine


def test_the_coupon_cap_is_respected(ws: Workspace) -> None:
    # u1 holds forty (40 of the 45 per month): ten (10) would exceed it, loyal5 (5) fits
    loyalty.issue_coupon(ws, "forty", "u1", key="c-forty")
    d = _decider(ws)
    one = d.decide("u1", "checkout", cart_value=60.0)
    assert one.coupons == ("loyal5",)  # forty: held once (per_customer 1); ten: over the cap
    assert one.offer is None and one.basis == "coupon_cap"
    # the ledger agrees: issuing ten is refused, loyal5 goes through
    with pytest.raises(loyalty.CouponLimitReached):
        loyalty.issue_coupon(ws, "ten", "u1", key="c-ten")
    loyalty.issue_coupon(ws, "loyal5", "u1", key="c-5")


def test_quiet_hours_hold_a_message_action_in_memory(ws: Workspace) -> None:
    mail_journey(ws)
    d = _decider(ws)
    night = datetime(2026, 3, 2, 15, tzinfo=UTC)  # 23:00 in Shanghai
    a = d.decide("u1", "inbox", channel="email", now=night).actions[0]
    assert (a["status"], a["reason"]) == ("held", "quiet_hours")
    assert a["until"] == "2026-03-03T00:00:00+00:00"  # 08:00 local


def test_holdout_share_is_binomial_and_sticky(ws: Workspace) -> None:
    n = 4000
    ids = [f"h{i}" for i in range(n)]
    users(ws, [{"user_id": u, **SH} for u in ids])
    d = Decider(ws, holdout=0.2)
    d.refresh()
    arms = [d.decide(u, "home").arm for u in ids]
    held = sum(a == "holdout" for a in arms)
    sd = math.sqrt(n * 0.2 * 0.8)
    assert abs(held - 0.2 * n) < 4 * sd
    # deterministic: the same arm again, and the one assign() gives
    assert [d.decide(u, "cart").arm for u in ids[:200]] == arms[:200]
    expected = assign(Experiment("decide", variants=("treatment",), holdout=0.2), ids)
    assert expected.column("variant").to_pylist() == arms
    h = next(u for u, a in zip(ids, arms, strict=True) if a == "holdout")
    dec = d.decide(h, "home", cart_value=100.0)
    assert dec.offer is None and dec.basis == "holdout" and dec.probability == pytest.approx(0.2)


def test_exposures_are_written_on_flush_with_their_probability(ws: Workspace) -> None:
    d = Decider(ws, holdout=0.25)
    d.refresh()
    ws.clock.advance(timedelta(seconds=1))
    decisions = [d.decide(u, "checkout", cart_value=60.0) for u in ("u1", "u2", "u3", "u4")]
    d.decide("nobody", "checkout")  # unknown: no exposure
    with ws.state.read() as s:
        assert s.scalars(select(Exposure)).all() == []  # nothing on the request path
    assert d.pending == 4
    assert d.flush() == 4 and d.pending == 0
    with ws.state.read() as s:
        rows = {e.unit_id: e for e in s.scalars(select(Exposure))}
    assert set(rows) == {"u1", "u2", "u3", "u4"}
    for dec in decisions:
        e = rows[dec.user_id]
        assert e.experiment == "decide:checkout"
        assert e.variant == ("holdout" if dec.arm == "holdout" else dec.offer or "none")
        assert e.probability == pytest.approx(0.25 if dec.arm == "holdout" else 0.75)
        assert e.holdout == (dec.arm == "holdout")
    assert d.flush() == 0


def test_the_size_threshold_wakes_the_background_writer(ws: Workspace) -> None:
    d = Decider(ws, holdout=0.0, flush_at=3)
    d.start(refresh_every=3600, flush_every=60)
    try:
        for i, u in enumerate(("u1", "u2", "u3")):
            d.decide(u, "home", now=T0 + timedelta(seconds=i))
        for _ in range(100):
            with ws.state.read() as s:
                if len(s.scalars(select(Exposure)).all()) == 3:
                    break
            import time

            time.sleep(0.05)
        with ws.state.read() as s:
            assert len(s.scalars(select(Exposure)).all()) == 3
    finally:
        d.stop()


def test_an_unknown_customer_gets_the_default_decision(ws: Workspace) -> None:
    d = _decider(ws)
    out = d.decide("nobody", "checkout", cart_value=99.0).to_dict()
    assert out["known"] is False and out["offer"] is None and out["actions"] == []
    assert out["reasons"] == ["unknown customer"]


def test_refresh_users_rebuilds_only_those_customers(ws: Workspace) -> None:
    mail_journey(ws)
    reads: list[str] = []

    @contextlib.contextmanager
    def access() -> Iterator[Workspace]:
        reads.append("in")
        yield ws

    d = Decider(ws, holdout=0.0, access=access)
    d.refresh()
    for u in ("u2", "u3"):
        record_consent(ws, u, purpose="marketing", channel="email", status="revoked", source="app")
    snapshot_at = d.decide("u1", "inbox").snapshot_at
    assert d.refresh_users(["u2", "", "u2"]) == 1
    assert reads == ["in", "in"]  # every refresh reads the workspace through ``access``
    [two] = d.decide("u2", "inbox", channel="email").actions
    assert (two["status"], two["reason"]) == ("suppressed", "consent")
    [three] = d.decide("u3", "inbox", channel="email").actions
    assert three["status"] == "allowed"  # not rebuilt: still the older snapshot
    # the rest of the snapshot (and when it was built) stays
    assert d.decide("u1", "checkout", cart_value=60.0).offer == "ten"
    assert d.decide("u1", "inbox").snapshot_at == snapshot_at
    assert d.refresh_users([]) == 0
