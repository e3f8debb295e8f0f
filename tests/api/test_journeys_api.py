"""``/v1/journeys``: the list, one journey and its report read what :mod:`liucun.journeys`
stores and computes; approve, activate, pause and resume follow the library's rules (no
activation without an approval: 409), and refused moves change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from resource_support import Api, problem, serve

from journeys.world_support import buyers, enrol
from liucun.api.routers.journeys import (
    ApprovalPublic,
    JourneyDetail,
    JourneyPublic,
    JourneyReportPublic,
)
from liucun.journeys import apply_journey, journey_status, journey_versions, list_journeys
from liucun.journeys._report import journey_report
from liucun.workspace import Workspace, open_workspace
from state_backends import STATE_BACKENDS

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
NO_UNSUBSCRIBE = """\
name: no_link
trigger: {type: inactivity, days: 3}
nodes:
  - id: mail
    type: message
    channel: email
    template: {subject: {en: "A gift"}, body: {en: "Come back soon."}}
"""


@pytest.fixture
def api(api_ws: Workspace) -> Iterator[Api]:
    for name in ("winback_risk", "inactive_push_coupon"):
        apply_journey(api_ws, EXAMPLES / f"{name}.yaml", by="test")
    with serve(api_ws) as served_api:
        yield served_api


def _move(api: Api, name: str, action: str, **body: Any) -> Any:
    return api.post(f"/v1/journeys/{name}/{action}", "journeys:write", json=body)


def test_list_and_show_read_what_is_stored(api: Api) -> None:
    pages = api.pages("/v1/journeys", limit=1)
    assert len(pages) == 2
    got = [(j["name"], j["status"], j["latest_version"]) for p in pages for j in p]
    want = [(j.name, j.status, j.latest_version) for j in list_journeys(api.ws)]
    assert got == want == [("inactive_push_coupon", "draft", 1), ("winback_risk", "draft", 1)]
    r = api.get("/v1/journeys/winback_risk")
    assert r.status_code == 200, r.text
    one = r.json()
    JourneyDetail.model_validate(one)
    assert one["version"] == 1 and one["definition"]["name"] == "winback_risk"
    assert one["definition"]["trigger"]["type"] == "risk_crossed"
    assert [v["state"] for v in one["versions"]] == ["draft"]
    assert (
        one["versions"][0]["created_by"]
        == journey_versions(api.ws, "winback_risk")[0]["created_by"]
        == "test"
    )


@pytest.mark.parametrize("api_ws", STATE_BACKENDS, indirect=True)
def test_activation_needs_an_approval_then_the_lifecycle_moves(api: Api) -> None:
    name = "winback_risk"
    problem(_move(api, name, "activate"), 409, "has no approval", "approve it first")
    problem(_move(api, name, "pause"), 409, "is draft", "not running yet")
    problem(_move(api, name, "resume"), 409, "is draft")
    assert journey_status(api.ws, name).status == "draft"
    approved = _move(api, name, "approve", note="legal ok")
    assert approved.status_code == 200, approved.text
    ApprovalPublic.model_validate(approved.json())
    assert approved.json()["created"] is True and approved.json()["version"] == 1
    assert approved.json()["approved_by"].startswith("api key test journeys:write")
    assert journey_status(api.ws, name).status == "approved"
    assert _move(api, name, "approve", by="li.wei").json()["created"] is False
    problem(_move(api, name, "approve", version=2), 409, "not the latest")
    steps = [("activate", "active", True), ("activate", "active", False),
             ("pause", "paused", True), ("resume", "active", True)]  # fmt: skip
    for action, status, changed in steps:
        r = _move(api, name, action)
        assert r.status_code == 200, (action, r.text)
        JourneyPublic.model_validate(r.json())
        assert (r.json()["status"], r.json()["changed"]) == (status, changed), action
        assert journey_status(api.ws, name).status == status
    assert journey_status(api.ws, name).active_version == 1
    assert api.get(f"/v1/journeys/{name}").json()["versions"][0]["state"] == "active"


def test_a_version_failing_the_content_check_is_422_with_each_problem(api: Api) -> None:
    apply_journey(api.ws, NO_UNSUBSCRIBE, by="test")
    body = problem(_move(api, "no_link", "approve"), 422, "content check")
    assert body["errors"] and all(e["message"] for e in body["errors"])
    assert "unsubscribe" in " ".join(e["message"] for e in body["errors"])
    assert journey_status(api.ws, "no_link").status == "draft"


def test_unknown_journeys_and_bad_input(api: Api) -> None:
    for r in (
        api.get("/v1/journeys/winbak_risk"),
        _move(api, "winbak_risk", "approve"),
        _move(api, "winbak_risk", "activate"),
    ):
        problem(r, 404, "journey named 'winbak_risk'", "did you mean 'winback_risk'?")
    problem(api.get("/v1/journeys/nope/report"), 404, "journey named 'nope'")
    problem(api.get("/v1/journeys/winback_risk", params={"version": 9}), 404, "no version 9")
    problem(api.get("/v1/journeys/winback_risk", params={"version": "two"}), 422)
    problem(_move(api, "winback_risk", "approve", by=""), 422)
    problem(_move(api, "winback_risk", "approve", colour="red"), 422)
    problem(api.get("/v1/journeys/winback_risk/report", params={"alpha": 2}), 422)
    problem(api.get("/v1/journeys", params={"limit": 10_000}), 422)
    problem(api.get("/v1/journeys/" + "j" * 5_000), 422)
    assert journey_status(api.ws, "winback_risk").status == "draft"


def test_report_is_the_library_report(shop_copy: Path) -> None:
    with open_workspace(shop_copy) as ws:
        sizes = enrol(ws, "winback", buyers(ws), second_share=0.5)
        want = journey_report(ws, "winback", truth="auto").to_dict()
        ws._close_warehouse()
        with serve(ws) as api:
            r = api.get("/v1/journeys/winback/report")
            narrow = api.get("/v1/journeys/winback/report", params={"alpha": 0.2}).json()
    assert r.status_code == 200, r.text
    got = r.json()
    JourneyReportPublic.model_validate(got)
    assert got["units"] == want["units"] == sizes
    assert [n["node"] for n in got["nodes"]] == [n["node"] for n in want["nodes"]]
    for g, w in zip(got["nodes"], want["nodes"], strict=True):
        for field in ("entered", "entered_by_arm", "sent", "suppressed", "converted_by_arm"):
            assert g[field] == w[field], field
        est = g["effects"]["margin"]["estimate"]
        assert est == pytest.approx(w["effects"]["margin"]["estimate"], rel=1e-6)
    offer = next(n for n in narrow["nodes"] if n["node"] == "offer")["effects"]["margin"]
    wide = next(n for n in got["nodes"] if n["node"] == "offer")["effects"]["margin"]
    assert narrow["alpha"] == 0.2
    assert offer["ci_high"] - offer["ci_low"] < wide["ci_high"] - wide["ci_low"]
