"""Loading: formats, idempotence, counts that add up, users upserts, identities."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liucun.core import ConfigError, Hint, InvalidInput, NothingLoaded
from liucun.ingest import IngestOptions, ingest_events, ingest_tables, ingest_users
from liucun.warehouse import resolved_events
from liucun.workspace import init_workspace

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OPTS = IngestOptions(now=NOW)


def loaded(*args, **kwargs):  # type: ignore[no-untyped-def]
    """``ingest_events``' result, also when it raised NothingLoaded after committing."""
    try:
        return ingest_events(*args, **kwargs)
    except NothingLoaded as exc:
        return exc.result  # type: ignore[attr-defined]


ROWS = [
    {
        "event_id": "e1",
        "user_id": "u1",
        "event_type": "order",
        "ts": "2026-05-01T10:00:00Z",
        "revenue": "10.5",
        "currency": "CNY",
        "coupon": "A",
    },
    {
        "event_id": "e2",
        "user_id": "u2",
        "event_type": "view",
        "ts": "2026-05-02T11:00:00Z",
        "revenue": None,
        "currency": None,
        "coupon": None,
    },
    {
        "event_id": "e3",
        "user_id": "u1",
        "event_type": "refund",
        "ts": "2026-05-03T12:00:00Z",
        "revenue": "3",
        "currency": "CNY",
        "coupon": None,
    },
]


def _stored(ws) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    cols = ["event_id", "user_id", "event_type", "ts", "revenue", "currency", "properties"]
    ev = ws.warehouse.table("events").select(*cols).order_by("event_id").to_pandas()
    ev["properties"] = ev.properties.map(lambda p: json.loads(p) if isinstance(p, str) else None)
    return ev


def _write_all_formats(folder: Path) -> dict[str, Path]:
    df = pd.DataFrame(ROWS)
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "csv": folder / "e.csv",
        "tsv": folder / "e.tsv",
        "parquet": folder / "e.parquet",
        "jsonl": folder / "e.jsonl",
        "csv.gz": folder / "e.csv.gz",
        "jsonl.gz": folder / "e.jsonl.gz",
    }
    df.to_csv(out["csv"], index=False)
    df.to_csv(out["tsv"], index=False, sep="\t")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out["parquet"])
    df.to_json(out["jsonl"], orient="records", lines=True)
    with gzip.open(out["csv.gz"], "wb") as fh:
        fh.write(out["csv"].read_bytes())
    with gzip.open(out["jsonl.gz"], "wb") as fh:
        fh.write(out["jsonl"].read_bytes())
    return out


def test_every_format_stores_the_same_events(tmp_path: Path) -> None:
    files = _write_all_formats(tmp_path / "in")
    stored = {}
    for kind, path in files.items():
        with init_workspace(tmp_path / f"ws-{kind}") as ws:
            result = ingest_events(ws.warehouse, [path], OPTS)
            assert (result.rows_read, result.accepted, result.quarantined) == (3, 3, 0), kind
            stored[kind] = _stored(ws)
    for kind, frame in stored.items():
        pd.testing.assert_frame_equal(frame, stored["csv"], obj=kind)
    assert stored["csv"].properties[0] == {"coupon": "A"}


def test_globs_and_directories(tmp_path: Path, workspace) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    _write_all_formats(folder)
    by_glob = ingest_events(workspace.warehouse, [str(folder / "*.csv*")], OPTS)
    assert len(by_glob.sources) == 2
    assert (by_glob.accepted, by_glob.duplicates) == (3, 3)
    by_dir = ingest_events(workspace.warehouse, [folder], OPTS)
    assert len(by_dir.sources) == 6
    assert (by_dir.rows_read, by_dir.accepted, by_dir.duplicates) == (18, 0, 18)


def test_reingest_adds_nothing(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "e.csv",
        "user_id,event_type,ts,revenue,currency\n"
        "u1,order,2026-05-01,5,CNY\nu1,order,2026-05-01,5,CNY\nu2,view,2026-05-01,,\n",
    )
    first = ingest_events(workspace.warehouse, [path], OPTS)
    # the second line repeats the first: same derived event_id, counted as a duplicate
    assert (first.rows_read, first.accepted, first.duplicates) == (3, 2, 1)
    tables = ("events", "quarantine", "identities", "identity_links")
    before = {t: workspace.warehouse.count(t) for t in tables}
    second = ingest_events(workspace.warehouse, [path], OPTS)
    assert (second.rows_read, second.accepted, second.duplicates) == (3, 0, 3)
    assert {t: workspace.warehouse.count(t) for t in tables} == before
    assert workspace.warehouse.count("loads") == 2


