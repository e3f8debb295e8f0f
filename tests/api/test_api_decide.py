"""``POST /v1/decide`` on a real server: the decision of the service's in-memory
decider (offer, coupons, benefits, guarded journey actions, the holdout), exposures
written with their probability by shutdown, and every bad body refused with the path of
its field and nothing logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import Keys
from sqlalchemy import select

from journeys.decide_support import SH, T0, decide_shop, mail_journey
from journeys.journey_support import users
from liucun.core import SimulatedClock
from liucun.experiments import Experiment, assign
from liucun.journeys._consent import add_suppression, record_consent
from liucun.state import Exposure
from liucun.workspace import Workspace


@pytest.fixture
def shop(api_ws: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """The decider tests' shop on the API's workspace: u2 revoked e-mail, u3 is
    suppressed by hand, everyone's next journey action is an e-mail."""
    api_ws.clock = SimulatedClock(T0)
    decide_shop(api_ws, tmp_path)
    mail_journey(api_ws)
    record_consent(
        api_ws, "u2", purpose="marketing", channel="email", status="revoked", source="app"
    )
    add_suppression(api_ws, "u3", kind="manual", reason="asked by phone")
    yield api_ws


def _exposures(ws: Workspace) -> dict[tuple[str, str], Exposure]:
    with ws.state.read() as s:
        rows = s.scalars(select(Exposure).where(Exposure.experiment.like("decide:%")))
        return {(e.experiment, e.unit_id): e for e in rows}


def test_decisions_apply_the_offer_policy_and_the_guards(
    serve_app: Any, keys: Keys, shop: Workspace
) -> None:
    key = keys.header("decide")
    with serve_app(decide_holdout=0.0) as client:

        def decide(**body: Any) -> dict[str, Any]:
            r = client.post("/v1/decide", json=body, headers=key)
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        one = decide(user_id="u1", placement="checkout", cart_value=60.0)
        two = decide(user_id="u2", placement="inbox", channel="email")
        two_page = decide(user_id="u2", placement="checkout", cart_value=60.0)
        three = decide(user_id="u3", placement="checkout", cart_value=100.0)
        small_cart = decide(user_id="u4", placement="checkout", cart_value=20.0)
        nobody = decide(user_id="nobody", placement="checkout")
    # u1: three orders unlock loyal5 and the lounge; no uplift model: the first offer
    assert (one["known"], one["arm"], one["probability"]) == (True, "treatment", 1.0)
    assert one["coupons"] == ["ten", "forty", "loyal5"]
    assert (one["offer"], one["basis"]) == ("ten", "no_uplift_model")
    assert [b["benefit_id"] for b in one["benefits"]] == ["lounge"]
    [mail] = one["actions"]
    assert (mail["journey"], mail["node"], mail["channel"], mail["status"]) == (
        "winback",
        "mail",
        "email",
        "allowed",
    )
    assert one["profile"]["stage"] in ("growth", "mature") and one["decided_at"].startswith(
        "2026-03-02T02:00:00"
    )
    # u2 revoked e-mail: the e-mail action and the offer by e-mail are stopped
    assert [(a["status"], a["reason"]) for a in two["actions"]] == [("suppressed", "consent")]
    assert (two["offer"], two["basis"]) == (None, "consent")
    assert two_page["offer"] == "ten"  # on a page the offer still shows
    # u3 is suppressed by hand: nothing at all
    assert (three["offer"], three["coupons"], three["basis"]) == (None, [], "suppressed:manual")
    assert [a["status"] for a in three["actions"]] == ["suppressed"]
    # below ten's min_order of 50
    assert small_cart["coupons"] == ["forty"] and small_cart["offer"] is None
    assert small_cart["reasons"][0].startswith("offer ten: not eligible")
    # unknown: the default decision
    assert nobody["known"] is False and nobody["offer"] is None and nobody["actions"] == []
    assert nobody["reasons"] == ["unknown customer"]
    # logged by shutdown, one exposure per decision of a known customer, none for nobody
    logged = _exposures(shop)
    assert {k: (e.variant, e.probability, e.holdout) for k, e in logged.items()} == {
        ("decide:checkout", "u1"): ("ten", 1.0, False),
        ("decide:inbox", "u2"): ("none", 1.0, False),
        ("decide:checkout", "u2"): ("ten", 1.0, False),
        ("decide:checkout", "u3"): ("none", 1.0, False),
        ("decide:checkout", "u4"): ("none", 1.0, False),
    }


