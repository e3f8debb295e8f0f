"""Saved models: versions, cards, loading, and refusals in sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liucun.core import ConfigError
from liucun.models import ModelCard, list_models, load_model, save_model

CARD = {
    "name": "retention",
    "as_of": "2026-09-30T00:00:00",
    "data_start": "2025-10-01T00:00:00",
    "data_end": "2026-09-30T00:00:00",
    "horizon_days": 90,
    "customers": 1234,
    "features": ["recency_days", "frequency"],
    "metrics": {"auc": 0.81},
}


def test_versions_count_up_and_load_back(tmp_path: Path) -> None:
    first = save_model(tmp_path, {"weights": [1, 2, 3]}, CARD)
    second = save_model(tmp_path, {"weights": [4]}, {**CARD, "metrics": {"auc": 0.83}})
    assert (first.version, second.version) == ("v1", "v2")
    assert second.libraries["lightgbm"] and second.libraries["python"]
    latest, card = load_model(tmp_path, "retention")
    assert latest == {"weights": [4]} and card == second
    older, card = load_model(tmp_path, "retention", "v1")
    assert older == {"weights": [1, 2, 3]} and card.metrics == {"auc": 0.81}
    assert [c.version for c in list_models(tmp_path)] == ["v1", "v2"]
    on_disk = json.loads((tmp_path / "retention" / "v2" / "card.json").read_text())
    assert ModelCard(**on_disk) == second
    assert not list(tmp_path.glob("retention/.saving-*"))  # no staging left behind


def test_a_taken_version_number_moves_on(tmp_path: Path) -> None:
    (tmp_path / "retention" / "v1").mkdir(parents=True)  # e.g. another training's
    assert save_model(tmp_path, 1, CARD).version == "v2"


def test_missing_models_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train one first with `liucun train`"):
        load_model(tmp_path, "retention")
    save_model(tmp_path, 1, CARD)
    with pytest.raises(ConfigError, match="no version 'v9'; saved versions: v1"):
        load_model(tmp_path, "retention", "v9")
    with pytest.raises(ConfigError, match="model name"):
        save_model(tmp_path, 1, {**CARD, "name": "../evil"})


def test_card_values_are_made_json_ready() -> None:
    import math

    import numpy as np
    import pandas as pd

    from liucun.models._registry import json_ready

    got = json_ready({"a": np.float64(1.5), "b": [np.int64(2), float("nan")], "c": (pd.NA, 3)})
    assert got == {"a": 1.5, "b": [2, None], "c": [None, 3]}
    assert type(got["a"]) is float and type(got["b"][0]) is int
    assert json_ready(math.inf) is None