def test_derived_event_ids_are_deterministic(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    path = write("e.csv", "user_id,event_type,ts\nu1,view,2026-05-01\n")
    ids = []
    for i in range(2):
        with init_workspace(tmp_path / f"w{i}") as ws:
            ingest_events(ws.warehouse, [path], OPTS)
            ids.append(_stored(ws).event_id[0])
    assert ids[0] == ids[1]
    assert len(ids[0]) == 32


def test_requarantine_is_not_stored_twice(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write("e.csv", "user_id,event_type,ts\nu1,view,nope\n")
    for _ in range(2):
        with pytest.raises(NothingLoaded, match=r"the one row of e\.csv was rejected") as caught:
            ingest_events(workspace.warehouse, [path], OPTS)
        assert caught.value.result.quarantined == 1  # type: ignore[attr-defined]
    # nothing was accepted, yet the rejected row is kept: the quarantine says why
    assert workspace.warehouse.count("quarantine") == 1
    assert workspace.warehouse.count("loads") == 2


row_strategy = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["u1", "u2", "", " "]),
        "event_type": st.sampled_from(["order", "view", "bogus"]),
        "ts": st.sampled_from(["2026-05-01", "2026-05-02T10:00:00Z", "garbage", "2099-01-01", ""]),
        "revenue": st.sampled_from(["", "5", "-1", "x"]),
        "currency": st.sampled_from(["", "CNY", "zzz"]),
    }
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(row_strategy, min_size=1, max_size=30))
def test_counts_always_add_up(tmp_path_factory, rows) -> None:  # type: ignore[no-untyped-def]
    """read = accepted + duplicates + quarantined, on any mix of good, bad and repeated rows."""
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "e.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with init_workspace(folder / "ws") as ws:
        for _ in range(2):
            r = loaded(ws.warehouse, [path], OPTS)
            assert r.rows_read == len(rows)
            assert r.rows_read == r.accepted + r.duplicates + r.quarantined
        assert (
            ws.warehouse.count("events")
            == ws.warehouse.table("loads").accepted.sum().to_pyarrow().as_py()
        )
    shutil.rmtree(folder)


def test_mapping_event_type_and_currency(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "orders.csv", "Customer No,Order Date,Amount,Shop\nc1,2026-05-01 08:00,99.5,Shanghai\n"
    )
    opts = IngestOptions(
        now=NOW,
        mapping={"Customer No": "user_id", "order date": "ts", "amount": "revenue"},
        event_type="order",
        default_currency="cny",
        source_timezone="Asia/Shanghai",
    )
    result = ingest_events(workspace.warehouse, [path], opts)
    assert result.accepted == 1
    ev = _stored(workspace).iloc[0]
    assert (ev.user_id, ev.event_type, ev.revenue, ev.currency) == ("c1", "order", 99.5, "CNY")
    assert ev.ts == pd.Timestamp("2026-05-01T00:00:00Z")
    assert ev.properties == {"Shop": "Shanghai"}


