"""``/readyz`` names the check that fails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from liucun.state import head_revision
from liucun.workspace import Workspace


def test_readyz_is_503_when_the_state_database_is_behind(serve_app: Any, api_ws: Workspace) -> None:
    with serve_app() as client:
        assert client.get("/readyz").status_code == 200
        with api_ws.state.write() as session:  # as if an older liucun had made it
            session.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        r = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive all the same
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["state"]["ok"] is False
    assert f"revision 0006, not {head_revision()}" in body["checks"]["state"]["detail"]
    assert body["checks"]["warehouse"]["ok"] is True


def test_readyz_is_503_until_the_decider_has_a_snapshot(serve_app: Any) -> None:
    with serve_app() as client:
        ready = client.get("/readyz").json()["checks"]["decider"]
        decider = client.app.state.service.decider  # type: ignore[attr-defined]
        decider.refreshed_at, decider.last_error = None, "WarehouseBusy: held by pid 7"
        r = client.get("/readyz")
    assert ready["ok"] is True and ready["detail"].startswith("0 customers in memory as of ")
    assert r.status_code == 503
    check = r.json()["checks"]["decider"]
    assert check["ok"] is False
    assert "its first refresh failed: WarehouseBusy: held by pid 7" in check["detail"]
