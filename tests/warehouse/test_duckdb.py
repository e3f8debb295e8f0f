"""The DuckDB store: transactions, upserts, workspaces, and the Ibis/sqlglot pitfall."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from liucun.core import ConfigError, WarehouseBusy, WorkspaceError
from liucun.schema import arrow_schema
from liucun.warehouse import DuckDBWarehouse
from liucun.workspace import init_workspace, open_workspace

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _identities(*rows: tuple[str, str]) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "alias": [a for a, _ in rows],
            "alias_type": ["user_id"] * n,
            "user_id": [u for _, u in rows],
            "valid_from": [T0] * n,
            "valid_to": [None] * n,
            "load_id": ["L"] * n,
        },
        schema=arrow_schema("identities"),
    )


def test_create_table_from_arrow_works(tmp_path: Path) -> None:
    """PITFALLS: Ibis 12 with sqlglot >= 30 cannot create a table from in-memory data."""
    con = ibis.duckdb.connect(str(tmp_path / "x.duckdb"))
    t = con.create_table("t", pa.table({"x": [1, 2, 3]}))
    assert t.x.sum().to_pyarrow().as_py() == 6


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    with pytest.raises(RuntimeError, match="boom"), wh.transaction() as w:
        assert w.append("identities", ibis.memtable(_identities(("a", "a")))) == 1
        raise RuntimeError("boom")
    assert wh.count("identities") == 0
    wh.close()


def test_upsert_replaces_by_key(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    with wh.transaction() as w:
        w.append("identities", ibis.memtable(_identities(("a", "a"), ("b", "b"))))
    with wh.transaction() as w:
        w.upsert(
            "identities",
            ibis.memtable(_identities(("b", "a"), ("c", "c"))),
            key=["alias_type", "alias"],
        )
    got = wh.table("identities").order_by("alias").to_pyarrow()
    assert got["alias"].to_pylist() == ["a", "b", "c"]
    assert got["user_id"].to_pylist() == ["a", "a", "c"]
    wh.close()


def test_second_writer_waits_then_names_the_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseBusy, match=rf"in use by process {holder.pid} \(.*\)"):
            DuckDBWarehouse(path, wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_workspace_init_is_idempotent_and_open_checks(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    toml = (tmp_path / "ws" / "liucun.toml").read_text()
    ws.close()
    init_workspace(tmp_path / "ws").close()
    assert (tmp_path / "ws" / "liucun.toml").read_text() == toml
    assert {p.name for p in (tmp_path / "ws").iterdir()} >= {
        "liucun.toml",
        "warehouse.duckdb",
        "models",
        "reports",
    }
    with pytest.raises(WorkspaceError, match="liucun init"):
        open_workspace(tmp_path / "nothing-here")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="not a directory"):
        init_workspace(tmp_path / "file")


def test_warehouse_url_choices(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.duckdb"
    with init_workspace(tmp_path / "ws", warehouse_url=f"duckdb://{elsewhere}") as ws:
        assert ws.warehouse.backend_name == "duckdb"
    assert elsewhere.exists()
    with pytest.raises(ConfigError, match="unknown warehouse_url"):
        init_workspace(tmp_path / "ws2", warehouse_url="oracle://db")
