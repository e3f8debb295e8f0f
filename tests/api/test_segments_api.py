"""``/v1/segments`` on the simulated shop: the sizes are what :mod:`liucun.segments`
computes, they add up to the buyers (RFM) and to every customer (stages), a segment's
members page through exactly its customers, and the CSV export holds the same rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from resource_support import Api, problem, serve

from liucun.api.routers.segments import SegmentSizes, TagSizes
from liucun.segments import (
    SEGMENT_COLUMNS,
    customer_tags,
    segment_customers,
    segment_summary,
    tag_summary,
)
from liucun.workspace import Workspace, init_workspace, open_workspace


@pytest.fixture(scope="module")
def api(shop_workspace: Path) -> Iterator[Api]:
    ws = open_workspace(shop_workspace)
    with serve(ws) as served_api:
        yield served_api
    ws.close()


def _members(ws: Workspace, by: str, name: str) -> list[str]:
    """The segment's customer ids, straight from the library."""
    t = segment_customers(ws.events(), ws.customers(), as_of=ws.data_end(), by=by)
    t = t.filter(t[SEGMENT_COLUMNS[by]] == name).order_by("user_id")
    ids = t.select("user_id").to_pyarrow().column(0).to_pylist()
    ws._close_warehouse()
    return ids


@pytest.mark.parametrize("by", ["rfm", "class", "stage"])
def test_sizes_are_the_library_summary(api: Api, by: str) -> None:
    r = api.get(f"/v1/segments/{by}")
    assert r.status_code == 200, r.text
    body = r.json()
    SegmentSizes.model_validate(body)
    ws = api.ws
    end = ws.data_end()
    want = segment_summary(ws.events(), ws.customers(), as_of=end, by=by).to_pyarrow().to_pylist()
    ws._close_warehouse()
    assert body["by"] == by and body["as_of"].startswith(end.date().isoformat())
    got = {s["segment"]: s["customers"] for s in body["segments"]}
    assert got == {w["segment"]: w["customers"] for w in want}
    assert sum(s["share"] for s in body["segments"]) == pytest.approx(1.0)
    # independently of the library: RFM counts every buyer, stages every customer
    events, users = ws.events(), ws.customers()
    orders = events.filter((events.event_type == "order") & (events.ts < end))
    buyers = orders.user_id.nunique().to_pyarrow().as_py()
    customers = users.user_id.nunique().to_pyarrow().as_py()
    ws._close_warehouse()
    assert sum(got.values()) == (customers if by == "stage" else buyers)
    assert len(got) > 3


def test_a_filter_narrows_the_sizes(api: Api) -> None:
    everyone = {
        s["segment"]: s["customers"] for s in api.get("/v1/segments/stage").json()["segments"]
    }
    r = api.get("/v1/segments/stage", params={"filter": 'stage in ("decline", "churned")'})
    assert r.status_code == 200, r.text
    got = {s["segment"]: s["customers"] for s in r.json()["segments"]}
    assert got == {k: v for k, v in everyone.items() if k in ("decline", "churned")}
    assert got and all(v > 0 for v in got.values())


def test_tags_are_the_library_tag_summary(api: Api) -> None:
    r = api.get("/v1/segments/tags")
    assert r.status_code == 200, r.text
    TagSizes.model_validate(r.json())
    ws = api.ws
    want = tag_summary(ws.events(), as_of=ws.data_end()).to_pyarrow().to_pylist()
    ws._close_warehouse()
    assert r.json()["tags"] == want
    channels = [t for t in want if t["tag"] == "preferred_channel"]
    sensitive = [t for t in want if t["tag"] == "price_sensitive"]
    assert channels and {t["value"] for t in sensitive} <= {"true", "false"}