def test_holdout_customers_get_nothing_and_are_logged_as_holdout(
    serve_app: Any, keys: Keys, shop: Workspace
) -> None:
    ids = [f"h{i}" for i in range(40)]
    users(shop, [{"user_id": u, **SH} for u in ids])
    expected = assign(Experiment("decide", variants=("treatment",), holdout=0.5), ids)
    arms = dict(zip(ids, expected.column("variant").to_pylist(), strict=True))
    held = sorted(u for u, a in arms.items() if a == "holdout")
    treated = sorted(u for u, a in arms.items() if a == "treatment")
    assert held and treated  # the hash splits forty customers both ways
    key = keys.header("decide")
    with serve_app(decide_holdout=0.5) as client:
        answers = {
            u: client.post(
                "/v1/decide", json={"user_id": u, "placement": "home"}, headers=key
            ).json()
            for u in ids
        }
    assert {u: a["arm"] for u, a in answers.items()} == arms
    for u in held:
        a = answers[u]
        assert (a["offer"], a["basis"], a["probability"]) == (None, "holdout", 0.5)
        assert a["reasons"] == ["holdout: this customer is never treated"]
    logged = _exposures(shop)
    assert {u for (_, u), e in logged.items() if e.holdout} == set(held)
    assert all(logged[("decide:home", u)].variant == "holdout" for u in held)
    assert all(logged[("decide:home", u)].probability == 0.5 for u in treated)


BAD_BODIES = [
    ({"placement": "checkout"}, "user_id", "required"),
    ({"user_id": "u1"}, "placement", "required"),
    ({"user_id": "x" * 10_000, "placement": "checkout"}, "user_id", "longer than 200"),
    ({"user_id": "u1", "placement": "p" * 201}, "placement", "longer than 200"),
    ({"user_id": "u1", "placement": "checkout", "coupon": "X"}, "coupon", "not a field"),
    ({"user_id": "u1", "placement": "checkout", "cart_value": -1}, "cart_value", "greater"),
    ({"user_id": "u1", "placement": "checkout", "cart_value": "lots"}, "cart_value", "number"),
    ({"user_id": 7, "placement": "checkout"}, "user_id", "string"),
    ({"user_id": "", "placement": "checkout"}, "user_id", "empty"),
    ({"user_id": "u1", "placement": "checkout", "channel": ""}, "channel", "empty"),
]


def test_bad_bodies_name_their_field_and_log_nothing(
    serve_app: Any, keys: Keys, shop: Workspace
) -> None:
    key = keys.header("decide")
    with serve_app(max_body_bytes=20_000) as client:
        for body, path, words in BAD_BODIES:
            r = client.post("/v1/decide", json=body, headers=key)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            [err] = r.json()["errors"]
            assert err["path"] == path, body
            assert words in err["message"], (body, err)
        headers = {**key, "Content-Type": "application/json"}
        broken = client.post("/v1/decide", content=b'{"user_id": "u1", ', headers=headers)
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
        empty = client.post("/v1/decide", content=b"", headers=headers)
        assert empty.status_code == 422
        huge = client.post("/v1/decide", content=b" " * 30_000, headers=headers)
        assert huge.status_code == 413
        text = client.post(
            "/v1/decide", content=b"user_id=u1", headers={**key, "Content-Type": "text/plain"}
        )
        assert text.status_code == 415
        # the scope: a read key may not ask
        wrong = client.post(
            "/v1/decide", json={"user_id": "u1", "placement": "x"}, headers=keys.header("read")
        )
        assert wrong.status_code == 403 and "not decide" in wrong.json()["detail"]
    assert _exposures(shop) == {}


def test_a_retry_with_the_idempotency_key_gets_the_first_decision(
    serve_app: Any, keys: Keys, shop: Workspace
) -> None:
    headers = {**keys.header("decide"), "Idempotency-Key": "checkout-17"}
    body = {"user_id": "u1", "placement": "checkout", "cart_value": 60.0}
    with serve_app(decide_holdout=0.0) as client:
        first = client.post("/v1/decide", json=body, headers=headers)
        shop.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
        again = client.post("/v1/decide", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()  # the same decided_at: not decided again
    assert len(_exposures(shop)) == 1
