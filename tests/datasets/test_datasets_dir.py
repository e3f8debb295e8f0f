"""Finding ``shared/datasets``: the env override, the walk up, and the error."""

from pathlib import Path

import pytest

from liucun.core import InvalidInput
from liucun.datasets import _paths, datasets_dir, load_cdnow, load_donations


def test_env_var_overrides_the_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIUCUN_DATASETS_DIR", str(tmp_path))
    assert datasets_dir() == tmp_path


def test_env_var_naming_a_missing_directory_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("LIUCUN_DATASETS_DIR", str(missing))
    with pytest.raises(InvalidInput, match=r"LIUCUN_DATASETS_DIR is set to '.*nowhere'"):
        datasets_dir()


def test_loaders_name_the_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIUCUN_DATASETS_DIR", str(tmp_path))
    with pytest.raises(
        InvalidInput, match=r"CDNOW_sample\.txt' is not a file.*LIUCUN_DATASETS_DIR"
    ):
        load_cdnow()
    with pytest.raises(InvalidInput, match=r"donations\.csv' is not a file"):
        load_donations()
    with pytest.raises(InvalidInput, match=r"other\.txt' is not a file"):
        load_cdnow(tmp_path / "other.txt")


def test_walks_up_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout is ``<root>/main`` (project) beside ``<root>/shared/datasets``."""
    data = tmp_path / "shared" / "datasets"
    deep = tmp_path / "main" / "src" / "pkg"
    data.mkdir(parents=True)
    deep.mkdir(parents=True)
    monkeypatch.delenv("LIUCUN_DATASETS_DIR", raising=False)
    monkeypatch.chdir(deep)
    assert datasets_dir() == data.resolve()


def test_nothing_found_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIUCUN_DATASETS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_paths, "_PACKAGE_DIR", tmp_path)
    with pytest.raises(InvalidInput) as info:
        datasets_dir()
    message = str(info.value)
    assert "no shared/datasets directory found" in message
    assert str(tmp_path.resolve()) in message
    assert "set LIUCUN_DATASETS_DIR" in message


def test_default_location_is_the_shared_folder_beside_the_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the override the repository's sibling ``shared/datasets`` is found."""
    monkeypatch.delenv("LIUCUN_DATASETS_DIR", raising=False)
    found = datasets_dir()
    assert found.parts[-2:] == ("shared", "datasets")
    assert (found / "cdnow" / "CDNOW_sample.txt").is_file()
    assert (found / "donations" / "donations.csv").is_file()
