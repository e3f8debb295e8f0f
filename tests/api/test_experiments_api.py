"""``/v1/experiments`` on the simulated shop's randomized coupon campaign: the list
counts the units and variants of the exposure log, and an experiment's analysis is what
:func:`liucun.experiments.analyze_experiment` finds, options included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from resource_support import Api, problem, serve

from liucun.api.routers.experiments import AnalysisPublic
from liucun.experiments import AnalysisSettings, analyze_experiment, log_exposures
from liucun.simulate import campaign_exposures
from liucun.workspace import init_workspace, open_workspace


@pytest.fixture
def campaign(shop_workspace: Path, shop_copy: Path) -> Iterator[tuple[Api, str, int]]:
    """The shop's copy with the campaign logged: the app, the key, the units logged."""
    log = campaign_exposures(pq.read_table(shop_workspace.parent / "sim" / "truth.parquet"))
    with open_workspace(shop_copy) as ws:
        log_exposures(ws.state, log.drop(["ts"]), ts=log["ts"])
        with serve(ws) as api:
            yield api, log["experiment"][0].as_py(), len(pc.unique(log["unit_id"]))


def test_list_and_analysis_are_the_library_analysis(campaign: tuple[Api, str, int]) -> None:
    api, key, units = campaign
    r = api.get("/v1/experiments")
    assert r.status_code == 200, r.text
    (row,) = r.json()["items"]
    assert (row["experiment"], row["unit_type"], row["units"]) == (key, "user", units)
    assert row["variants"] == 2 and row["exposures"] >= units
    got = api.get(f"/v1/experiments/{key}")
    assert got.status_code == 200, got.text
    body = got.json()
    AnalysisPublic.model_validate(body)
    want = analyze_experiment(api.ws, key)
    api.ws._close_warehouse()
    assert body["counts"] == want.counts and sum(body["counts"].values()) == units
    assert body["control"] == want.control and body["unit_type"] == "user"
    assert body["srm"]["mismatch"] is False
    assert body["srm"]["p_value"] == pytest.approx(float(want.srm.p_value), rel=1e-9)
    lib = want.results.to_pylist()
    assert [(x["metric"], x["variant"]) for x in body["results"]] == [
        (x["metric"], x["variant"]) for x in lib
    ]
    for g, w in zip(body["results"], lib, strict=True):
        assert g["significant"] == w["significant"], g["metric"]
        assert g["estimate"] == pytest.approx(w["estimate"], rel=1e-6, abs=1e-12)
    (variant,) = body["roi"]
    assert body["roi"][variant]["threshold"] == 1.2


def test_options_reach_the_analysis(campaign: tuple[Api, str, int]) -> None:
    api, key, _units = campaign
    seq = api.get(f"/v1/experiments/{key}", params={"sequential": "true", "alpha": 0.1})
    assert seq.status_code == 200, seq.text
    want = analyze_experiment(api.ws, key, AnalysisSettings(sequential=True, alpha=0.1))
    api.ws._close_warehouse()
    assert [x["test"] for x in seq.json()["results"]] == want.results["test"].to_pylist()
    assert seq.json()["settings"]["sequential"] is True
    fixed = api.get(f"/v1/experiments/{key}").json()
    assert [x["test"] for x in fixed["results"]] != [x["test"] for x in seq.json()["results"]]
    problem(api.get(f"/v1/experiments/{key}", params={"control": "nobody"}), 422, "'nobody'")
    problem(api.get(f"/v1/experiments/{key}", params={"correction": "bonferroni"}), 422)
    problem(api.get(f"/v1/experiments/{key}", params={"alpha": 0}), 422)
    problem(api.get("/v1/experiments/cmp-nope"), 404, "'cmp-nope'", key)


def test_an_empty_log(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws") as ws, serve(ws) as api:
        assert api.get("/v1/experiments").json() == {"items": [], "next_cursor": None}
        problem(api.get("/v1/experiments/x"), 404, "none is logged yet")
