"""Settings come from liucun.toml and LIUCUN_* variables, the environment winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from liucun.core import ConfigError, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    (tmp_path / "liucun.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s.warehouse_url == "duckdb"
    assert s.reporting_timezone == "UTC"
    assert s.ingest.future_tolerance_hours == 24


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _toml(
        tmp_path,
        'reporting_timezone = "Asia/Shanghai"\n[mapping]\namount = "revenue"\n'
        "[ingest]\nfuture_tolerance_hours = 48\n",
    )
    s = load_settings(ws)
    assert (s.reporting_timezone, s.mapping, s.ingest.future_tolerance_hours) == (
        "Asia/Shanghai",
        {"amount": "revenue"},
        48,
    )
    monkeypatch.setenv("LIUCUN_REPORTING_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LIUCUN_INGEST__FUTURE_TOLERANCE_HOURS", "6")
    s = load_settings(ws)
    assert (s.reporting_timezone, s.ingest.future_tolerance_hours) == ("Europe/Berlin", 6)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('reporting_timezone = "Mars/Base"\n', "unknown time zone 'Mars/Base'"),
        ("[ingest]\nfuture_tolerance_hours = -1\n", "future_tolerance_hours"),
        ('colour = "red"\n', "colour"),
        ("this is = = not toml\n", "invalid settings"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path: Path, text: str, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        load_settings(_toml(tmp_path, text))