def test_missing_required_column_names_it_and_suggests_a_map(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write("o.csv", "user_id,event_type,timestamp\nu1,view,2026-05-01\n")
    with pytest.raises(InvalidInput, match=r"required column 'ts' is missing.*onto ts"):
        try:
            ingest_events(workspace.warehouse, [path], OPTS)
        except InvalidInput as exc:
            assert exc.hint == Hint(option="mapping", example="YOUR_COLUMN=ts", setting="mapping")
            assert "--" not in str(exc)  # the library names no CLI flag
            raise
    assert workspace.warehouse.count("loads") == 0


def test_mapping_to_an_unknown_column_is_a_config_error(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write("o.csv", "user_id,event_type,ts\nu1,view,2026-05-01\n")
    opts = IngestOptions(now=NOW, mapping={"user_id": "customer"})
    with pytest.raises(ConfigError, match="not a canonical column"):
        ingest_events(workspace.warehouse, [path], opts)


def test_order_export_without_revenue_column(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write("o.csv", "user_id,ts\nu1,2026-05-01\n")
    with pytest.raises(NothingLoaded) as caught:
        ingest_events(workspace.warehouse, [path], IngestOptions(now=NOW, event_type="order"))
    assert caught.value.result.by_reason == {"missing_revenue": 1}  # type: ignore[attr-defined]
    assert caught.value.hint == Hint(
        option="mapping", example="YOUR_AMOUNT=revenue", setting="mapping"
    )


def test_users_are_upserted(workspace, write) -> None:  # type: ignore[no-untyped-def]
    v1 = write("u1.csv", "user_id,country,tier\nu1,CN,gold\nu2,DE,silver\n")
    v2 = write("u2.csv", "user_id,country,tier\nu1,CN,gold\nu2,FR,silver\nu3,US,\n")
    first = ingest_users(workspace.warehouse, [v1], OPTS)
    assert (first.accepted, first.updated, first.duplicates) == (2, 0, 0)
    second = ingest_users(workspace.warehouse, [v2], OPTS)
    assert (second.rows_read, second.accepted, second.updated, second.duplicates) == (3, 1, 1, 1)
    users = workspace.warehouse.table("users").order_by("user_id").to_pandas()
    assert list(users.user_id) == ["u1", "u2", "u3"]
    assert list(users.country) == ["CN", "FR", "US"]
    third = ingest_users(workspace.warehouse, [v2], OPTS)
    assert (third.accepted, third.updated, third.duplicates) == (0, 0, 3)


def test_last_row_of_a_user_in_a_load_wins(workspace, write) -> None:  # type: ignore[no-untyped-def]
    path = write("u.csv", "user_id,country\nu1,CN\nu1,JP\n")
    r = ingest_users(workspace.warehouse, [path], OPTS)
    assert (r.accepted, r.duplicates) == (1, 1)
    assert workspace.warehouse.table("users").to_pandas().country[0] == "JP"


def test_identities_merge_aliases_for_analytics(workspace, write) -> None:  # type: ignore[no-untyped-def]
    users = write("u.csv", "user_id,email\nshop-7,a@x.com\napp-3,A@X.com\nweb-9,b@y.com\n")
    events = write(
        "e.csv",
        "user_id,anonymous_id,event_type,ts,revenue,currency\n"
        ",anon-1,visit,2026-05-01,,\n"
        "web-9,anon-1,view,2026-05-02,,\n"
        "shop-7,,order,2026-05-03,5,CNY\n"
        "app-3,,order,2026-05-04,7,CNY\n",
    )
    ru = ingest_users(workspace.warehouse, [users], replace(OPTS, hash_key=workspace.hash_key))
    assert ru.identity_merges == 1  # shop-7 joins app-3
    re_ = ingest_events(workspace.warehouse, [events], OPTS)
    assert re_.identity_links == 1
    wh = workspace.warehouse
    resolved = resolved_events(wh.table("events"), wh.table("identities")).to_pandas()
    by_raw = dict(zip(resolved.ts.dt.day, resolved.user_id, strict=True))
    # app-3 and shop-7 share an e-mail: both become app-3 (the smaller id)
    assert by_raw == {1: "web-9", 2: "web-9", 3: "app-3", 4: "app-3"}
    ids = wh.table("identities").to_pandas()
    assert ids.valid_to.isna().all()


def test_a_later_link_merges_and_keeps_history(workspace, write) -> None:  # type: ignore[no-untyped-def]
    a = write("a.csv", "user_id,loyalty_card\nb-user,card-1\n")
    b = write("b.csv", "user_id,loyalty_card\na-user,card-1\n")
    ingest_users(workspace.warehouse, [a], OPTS)
    r = ingest_users(workspace.warehouse, [b], IngestOptions(now=datetime(2026, 6, 2, tzinfo=UTC)))
    assert r.identity_merges >= 1
    ids = workspace.warehouse.table("identities").to_pandas()
    card = ids[ids["alias"] == "card-1"].sort_values("valid_from")
    assert list(card.user_id) == ["b-user", "a-user"]
    assert card.valid_to.iloc[0] == pd.Timestamp("2026-06-02T00:00:00Z")
    assert pd.isna(card.valid_to.iloc[1])


def test_arrow_tables_go_through_the_same_checks(workspace) -> None:  # type: ignore[no-untyped-def]
    events = pa.table(
        {
            "user_id": ["u1", None],
            "event_type": ["order", "order"],
            "ts": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC")),
            "revenue": [1.0, 2.0],
            "currency": ["USD", "USD"],
        }
    )
    (r,) = ingest_tables(workspace.warehouse, events=events, source="memory:test", options=OPTS)
    assert (r.accepted, r.quarantined) == (1, 1)
    q = workspace.warehouse.table("quarantine").to_pandas()
    assert (q.source[0], q.line[0]) == ("memory:test", 2)


def test_reused_event_ids_with_other_content_are_rejected(workspace, write) -> None:  # type: ignore[no-untyped-def]
    first = write(
        "a.csv",
        "event_id,user_id,event_type,ts\n"
        "e1,u1,view,2026-05-01\n"
        "e1,u1,view,2026-05-01\n"  # the same event again: a duplicate
        "e1,u2,view,2026-05-02\n",
    )  # another event under the same id: a conflict
    r = ingest_events(workspace.warehouse, [first], OPTS)
    assert (r.rows_read, r.accepted, r.duplicates, r.quarantined) == (3, 1, 1, 1)
    assert r.by_reason == {"conflicting_event_id": 1}
    second = write(
        "b.csv", "event_id,user_id,event_type,ts\ne1,u1,view,2026-05-01\ne1,u9,share,2026-05-03\n"
    )
    r2 = ingest_events(workspace.warehouse, [second], OPTS)
    assert (r2.accepted, r2.duplicates, r2.quarantined) == (0, 1, 1)
    q = workspace.warehouse.table("quarantine").order_by("quarantined_at").to_pandas()
    assert list(q.line) == [4, 3]
    assert "already used on line 2 of this load" in q.reasons[0][0]
    assert "is already stored (load" in q.reasons[1][0]
    assert '"user_id":"u9"' in q.raw[1]
    assert workspace.warehouse.table("events").to_pandas().user_id.tolist() == ["u1"]
