"""``liucun keys create|list|revoke`` and ``liucun serve --help``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liucun.api import get_key
from liucun.cli import app
from liucun.workspace import open_workspace

runner = CliRunner()


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    assert runner.invoke(app, ["init", str(tmp_path / "ws")]).exit_code == 0
    return tmp_path / "ws"


def test_create_prints_the_key_once_and_list_never_does(ws_path: Path) -> None:
    made = runner.invoke(
        app,
        [
            "-w",
            str(ws_path),
            "keys",
            "create",
            "--scope",
            "ingest",
            "--scope",
            "Read",
            "--name",
            "checkout",
            "--rate",
            "50",
        ],
    )
    assert made.exit_code == 0, made.output
    key = made.output.splitlines()[0]
    key_id = key[3:].partition(".")[0]
    assert key.startswith("lc_") and "not shown again" in " ".join(made.output.split())
    with open_workspace(ws_path) as ws:
        info = get_key(ws, key_id)
    assert info.scopes == ("ingest", "read") and info.rate_per_s == 50
    listed = runner.invoke(app, ["-w", str(ws_path), "keys", "list"])
    assert listed.exit_code == 0 and key_id in listed.output
    assert key.partition(".")[2] not in listed.output
    as_json = runner.invoke(app, ["-w", str(ws_path), "keys", "list", "--json"])
    (row,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert row["key_id"] == key_id and row["revoked_at"] is None and "secret" not in str(row)


def test_revoke_and_the_errors_a_user_can_act_on(ws_path: Path) -> None:
    made = runner.invoke(
        app, ["-w", str(ws_path), "keys", "create", "--scope", "admin", "--name", "ops", "--json"]
    )
    key_id = json.loads(made.output)["key_id"]
    gone = runner.invoke(app, ["-w", str(ws_path), "keys", "revoke", key_id])
    assert gone.exit_code == 0 and f"Revoked key {key_id}" in gone.output
    active = runner.invoke(app, ["-w", str(ws_path), "keys", "list", "--active"])
    assert "No API keys yet" in active.output
    bad_scope = runner.invoke(
        app, ["-w", str(ws_path), "keys", "create", "--scope", "root", "--name", "x"]
    )
    assert bad_scope.exit_code == 1
    assert "'root' is not a scope; use one of ingest, read" in bad_scope.output
    unknown = runner.invoke(app, ["-w", str(ws_path), "keys", "revoke", "feedfacefeedface"])
    assert unknown.exit_code == 1
    assert "KeyNotFound: there is no API key 'feedfacefeedface'" in unknown.output


@pytest.mark.parametrize(
    "command", [["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["serve"], ["keys"]]
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "Example:" in shown.output