def test_members_page_through_exactly_the_segment(api: Api) -> None:
    sizes = api.get("/v1/segments/rfm").json()["segments"]
    name, size = next((s["segment"], s["customers"]) for s in sizes if s["customers"] > 150)
    pages = api.pages(f"/v1/segments/rfm/{name}/members", limit=60)
    ids = [row["user_id"] for page in pages for row in page]
    assert len(pages) == -(-size // 60) and all(len(p) == 60 for p in pages[:-1])
    assert ids == _members(api.ws, "rfm", name)
    assert len(ids) == size == len(set(ids))
    assert {row["rfm_segment"] for page in pages for row in page} == {name}


def test_csv_export_holds_every_member(api: Api) -> None:
    sizes = api.get("/v1/segments/stage").json()["segments"]
    name, size = next((s["segment"], s["customers"]) for s in sizes if s["segment"] == "decline")
    by_param = api.get(f"/v1/segments/stage/{name}/members", params={"format": "csv"})
    by_accept = api.get(f"/v1/segments/stage/{name}/members", headers={"Accept": "text/csv"})
    spent = []
    for r in (by_param, by_accept):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == size
        assert [row["user_id"] for row in rows] == _members(api.ws, "stage", name)
        assert {row["stage"] for row in rows} == {name}
        spent.append([float(row["monetary"]) for row in rows])
    # DuckDB sums in parallel: the last digit of a float may differ between two runs
    assert spent[0] == pytest.approx(spent[1], rel=1e-9) and sum(spent[0]) > 0


def test_bad_input_is_a_sentence_not_a_500(api: Api) -> None:
    problem(api.get("/v1/segments/colour"), 404, "rfm, class or stage")
    problem(api.get("/v1/segments/rfm/Nobody/members"), 404, "Champions")
    body = problem(api.get("/v1/segments/stage/new/members", params={"limit": 501}), 422)
    assert body["errors"][0]["path"] == "query.limit"
    body = problem(api.get("/v1/segments/stage/new/members", params={"cursor": "abc"}), 422)
    assert body["errors"][0]["path"] == "query.cursor"
    body = problem(api.get("/v1/segments/rfm", params={"filter": "stage =="}), 422)
    assert "filter" in body["detail"].lower() or body["errors"]
    problem(api.get("/v1/segments/rfm", params={"filter": "colour == 1"}), 422, "colour")
    body = problem(api.get("/v1/segments/rfm", params={"as_of": "2026-01-01T00:00:00"}), 422)
    assert body["errors"][0]["path"] == "query.as_of"
    problem(api.get("/v1/segments/rfm", params={"as_of": "yesterday"}), 422)
    problem(api.get("/v1/segments/stage/" + "x" * 10_000 + "/members"), 422)


def test_an_empty_warehouse_has_empty_segments(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws") as ws, serve(ws) as api:
        r = api.get("/v1/segments/rfm")
        assert r.status_code == 200, r.text
        assert r.json() == {"by": "rfm", "as_of": None, "filter": None, "segments": []}
        page = api.get("/v1/segments/stage/new/members").json()
        assert page == {"items": [], "next_cursor": None}
        assert api.get("/v1/segments/tags").json() == {"as_of": None, "tags": []}


def test_tag_members_are_the_buyers_with_that_value(api: Api) -> None:
    sizes = api.get("/v1/segments/tags").json()["tags"]
    channel = next(t for t in sizes if t["tag"] == "preferred_channel")
    path = f"/v1/segments/tags/preferred_channel/{channel['value']}/members"
    ids = [row["user_id"] for page in api.pages(path, limit=200) for row in page]
    ws = api.ws
    tags = customer_tags(ws.events(), as_of=ws.data_end())
    want = tags.filter(tags.preferred_channel == channel["value"]).order_by("user_id")
    want_ids = want.select("user_id").to_pyarrow().column(0).to_pylist()
    ws._close_warehouse()
    assert ids == want_ids and len(ids) == channel["customers"]
    sensitive = next(t for t in sizes if (t["tag"], t["value"]) == ("price_sensitive", "true"))
    r = api.get("/v1/segments/tags/price_sensitive/true/members", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == sensitive["customers"] and {row["price_sensitive"] for row in rows} == {
        "true"
    }
    problem(api.get("/v1/segments/tags/colour/red/members"), 404, "price_sensitive")
